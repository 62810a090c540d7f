"""The claims, one record each: what the claim tests (claims/), the power simulation
(tools/power_table.py), the expectations check and the claims matrix all read.

A `Claim` names its statement and its `ClaimCase` s. A case names the hypothesis its test judges
(`synthact.judge.hypotheses`), the experiment its test reads, the variants it runs in (step modes
or comparisons: what ``C1[relative]`` names in ``claims/expectations.toml``), the types it
compares and shows, and the paper's effect as the power simulation draws it: the table whose rows
give each type's law, the law's kind and the simulation's `Shape`. The hypothesis' case names are
`ClaimCase.case_names`; the power table (``synthact/data/power.json``) has a row for each
simulated one (`ClaimCase.simulated`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from synthact.judge import hypotheses as h
from synthact.judge.hypotheses import Hypothesis, Steps
from synthact.judge.paper import paper_rows
from synthact.method.engine import MODES

SYNTHETIC = ("synthetic-baseline", "synthetic-structured", "synthetic-random", "structured-no-cos")
"""The paper's synthetic constructions: the types whose C14 cases the power table simulates."""
PLATEAU_VARIANTS = ("random", "synthetic-baseline", "synthetic-structured")


class Shape(Enum):
    """How the power simulation draws a case's steps at the paper's effect.

    ``TABLE``: one column per compared type, from ``table``'s rows in the variant's mode (or the
    case's fixed ``mode``); judged by ``hypothesis(steps, variant)``. ``RUNS``: two runs of the same
    rows (``runs``: a (table, mode) each), judged by ``hypothesis(one, two)``. ``SAME_LAW``: a
    type's two steps (``pair``) from the one row of ``table``, per variant and per compared type,
    judged by ``hypothesis(steps, variant, kind)``.
    """

    TABLE = "table"
    RUNS = "two runs"
    SAME_LAW = "same law"


@dataclass(frozen=True)
class Row:
    """A paper table's row a simulated column is drawn from, as a ``law`` (``normal`` or
    ``gamma``) of the row's mean and std."""

    table: str
    mode: str
    kind: str
    law: str = "normal"


@dataclass(frozen=True)
class Simulated:
    """A power-table case: its columns (keyed as its judge reads them) and its hypothesis.

    ``runs`` groups the columns of a `Shape.RUNS` case by their key prefix; ``effect`` describes
    the laws where the table's KS against real does not.
    """

    name: str
    columns: Mapping[str, Row]
    hypothesis: Callable[[Steps], Hypothesis]
    runs: tuple[str, ...] = ("",)
    effect: str | None = None


RUN_PREFIXES = ("one:", "two:")


def _prefixed(steps: Steps, prefix: str) -> dict:
    return {k.removeprefix(prefix): v for k, v in steps.items() if k.startswith(prefix)}


@dataclass(frozen=True)
class ClaimCase:
    """One case of a claim (see the module docstring).

    Attributes:
        name: the hypothesis' case name; ``{variant}`` and ``{kind}`` stand for the variant and,
            in a `Shape.SAME_LAW` case, the compared type (``"C14[{variant}, {kind}]"``).
        hypothesis: the function of `synthact.judge.hypotheses` the test calls.
        experiment: the experiment (`synthact.method.experiments.EXPERIMENTS`) its test reads.
        variants: the step modes or comparisons it runs in (() where it has none).
        kinds: the types it compares, in the simulation's column order (``{variant}`` for the
            variant's type).
        shown: the types its test shows beside them.
        table: the paper table of the effect (``"AP"``: the authors' recorded AP run).
        mode: the table's step mode where not the variant.
        metric, signal: the step metric and the curve it is read from.
        law: the kind of the simulated laws (``normal``; ``gamma`` for AP steps).
        shape: the simulation's `Shape`; None where the case has no power case.
        runs: a `Shape.RUNS` case's two (table, mode).
        pair: a `Shape.SAME_LAW` case's two step names (``{kind}`` for the type).
        power_name: the power table's one row for every case name, simulated in ``mode``.
        power_args: the hypothesis' further arguments in the simulation (and the ``pair``'s
            fields).
        effect: the simulated effect in words, where not the rows' KS against real (fields
            ``table``, ``mode``, ``kind`` and ``laws``: each law's mean ± std).
    """

    name: str
    hypothesis: Callable[..., Hypothesis]
    experiment: str = "sensitivity"
    variants: tuple[str, ...] = MODES
    kinds: tuple[str, ...] = ()
    shown: tuple[str, ...] = ()
    table: str | None = None
    mode: str | None = None
    metric: str = "ms"
    signal: str = "l2"
    law: str = "normal"
    shape: Shape | None = Shape.TABLE
    runs: tuple[tuple[str, str], ...] = ()
    pair: tuple[str, ...] = ()
    power_name: str | None = None
    power_args: Mapping[str, str] = field(default_factory=dict)
    effect: str | None = None

    def types(self, variant: str | None = None) -> list[str]:
        """The types its test reads: the compared ones, then those shown beside them."""
        return [kind.format(variant=variant) for kind in (*self.kinds, *self.shown)]

    def case_names(self, mode: str | None = None) -> list[str]:
        """The hypothesis' case names (a `Shape.SAME_LAW` case's for its tabulated types); with
        ``mode``, those a test in that step mode decides (every variant that is not a mode)."""
        kinds = self.kinds if self.shape is Shape.SAME_LAW else (None,)
        return [
            self.name.format(variant=variant, kind=kind)
            for variant in self.variants or (None,)
            if mode is None or variant == mode or variant not in MODES
            for kind in kinds
        ]

    def power_names(self, mode: str | None = None) -> set[str]:
        """The power table's rows for the case's names (empty without a power case); with
        ``mode``, for those a test in that step mode decides."""
        if self.shape is None:
            return set()
        return {self.power_name or name for name in self.case_names(mode)}

    def simulated(self) -> list[Simulated]:
        """The power table's cases of this one, with the paper's effect as rows."""
        if self.shape is Shape.RUNS:
            columns = {
                prefix + kind: Row(table, mode, kind, self.law)
                for prefix, (table, mode) in zip(RUN_PREFIXES, self.runs, strict=True)
                for kind in self.kinds
            }
            judge = lambda s: self.hypothesis(*(_prefixed(s, p) for p in RUN_PREFIXES))  # noqa: E731
            return [Simulated(self.name, columns, judge, RUN_PREFIXES)]
        if self.shape is Shape.SAME_LAW:
            variants = (self.mode,) if self.power_name else self.variants
            return [self._same_law(variant, kind) for variant in variants for kind in self.kinds]
        if self.shape is Shape.TABLE:
            return [self._table(variant) for variant in self.variants]
        return []

    def _table(self, variant: str) -> Simulated:
        mode = self.mode or variant
        kinds = [kind.format(variant=variant) for kind in self.kinds]
        columns = {kind: Row(self.table, mode, kind, self.law) for kind in kinds}
        name = self.name.format(variant=variant)
        judge = lambda s: self.hypothesis(s, variant)  # noqa: E731
        return Simulated(name, columns, judge, effect=self._effect(mode, None, kinds))

    def _effect(self, mode: str, kind: str | None, kinds: list[str]) -> str | None:
        """`effect` filled in (None where the case has none)."""
        if self.effect is None:
            return None
        rows = paper_rows(self.table, mode)
        laws = ", ".join(f"{k} {rows[k][0]:.2f} ± {rows[k][1]:.2f}" for k in kinds)
        return self.effect.format(table=self.table, mode=mode, kind=kind, laws=laws)

    def _same_law(self, variant: str, kind: str) -> Simulated:
        mode = self.mode or variant
        row = Row(self.table, mode, kind, self.law)
        columns = {name.format(kind=kind, **self.power_args): row for name in self.pair}
        name = self.power_name or self.name.format(variant=variant, kind=kind)
        judge = lambda s: self.hypothesis(s, variant, kind, **self.power_args)  # noqa: E731
        return Simulated(name, columns, judge, effect=self._effect(mode, kind, [kind]))


@dataclass(frozen=True)
class Claim:
    """One claim: its statement and its cases.

    ``title`` heads its statement in the report (the id where not given); ``in_matrix``: its
    cases are rows of the claims × subjects matrix (the table checks and the precision check
    are not claims of the paper's kind).
    """

    id: str
    statement: str
    cases: tuple[ClaimCase, ...] = ()
    title: str = ""
    in_matrix: bool = True

    @property
    def heading(self) -> str:
        """The claim in the report: ``C01: real activations ...`` (two digits, so that C01, C02,
        ..., C15 sort as numbers)."""
        title = self.title or (f"C{int(self.id[1:]):02d}" if self.id[1:].isdigit() else self.id)
        return f"{title}: {self.statement}"

    def case(self, name: str, experiment: str | None = None) -> ClaimCase:
        """The case of this claim whose name pattern is ``name`` (read from ``experiment``, where
        two cases share a name)."""
        found = [
            case
            for case in self.cases
            if case.name == name and experiment in (None, case.experiment)
        ]
        if len(found) != 1:
            names = [(c.name, c.experiment) for c in self.cases]
            raise KeyError(f"{self.id}: not one case {name!r} ({experiment}) among {names}")
        return found[0]

    @property
    def experiments(self) -> set[str]:
        """The experiments its tests read."""
        return {case.experiment for case in self.cases}

    @property
    def variants(self) -> set[str]:
        """What ``[...]`` may name after the claim in an expectation key."""
        return {variant for case in self.cases for variant in case.variants}


ORDERING = h.ORDERING
GAP_KINDS = h.GAP_KINDS
C11_EFFECT = "recorded AP run (towards A), gamma laws: {laws}"
SAME_ROW = "both {}: Table {{table}} {{mode}} {{kind}} row"

CLAIMS: tuple[Claim, ...] = (
    Claim(
        "C1",
        "perturbations towards real activations blow up earlier than towards random ones.",
        (
            ClaimCase(
                "C1[{variant}]", h.c01_real_before_random, kinds=("real", "random"), table="A.1"
            ),
        ),
    ),
    Claim(
        "C2",
        "synthetic-baseline targets are closer to real ones than random targets are.",
        (
            ClaimCase(
                "C2[{variant}]",
                h.c02_baseline_closer_than_random,
                kinds=("real", "random", "synthetic-baseline"),
                table="A.1",
            ),
        ),
    ),
    Claim(
        "C3",
        "synthetic-structured targets are closer to real ones than synthetic-baseline targets.",
        (
            ClaimCase(
                "C3[{variant}]",
                h.c03_structured_closer_than_baseline,
                variants=("absolute",),
                kinds=("real", "synthetic-baseline", "synthetic-structured"),
                table="1",
            ),
        ),
    ),
    Claim(
        "C4",
        "synthetic-random targets are further from real ones than synthetic-baseline targets.",
        (
            ClaimCase(
                "C4[{variant}]",
                h.c04_random_further_than_baseline,
                variants=("absolute",),
                kinds=("real", "synthetic-baseline", "synthetic-random"),
                table="A.1",
            ),
        ),
    ),
    Claim(
        "C5",
        "with relative steps, real blowups sit mid-path and the structured-baseline gap shrinks.",
        (
            ClaimCase(
                "C5 mid-path",
                h.c05_real_blowups_mid_path,
                variants=("relative",),
                kinds=("real",),
                table="A.1",
            ),
            ClaimCase(
                "C5 gap shrinks",
                h.c05_gap_shrinks,
                variants=("relative",),
                kinds=GAP_KINDS,
                shape=Shape.RUNS,
                runs=(("A.1", "absolute"), ("A.1", "relative")),
            ),
        ),
    ),
    Claim(
        "C6",
        "structured w/o cos sim is the best synthetic type with relative steps, not with absolute.",
        (ClaimCase("C6[{variant}]", h.c06_no_cos, kinds=("real", *SYNTHETIC), table="A.1"),),
    ),
    Claim(
        "C7",
        "the AUC step metric keeps the ordering real < structured < baseline < random.",
        (
            ClaimCase(
                "C7[{variant}]", h.c07_auc_ordering, kinds=ORDERING, table="B.1", metric="auc"
            ),
        ),
    ),
    Claim(
        "C8",
        "NL steps: real earliest, structured next; baseline later than random.",
        (ClaimCase("C8[{variant}]", h.c08_nl_ordering, kinds=ORDERING, table="B.2", metric="nl"),),
    ),
    Claim(
        "C9",
        "KL divergence keeps the L2 ordering; its structured-baseline gap is not smaller.",
        (
            ClaimCase(
                "C9[{variant}]",
                h.c09_kl_ordering,
                experiment="kl",
                kinds=ORDERING,
                table="C.1",
                signal="kl",
            ),
            ClaimCase(
                "C9 gap",
                h.c09_gap_not_smaller,
                experiment="kl",
                variants=("absolute",),
                kinds=GAP_KINDS,
                shown=("random",),
                shape=Shape.RUNS,
                runs=(("C.1", "absolute"), ("1", "absolute")),
            ),
        ),
    ),
    Claim(
        "C10",
        "SAE reconstructions of real targets behave like them, blowing up slightly later.",
        (
            ClaimCase(
                "C10[{variant}]",
                h.c10_reconstruction_like_real,
                experiment="reconstruction",
                kinds=("real", "reconstruction"),
                shown=("random",),
                table="D.1",
            ),
        ),
    ),
    Claim(
        "C11",
        "real activations sit on activation plateaus that random and synthetic bases lack.",
        (
            ClaimCase(
                "C11[{variant}]",
                h.c11_real_plateaus,
                experiment="plateau",
                variants=PLATEAU_VARIANTS,
                kinds=("real", "{variant}"),
                table="AP",
                mode="absolute",
                metric="ap",
                law="gamma",
                effect=C11_EFFECT,
            ),
        ),
    ),
    Claim(
        "C12",
        "the SAE latents of real activations have a dominant top latent and positive cosines.",
        (ClaimCase("C12", h.c12_latent_structure, "latent-statistics", variants=(), shape=None),),
    ),
    Claim(
        "C13",
        "the scale facts of the setup: activation norm, base-target distance, cosine w.r.t. b_dec.",
        (ClaimCase("C13", h.c13_scale_facts, "latent-statistics", variants=(), shape=None),),
    ),
    Claim(
        "C14",
        "building synthetic activations from another real activation does not change the results.",
        (
            ClaimCase(
                "C14[{variant}, {kind}]",
                h.c14_source_does_not_matter,
                experiment="other-source",
                kinds=SYNTHETIC,
                table="A.1",
                shape=Shape.SAME_LAW,
                pair=h.C14_PAIR,
                effect=SAME_ROW.format("constructions"),
            ),
        ),
    ),
    Claim(
        "C15",
        "synthetic activations whose latents co-occur as in real ones are closer to real than "
        "frequency-matched ones whose latents do not (the question the paper leaves open, "
        "section 7).",
        (
            ClaimCase(
                "C15[{variant}]",
                h.c15_cooccurrence_closer,
                kinds=("real", *h.C15_KINDS),
                shown=("synthetic-structured",),
                shape=None,
            ),
            ClaimCase(
                "C15[{variant}]",
                h.c15_cooccurrence_closer,
                experiment="plateau",
                variants=("AP",),
                kinds=("real", *h.C15_KINDS),
                shown=("synthetic-structured",),
                metric="ap",
                shape=None,
            ),
        ),
    ),
    Claim(
        "C16",
        "a blowup is carried by few latents: removing a real activation's top 3 SAE latents blows "
        "its output up by more than removing 3 of its active latents at random, by a tenth of "
        "what removing its whole code does (section 7's latent ablations; the project's claim, "
        "not the paper's).",
        (ClaimCase("C16", h.c16_few_latents_carry_blowups, "ablation", variants=(), shape=None),),
    ),
    Claim(
        "precision",
        "lower precision (bfloat16, float16, TF32) keeps the float32 step distributions.",
        (
            ClaimCase(
                "precision[{variant}, {kind}]",
                h.precision_keeps_steps,
                kinds=("real",),
                table="A.1",
                mode="absolute",
                shape=Shape.SAME_LAW,
                pair=h.PRECISION_PAIR,
                power_name="precision",
                power_args={"precision": "lower"},
                effect=SAME_ROW.format("precisions"),
            ),
        ),
        title="Precision",
        in_matrix=False,
    ),
    Claim(
        "tables",
        "our mean, std and KS of each paper table row, within a tolerance from n.",
        title="Quantitative checks",
        in_matrix=False,
    ),
)
"""Every claim, in the order of the report and the matrix."""

BY_ID: dict[str, Claim] = {claim.id: claim for claim in CLAIMS}


def claim(claim_id: str) -> Claim:
    """The record of ``claim_id``; a clear error for an unknown one."""
    if claim_id not in BY_ID:
        raise KeyError(f"no claim {claim_id!r}; the claims: {list(BY_ID)}")
    return BY_ID[claim_id]


def claim_order(claim_id: str) -> int:
    """The position of ``claim_id`` among `CLAIMS` (a claim without a record last)."""
    ids = list(BY_ID)
    return ids.index(claim_id) if claim_id in BY_ID else len(ids)


def in_matrix(claim_id: str) -> bool:
    """Whether ``claim_id``'s cases are rows of the claims × subjects matrix (not those of a claim
    without a record: a user's own)."""
    return claim_id in BY_ID and BY_ID[claim_id].in_matrix
