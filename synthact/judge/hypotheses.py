"""The paper's claims as hypotheses on step distributions: what each claim test asserts.

Each function takes named step samples (paired rows: every type perturbed from the same base
prompts) and returns a `Hypothesis`: the checks that must all pass for the claim to hold and, for
claims a control is expected to fail, the checks that show the effect absent at half the paper's
size. The claim tests (claims/) and the power simulation (`synthact.judge.power`) call the same
functions, so the error rates in docs/power.md are those of the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from synthact.judge import checks, stats
from synthact.judge.checks import Check
from synthact.judge.paper import paper_numbers, paper_rows

if TYPE_CHECKING:
    from synthact.method.latents import LatentStats, ScaleFacts

Steps = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Hypothesis:
    """A claim case's checks; ``case`` names it as docs/power.md does (``C1[absolute]``), and
    ``samples`` are the paired step samples its checks read."""

    case: str
    checks: tuple[Check, ...]
    absent: tuple[Check, ...] = ()
    samples: tuple[np.ndarray, ...] = ()

    @property
    def holds(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def pairing(self) -> float:
        """How strongly the samples' rows are paired (`stats.pairing_correlation`)."""
        return stats.pairing_correlation(self.samples)


def _of(steps: Steps, *kinds: str) -> tuple[np.ndarray, ...]:
    return tuple(steps[kind] for kind in kinds)


def _half_paper_gap(table: str, mode: str, earlier: str, later: str) -> float:
    rows = paper_rows(table, mode)
    return checks.paper_standardized_gap(rows[earlier], rows[later]) / 2


def c01_real_before_random(steps: Steps, mode: str) -> Hypothesis:
    """Real MS steps earlier than random ones and KS > 0.3; absent: under half Table A.1's gap."""
    half_gap = _half_paper_gap("A.1", mode, "real", "random")
    return Hypothesis(
        f"C1[{mode}]",
        (
            checks.earlier(steps, "real", "random"),
            checks.ks_above(steps, "real", "random", 0.3),
        ),
        (checks.gap_below(steps, "real", "random", half_gap),),
        _of(steps, "real", "random"),
    )


def c02_baseline_closer_than_random(steps: Steps, mode: str) -> Hypothesis:
    return Hypothesis(
        f"C2[{mode}]",
        (checks.closer(steps, "synthetic-baseline", "random"),),
        samples=_of(steps, "real", "synthetic-baseline", "random"),
    )


def c03_structured_closer_than_baseline(steps: Steps, mode: str) -> Hypothesis:
    return Hypothesis(
        f"C3[{mode}]",
        (checks.closer(steps, "synthetic-structured", "synthetic-baseline"),),
        samples=_of(steps, "real", "synthetic-structured", "synthetic-baseline"),
    )


def c04_random_further_than_baseline(steps: Steps, mode: str) -> Hypothesis:
    return Hypothesis(
        f"C4[{mode}]",
        (checks.closer(steps, "synthetic-baseline", "synthetic-random"),),
        samples=_of(steps, "real", "synthetic-baseline", "synthetic-random"),
    )


def c05_real_blowups_mid_path(steps: Steps, mode: str) -> Hypothesis:
    """Relative MS steps of real targets: >= 90 % in [30, 70], median in [45, 55]."""
    if mode != "relative":
        raise ValueError(f"C5's mid-path case reads relative steps, not {mode!r} ones")
    real = steps["real"]
    return Hypothesis(
        "C5 mid-path",
        (
            checks.fraction_between(real, 30, 70, 0.9, "real MS steps"),
            *checks.median_within(real, 45.0, 55.0, "real MS step"),
        ),
        samples=(real,),
    )


GAP_KINDS = ("real", "synthetic-baseline", "synthetic-structured")


def c05_gap_shrinks(absolute: Steps, relative: Steps) -> Hypothesis:
    """KS(baseline) - KS(structured) is smaller with relative steps than with absolute ones."""
    gap = checks.ks_contrast(
        "KS gap (baseline - structured): absolute - relative > 0",
        [*_gap_terms(absolute, 1), *_gap_terms(relative, -1)],
        above=0.0,
    )
    samples = _of(absolute, *GAP_KINDS) + _of(relative, *GAP_KINDS)
    return Hypothesis("C5 gap shrinks", (gap,), samples=samples)


NON_INFERIORITY = 0.05
"""KS slack of the claims whose paper numbers differ by less than n = 1000 can resolve (C6
relative: 0.17 vs 0.19; C9: KL gap 0.19 vs L2 gap 0.17): "not worse by more than 0.05"."""

SYNTHETIC_OTHERS = ("synthetic-baseline", "synthetic-structured", "synthetic-random")


def c06_no_cos(steps: Steps, mode: str) -> Hypothesis:
    """Relative: no-cos closest to real (within 0.05 KS); absolute: further than structured."""
    if mode == "relative":
        found = tuple(
            checks.closer(steps, "structured-no-cos", other, slack=NON_INFERIORITY)
            for other in SYNTHETIC_OTHERS
        )
    else:
        found = (checks.closer(steps, "synthetic-structured", "structured-no-cos"),)
    samples = _of(steps, "real", "structured-no-cos", *SYNTHETIC_OTHERS)
    return Hypothesis(f"C6[{mode}]", found, samples=samples)


ORDERING = ("real", "synthetic-structured", "synthetic-baseline", "random")


def c07_auc_ordering(steps: Steps, mode: str) -> Hypothesis:
    found = tuple(checks.paper_ordering(steps, mode))
    return Hypothesis(f"C7[{mode}]", found, samples=_of(steps, *ORDERING))


def c08_nl_ordering(steps: Steps, mode: str) -> Hypothesis:
    """Mean NL steps: real < structured < random < baseline."""
    order = ("real", "synthetic-structured", "random", "synthetic-baseline")
    found = tuple(checks.earlier(steps, a, b, "NL") for a, b in pairwise(order))
    return Hypothesis(f"C8[{mode}]", found, samples=_of(steps, *order))


def c09_kl_ordering(steps: Steps, mode: str) -> Hypothesis:
    found = tuple(checks.paper_ordering(steps, mode))
    return Hypothesis(f"C9[{mode}]", found, samples=_of(steps, *ORDERING))


def c09_gap_not_smaller(kl: Steps, l2: Steps) -> Hypothesis:
    """The baseline - structured KS gap of KL steps is at least the L2 gap minus 0.05."""
    gap = checks.ks_contrast(
        f"KS gap (baseline - structured): KL - L2 > -{NON_INFERIORITY:g}",
        [*_gap_terms(kl, 1), *_gap_terms(l2, -1)],
        above=-NON_INFERIORITY,
    )
    return Hypothesis("C9 gap", (gap,), samples=_of(kl, *GAP_KINDS) + _of(l2, *GAP_KINDS))


def c10_reconstruction_like_real(steps: Steps, mode: str) -> Hypothesis:
    """Reconstructions blow up later than real targets; absolute: the same distribution."""
    found = [checks.earlier(steps, "real", "reconstruction")]
    if mode == "absolute":
        found.append(checks.ks_below(steps, "reconstruction", "real"))
    return Hypothesis(f"C10[{mode}]", tuple(found), samples=_of(steps, "real", "reconstruction"))


def c11_real_plateaus(steps: Steps, variant: str) -> Hypothesis:
    """Real bases have later AP steps than ``variant`` bases; absent: under half the recorded
    run's gap."""
    recorded = paper_rows("AP", "absolute")
    half_gap = checks.paper_standardized_gap(recorded[variant], recorded["real"]) / 2
    return Hypothesis(
        f"C11[{variant}]",
        (checks.earlier(steps, variant, "real", "AP"),),
        (checks.gap_below(steps, variant, "real", half_gap, "AP"),),
        _of(steps, "real", variant),
    )


def _per_activation_mean(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean of each activation's block of ``values`` (blocks of ``counts``, in order): ``[sum
    counts]`` -> ``[number of non-empty blocks]``.

    Empty blocks are skipped. Cosines are bootstrapped over activations, not over latent pairs,
    which are dependent.
    """
    counts = counts[counts > 0]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.add.reduceat(values, starts) / counts


def c12_latent_structure(stats: LatentStats) -> Hypothesis:
    """Top latent's norm share above twice the second's; active latents' decoder rows aligned
    with the top latent's and with each other (cosines averaged per activation)."""
    share = stats.norm_share
    top_cos = _per_activation_mean(stats.top_cos, stats.l0 - 1)
    pairwise_cos = _per_activation_mean(stats.pairwise_cos, stats.l0 * (stats.l0 - 1) // 2)
    found = (
        checks.mean_above(share[:, 0] - 2 * share[:, 1], 0.0, "top-latent share - 2 x second's"),
        checks.mean_above(top_cos, 0.0, "cosine of active latents with the top latent"),
        checks.mean_above(pairwise_cos, 0.0, "pairwise cosine of active latents"),
    )
    return Hypothesis("C12", found)


SCALE_TOLERANCE = 0.10
"""Relative tolerance on the norm and the distance, given as "about 56" and "about 40"."""
COS_TOLERANCE = 0.05
"""Absolute tolerance on the mean cosine w.r.t. b_dec, given as "about 0.42"."""


def c13_scale_facts(facts: ScaleFacts, factor: float) -> Hypothesis:
    """Mean activation norm and base-target distance within `SCALE_TOLERANCE` of the paper's
    times ``factor`` (the subject's scale factor), mean cosine w.r.t. b_dec within
    `COS_TOLERANCE` of the paper's."""
    paper = paper_numbers()["scale"]
    found = []
    for name, values, number in (
        ("activation norm", facts.act_norm, paper["activation_norm"]),
        ("base-target distance", facts.distance, paper["base_target_distance"]),
    ):
        target = factor * number
        low, high = (1 - SCALE_TOLERANCE) * target, (1 + SCALE_TOLERANCE) * target
        found += checks.mean_within(values, low, high, f"{name} ({number} × {factor:g})")
    cos = paper["mean_cosine_wrt_b_dec"]
    low, high = cos - COS_TOLERANCE, cos + COS_TOLERANCE
    found += checks.mean_within(facts.cos_b_dec, low, high, "cosine w.r.t. b_dec")
    return Hypothesis("C13", tuple(found))


C15_MARGIN = 0.3
"""KS by which co-occurrence must NOT beat its frequency-matched control where co-occurrence
carries no mechanism (`planted-cooccur-null`). Not the equivalence margin 0.1: at n = 100 the
KS-contrast bound lies 0.15-0.25 above its estimate, so 0.1 cannot be shown even at a true
difference of 0; 0.3 is under the effect of the positive control `planted-cooccur` (0.47-0.76 KS
at seed 0)."""

C15_KINDS = ("synthetic-cooccurrence", "synthetic-frequency")
"""The co-occurrence construction and its control: the same swaps and firing frequencies, the
other latents chosen without ``P(j | k)``, so only co-occurrence tells them apart."""


def c15_cooccurrence_closer(steps: Steps, case: str) -> Hypothesis:
    """synthetic-cooccurrence closer to real than its frequency-matched control
    synthetic-frequency (``case``: a step mode, or ``AP``); absent: not closer by ``C15_MARGIN``
    KS or more."""
    return Hypothesis(
        f"C15[{case}]",
        (checks.closer(steps, *C15_KINDS),),
        (checks.closer(steps, *reversed(C15_KINDS), slack=C15_MARGIN),),
        _of(steps, "real", *C15_KINDS),
    )


C14_PAIR = ("{kind} from A", "{kind} from another activation")
"""The names of a construction's steps built from A and from another real activation."""


def c14_source_does_not_matter(steps: Steps, mode: str, kind: str) -> Hypothesis:
    """``kind`` built from A and from another real activation: the same MS distribution."""
    pair = tuple(name.format(kind=kind) for name in C14_PAIR)
    found = (checks.ks_below(steps, *pair),)
    return Hypothesis(f"C14[{mode}, {kind}]", found, samples=_of(steps, *pair))


PRECISION_PAIR = ("{kind} ({precision})", "{kind} (float32)")
"""The names of a type's steps in a lower precision and in float32."""


def precision_keeps_steps(steps: Steps, mode: str, kind: str, precision: str) -> Hypothesis:
    """``kind``'s MS steps in ``precision`` and in float32: the same distribution."""
    pair = tuple(name.format(kind=kind, precision=precision) for name in PRECISION_PAIR)
    found = (checks.ks_below(steps, *pair),)
    return Hypothesis(f"precision[{mode}, {kind}]", found, samples=_of(steps, *pair))


def _gap_terms(steps: Steps, sign: int) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """``sign * (KS(baseline, real) - KS(structured, real))`` as KS contrast terms."""
    real = steps["real"]
    return [
        (sign, steps["synthetic-baseline"], real),
        (-sign, steps["synthetic-structured"], real),
    ]


C16_MARGIN = 0.1
"""Share of a row's output change (removing its whole SAE code) by which the blowup of removing
its top latents must exceed, on average, that of removing as many random latents of the row (C16):
the project's choice. A linear response gives 0 for both; so does a row whose top latents are all
it has. On `planted-raised` (seed 0, n = 100) the top latents carry 0.52 and random ones 0.28."""


def c16_few_latents_carry_blowups(top: np.ndarray, random: np.ndarray) -> Hypothesis:
    """A row's blowup is carried by few latents: removing its top `TOP_K` latents (by their own
    removal's blowup) blows the output up by more than removing `TOP_K` latents drawn at random
    from its active set, by `C16_MARGIN` of the output change of removing its whole code, on
    average over the rows. Absent: the top latents carry less than `C16_MARGIN` at all, which
    bounds the difference (a blowup excess is >= 0, so is a random removal's share).

    ``top``, ``random`` ``[n]``: each row's shares carried by its top latents and by its random
    ones (`synthact.method.ablation.AblationResult.carried`), paired by row: the check reads the
    per-row difference (`checks.mean_above`; its size on a difference's law with a point mass at
    0, the rows whose random latents are their top ones, in tests/calibration/test_mean_checks.py).
    The absence reads the top shares, not the difference: on a control whose rows hold about
    `TOP_K` latents the difference is 0 on all but a few rows, and with 2 or fewer non-zero rows
    in 100 the studentized bound of its mean is unbounded (over 5 % of resamples hold none).
    """
    if np.shape(top) != np.shape(random):
        raise ValueError(f"paired shares need one shape, got {np.shape(top)}, {np.shape(random)}")
    gain = np.asarray(top, dtype=float) - np.asarray(random, dtype=float)
    return Hypothesis(
        "C16",
        (checks.mean_above(gain, C16_MARGIN, "blowup share of the top latents - of random ones"),),
        (checks.mean_below(top, C16_MARGIN, "blowup share of the top latents"),),
        (top, random),
    )
