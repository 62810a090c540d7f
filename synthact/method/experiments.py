"""The paper's experiments, one declaration each, computed once per run by a `Lab`.

`EXPERIMENTS` is the table: an `Experiment`'s name, the types and step modes it holds, and what
its curves read (each path's start and destination). `Lab.result` computes any of them; the pytest
fixtures, the xdist groups and the expectation keys are derived from the table, so a new experiment
is one entry here (see docs/method.md for what each one measures).

Results are cached on disk (`ResultCache`) under a key of the subject, the config, the seed, the
fingerprint of the subject's files (`SubjectSpec.fingerprint`) and the digest of the method's code
(`method_version`). Every random draw has its own generator, seeded by
``(seed, label)``, so a result does not depend on which experiments ran before it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import torch

from synthact.core.cache import Arrays, ResultCache
from synthact.core.choices import AUTHORS_DECIMALS, PAPER_SUBJECT
from synthact.core.code_digest import modules_digest
from synthact.core.progress import Progress
from synthact.core.registry import Registry
from synthact.core.seeding import generator
from synthact.core.stages import Stage, StageClock, stage_table
from synthact.method import constructions
from synthact.method.ablation import N_STEPS as ABLATION_STEPS
from synthact.method.ablation import AblationResult, ablation_arrays
from synthact.method.config import RunConfig
from synthact.method.constructions import PoolStatistics
from synthact.method.cooccurrence import Cooccurrence, count_cooccurrence
from synthact.method.engine import MODES
from synthact.method.latents import LatentStats, ScaleFacts, latent_statistics, scale_facts
from synthact.method.results import PATH_STEPS, PLATEAU_STEPS, CurveArrays, LatentResult, Result
from synthact.method.targets import (
    Gaussian,
    check_targets,
    fit_gaussian,
    other_indices,
    real_pairs,
    reconstruct,
)
from synthact.subjects import Constants, Subject, estimate_log_sparsity, load_subject, subject_spec
from synthact.subjects.activations import collect_activations

if TYPE_CHECKING:
    from synthact.method.engine import Curves

__all__ = ["EXPERIMENTS", "Experiment", "Lab", "Result", "Stage", "stage_table"]

METHOD_MODULES = (
    "synthact.method",
    "synthact.subjects",
    "synthact.core.choices",
    "synthact.core.seeding",
    "synthact.core.validate",
)
"""Modules (a package: all of its modules) whose code defines the method: the computation
(`synthact.method`), the subjects' loaders and prompt sources, and the named choices, seeding and
input checks they share. The digest of their code is part of every cache key."""
BUILDERS = ("synthact.subjects.null_hub",)
"""Modules of `METHOD_MODULES`' packages that build a subject's files rather than compute on them:
the subject's fingerprint (`SubjectSpec.fingerprint`, the null hub's recipe) covers what they
produce."""


@functools.cache
def method_version() -> str:
    """16 hex digits of the code of `METHOD_MODULES` but `BUILDERS`, prose aside
    (`synthact.core.code_digest`).

    Taken once per process, at import, so an edit during a run cannot label old results."""
    return modules_digest(METHOD_MODULES, exclude=BUILDERS)[:16]


method_version()

REFERENCES = ("real", "random")
"""The types every comparison has: model-generated activations and the Gaussian."""

Endpoints = tuple[torch.Tensor | None, torch.Tensor]
"""A type's paths: start points ``[n, d]`` (None: each base prompt's own activation A) and
destinations ``[n, d]``."""


@dataclass(frozen=True)
class Experiment:
    """One experiment: the curves of each of its ``types`` in each of ``modes``.

    Its types are ``references`` and the constructions (`synthact.method.constructions`) that join
    its ``membership``; ``kl_references`` and those joining ``kl_membership`` record KL curves too;
    ``rounded_types`` are read rounded in relative mode, as the authors did
    (`RunConfig.real_curves`). ``reads(lab, type)`` gives the paths' `Endpoints`.
    Instead of ``reads``, ``same_as`` names the experiment whose curves it is a view of, or
    ``compute(lab)`` gives a result that is not curves. ``joins`` names an experiment whose types
    its result includes (for comparison). ``step_metrics`` are the (metric, signal) steps the
    claims read from its curves (`synthact.method.metrics`; KL ones only where KL is recorded). Its
    fixture is its name with ``_`` for ``-`` (and, with several modes, ``<fixture>_<mode>`` for one
    mode).
    """

    name: str
    references: tuple[str, ...] = ()
    modes: tuple[str, ...] = MODES
    reads: Callable[[Lab, str], Endpoints] | None = None
    membership: str | None = None
    kl_references: tuple[str, ...] = ()
    kl_membership: str | None = None
    rounded_types: tuple[str, ...] = ()
    same_as: str | None = None
    joins: str | None = None
    compute: Callable[[Lab], object] | None = None
    step_metrics: tuple[tuple[str, str], ...] = PATH_STEPS

    def __post_init__(self) -> None:
        ways = [self.reads, self.same_as, self.compute]
        if sum(way is not None for way in ways) != 1:
            raise ValueError(f"experiment {self.name!r}: give one of reads, same_as or compute")

    @property
    def types(self) -> tuple[str, ...]:
        return self.references + _joining(self.membership)

    @property
    def kl_types(self) -> tuple[str, ...]:
        return self.kl_references + _joining(self.kl_membership)

    @property
    def fixture(self) -> str:
        return self.name.replace("-", "_")

    @property
    def group(self) -> str:
        """The experiment that computes it: tests of one group share an xdist worker."""
        return self.same_as or self.name

    def mode(self, mode: str | None) -> str | None:
        """``mode`` checked (None: the only mode, if there is one)."""
        if mode is None and len(self.modes) <= 1:
            return self.modes[0] if self.modes else None
        if mode not in self.modes:
            raise ValueError(f"{self.name} runs in {self.modes}, not in mode {mode!r}")
        return mode


def _joining(membership: str | None) -> tuple[str, ...]:
    return constructions.names(membership) if membership else ()


def towards_targets(source: str) -> Callable[[Lab, str], Endpoints]:
    """From each base prompt's own activation A towards the targets of a type built from
    ``source`` (``base``: from A; ``other``: from a third real activation)."""
    return lambda lab, kind: (None, lab.targets(kind, source))


def plateau_paths(towards: str) -> Callable[[Lab, str], Endpoints]:
    """From a base of each type written into A's prompt, towards a fresh Gaussian sample
    (``gaussian``) or towards A (``base``)."""

    def reads(lab: Lab, kind: str) -> Endpoints:
        start = lab.plateau_base(kind)
        if towards == "gaussian":
            labels = ("plateau-destinations", kind)
            destination = lab.gaussian.sample(lab.config.n, lab.generator(*labels))
        else:
            destination = lab.base_acts
        return start, check_targets(f"plateau ({kind} base)", start, destination)

    return reads


def _latent_statistics(lab: Lab) -> LatentResult:
    """Appendix E statistics of ``n_latent_stats`` real activations, and the scale facts."""

    def compute() -> Arrays:
        sae = lab.subject.sae
        latents = latent_statistics(sae, lab.acts[: lab.config.n_latent_stats])
        facts = scale_facts(sae, lab.acts, *lab.pairs)
        return {
            **{f"stats/{k}": v for k, v in vars(latents).items() if k != "share"},
            **{f"scale/{k}": v for k, v in vars(facts).items()},
        }

    arrays = lab.cached("latent-statistics", compute)
    return LatentResult(
        LatentStats(**_unprefixed(arrays, "stats/"), share="l1"),
        ScaleFacts(**_unprefixed(arrays, "scale/")),
    )


def _ablation(lab: Lab) -> AblationResult:
    """Section 7's latent ablations of the sensitivity experiment's bases
    (`synthact.method.ablation`), with the SAE's firing frequencies and Neuronpedia id (and
    whether the subject is a null control under that id's release)."""

    def compute() -> Arrays:
        sae = lab.subject.sae
        arrays = ablation_arrays(
            lambda tokens, target, base, kl: lab._run(
                tokens, target, mode="relative", kl=kl, base=base, n_steps=ABLATION_STEPS
            ),
            sae,
            lab.base_tokens,
            lab.base_acts,
            lab.generator("ablation"),
        )
        neuronpedia = getattr(getattr(sae.cfg, "metadata", None), "neuronpedia_id", None)
        return {**arrays, "neuronpedia": np.array(neuronpedia or "")}

    arrays = lab.cached("ablation", compute)
    return AblationResult(
        lab.config.subject,
        lab.constants,
        arrays,
        lab.sparsity["log_sparsity"],
        str(arrays["neuronpedia"]) or None,
        random_weights=subject_spec(lab.config.subject).random_weights,
    )


EXPERIMENTS: Registry[Experiment] = Registry("experiment")
EXPERIMENTS.register(  # Section 5.1, Table A.1; records Appendix C's KL curves in the same runs
    Experiment(
        "sensitivity",
        REFERENCES,
        reads=towards_targets("base"),
        membership="sensitivity",
        kl_references=REFERENCES,
        kl_membership="kl",
        rounded_types=("real",),
    )
)
EXPERIMENTS.register(  # Appendix C
    Experiment("kl", REFERENCES, same_as="sensitivity", membership="kl")
)
EXPERIMENTS.register(  # Appendix D: towards SAE(T), beside the real targets
    Experiment(
        "reconstruction", ("reconstruction",), reads=towards_targets("base"), joins="sensitivity"
    )
)
EXPERIMENTS.register(  # Section 6, C14: synthetic targets built from a third real activation
    Experiment("other-source", reads=towards_targets("other"), membership="other-source")
)
EXPERIMENTS.register(  # Section 5.2, Figure 3
    Experiment(
        "plateau",
        REFERENCES,
        ("absolute",),
        reads=plateau_paths("gaussian"),
        membership="plateau",
        step_metrics=PLATEAU_STEPS,
    )
)
EXPERIMENTS.register(  # the run that printed the AP numbers of the authors' repository
    Experiment(
        "plateau-towards-base",
        REFERENCES,
        ("absolute",),
        reads=plateau_paths("base"),
        membership="plateau",
        step_metrics=PLATEAU_STEPS,
    )
)
EXPERIMENTS.register(Experiment("latent-statistics", (), (), compute=_latent_statistics))
EXPERIMENTS.register(Experiment("ablation", (), (), compute=_ablation))  # section 7, C16


class Lab:
    """Computes and caches the experiments of one `RunConfig` (`RunConfig.resolved` here).

    The subject loads only when something has to be computed. ``device`` overrides the config's
    with one of the same type (e.g. ``cuda:1``; not part of the cache key); ``share``: processes
    computing on that device at once (see `perturbation_curves`). Progress bars show when stderr
    is a terminal, else a line per finished stage (`Progress`; False: nothing); ``stages``
    records the wall time of what was computed.
    """

    def __init__(
        self,
        config: RunConfig,
        cache: ResultCache | None = None,
        *,
        progress: Progress | bool | None = None,
        device: str | None = None,
        share: int = 1,
    ):
        config = config.resolved()
        if device is not None and torch.device(device).type != torch.device(config.device).type:
            raise ValueError(f"device {device!r} is not a {config.device!r} device")
        self.config = config
        self.device = device or config.device
        self.share = share
        self.cache = cache if cache is not None else ResultCache()
        if not isinstance(progress, Progress):
            progress = Progress(config.subject, mode="off" if progress is False else None)
        self.progress = progress
        self.clock = StageClock(progress.finished)
        self._results: dict[str, Arrays] = {}
        self._targets: dict[tuple[str, str], torch.Tensor] = {}
        self._added: dict[int, Lab] = {}

    @property
    def stages(self) -> list[Stage]:
        return self.clock.stages

    def pop_stages(self) -> list[Stage]:
        """The stages recorded since the last call (and forget them)."""
        return self.clock.pop()

    def result(
        self, name: str, mode: str | None = None, n: int | None = None
    ) -> Result | LatentResult | AblationResult:
        """The result of experiment ``name`` (`EXPERIMENTS`) in step ``mode``; with ``n`` above
        the config's, this run's rows followed by ``n - config.n`` more (`rows_from`), so a
        larger n starts with the rows of the run at the config's n."""
        experiment = EXPERIMENTS.lookup(name)
        mode = experiment.mode(mode)
        if n is not None and n > self.config.n:
            if experiment.compute is not None:
                raise ValueError(f"{name} has no rows to add: it is not a step experiment")
            more = self.rows_from(n).result(name, mode)
            return self.result(name, mode).followed_by(more)  # type: ignore[union-attr]
        if experiment.same_as is not None:
            return self.result(experiment.same_as, mode)
        if experiment.compute is not None:
            return experiment.compute(self)
        result = self._curves(experiment, mode)
        return self.result(experiment.joins, mode).join(result) if experiment.joins else result

    def computed_types(self, name: str, mode: str | None = None) -> list[str]:
        """The types of experiment ``name`` in ``mode`` whose curves are computed (in memory or in
        the on-disk cache), without computing any."""
        experiment = EXPERIMENTS.lookup(name)
        mode = experiment.mode(mode)
        found = []
        for kind in experiment.types:
            entry, extra = _type_entry(experiment, mode, kind)
            key = self._key(entry, **extra)
            if entry in self._results or self.cache.path(entry, key).is_file():
                found.append(kind)
        return found

    def compute(self, name: str, mode: str | None = None) -> None:
        """Compute (or read) every cache entry of experiment ``name`` in ``mode`` that it computes
        itself: not the experiment it is a view of, nor the one it joins."""
        experiment = EXPERIMENTS.lookup(name)
        mode = experiment.mode(mode)
        if experiment.same_as is not None:
            raise ValueError(f"{name} is a view of {experiment.same_as}: compute that one")
        if experiment.compute is not None:
            experiment.compute(self)
            return
        dict(self._curves(experiment, mode).arrays)  # reads (or computes) every type's entry

    def generator(self, *labels: str) -> torch.Generator:
        """The generator of the draw named by ``labels``."""
        return generator(self.config.seed, *labels)

    def rows_from(self, stop: int) -> Lab:
        """The lab of the rows ``config.n`` to ``stop`` (one per ``stop``): `AddedRows`."""
        if stop not in self._added:
            self._added[stop] = AddedRows(self, stop)
        return self._added[stop]

    def cached(self, name: str, compute: Callable[[], Arrays], **extra: object) -> Arrays:
        """``compute()``'s arrays, from memory, else from the on-disk cache, else computed (and
        timed as stage ``name``)."""
        if name not in self._results:

            def timed() -> Arrays:
                with self.clock.stage(name):
                    return compute()

            self._results[name] = self.cache.get_or_compute(name, self._key(name, **extra), timed)
        return self._results[name]

    def _key(self, name: str, **extra: object) -> dict[str, object]:
        config = asdict(self.config)
        del config["construction"]  # an outside construction's results carry its own digest
        del config["n_needed"]  # which n each experiment runs at, not what a row holds
        key = {"experiment": name, "method": method_version(), "config": config}
        return {**key, "files": self._fingerprint, **extra}

    @cached_property
    def _fingerprint(self) -> str:
        """The subject's `SubjectSpec.fingerprint`: known before loading, else after."""
        spec = subject_spec(self.config.subject)
        found = spec.fingerprint()
        if found is None:
            self.subject  # noqa: B018 -- loading fetches its files
            found = spec.fingerprint()
        if found is None:
            raise RuntimeError(
                f"subject {self.config.subject!r}: its files were not found after loading"
            )
        return found

    # --- what the experiments read --------------------------------------------------------------

    @cached_property
    def subject(self) -> Subject:
        with self.clock.stage("load subject"):
            return load_subject(self.config.subject, device=self.device, dtype=self.config.dtype)

    @property
    def pool(self) -> Arrays:
        """``tokens`` [n_pool, P] and their real activations ``acts`` [n_pool, d] at hook_in."""
        return self.cached("pool", self._compute_pool)

    def _compute_pool(self) -> Arrays:
        subject, length = self.subject, self.config.prompt_len
        if length > subject.model.cfg.n_ctx:
            raise ValueError(
                f"prompt_len {length} exceeds {self.config.subject}'s context of "
                f"{subject.model.cfg.n_ctx} tokens"
            )
        tokens = subject.sample_prompts(self.config.n_pool, self.generator("prompts"), length)
        counter = self.progress.counter("pool of real activations", len(tokens))
        acts = collect_activations(subject.model, tokens, subject.hook_in, progress=counter)
        return {"tokens": tokens.numpy(), "acts": acts.numpy()}

    @cached_property
    def acts(self) -> torch.Tensor:
        return torch.from_numpy(self.pool["acts"])

    @property
    def sparsity(self) -> Arrays:
        """``log_sparsity`` [d_sae], and ``estimated_from``: 0 for the subject's own, else the
        number of pool activations it was estimated from (`estimate_log_sparsity`)."""
        return self.cached("sparsity", self._compute_sparsity)

    @property
    def sparsity_source(self) -> str:
        """Where the SAE's log-sparsity comes from, in words (for the report's parameters)."""
        n = int(self.sparsity["estimated_from"])
        if n == 0:
            return "the subject's own (the release's sparsity file, or exact for planted)"
        return f"estimated from the SAE's firing on {n} pool activations (no sparsity file)"

    def _compute_sparsity(self) -> Arrays:
        subject = self.subject
        if not subject.estimate_sparsity:
            return {"log_sparsity": subject.log_sparsity.numpy(), "estimated_from": np.array(0)}
        log_sparsity = estimate_log_sparsity(subject.sae, self.acts)
        return {"log_sparsity": log_sparsity.numpy(), "estimated_from": np.array(len(self.acts))}

    @cached_property
    def constants(self) -> Constants:
        """The subject's declared constants, else the norm rule on the pool's activations."""
        declared = subject_spec(self.config.subject).constants
        if declared is not None:
            return declared
        return Constants.from_activation_norm(float(self.acts.norm(dim=-1).mean()))

    @cached_property
    def gaussian(self) -> Gaussian:
        with self.clock.stage("Gaussian fit"):
            return fit_gaussian(self.acts[: self.config.n_gaussian], self.device)

    @cached_property
    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(base index [n], target index [n]) into the pool; base != target."""
        return real_pairs(len(self.acts), self.config.n, self.generator("pairs"))

    @cached_property
    def sources(self) -> torch.Tensor:
        """Pool index [n] of a third real activation per pair (C14's synthetic sources)."""
        return other_indices(len(self.acts), self.pairs, self.generator("sources"))

    @property
    def base_tokens(self) -> torch.Tensor:
        return torch.from_numpy(self.pool["tokens"])[self.pairs[0]]

    @property
    def base_acts(self) -> torch.Tensor:
        return self.acts[self.pairs[0]]

    def targets(self, kind: str, source: str = "base") -> torch.Tensor:
        """Targets [n, d] of one type, checked finite and away from the base; synthetic ones are
        built from A (``source="base"``) or a third real activation (``"other"``). Built once."""
        if (kind, source) not in self._targets:
            where = "" if source == "base" else " (other source)"
            with self.clock.stage(f"targets: {kind}{where}"):
                built = self._build_targets(kind, source)
                self._targets[kind, source] = check_targets(kind, self.base_acts, built)
        return self._targets[kind, source]

    def _build_targets(self, kind: str, source: str) -> torch.Tensor:
        if kind == "real":
            return self.acts[self.pairs[1]]
        if kind == "random":
            return self.gaussian.sample(self.config.n, self.generator("random-targets"))
        if kind == "reconstruction":
            return reconstruct(self.subject.sae, self.acts[self.pairs[1]])
        labels = ("synthetic", kind) if source == "base" else ("synthetic", kind, source)
        return constructions.build(
            kind,
            base=self.base_acts if source == "base" else self.acts[self.sources],
            sae=self.subject.sae,
            pool=self.pool_statistics,
            generator=self.generator(*labels),
            latent_moves=self.config.latent_moves,
        )

    @cached_property
    def pool_statistics(self) -> PoolStatistics:
        """What constructions read of the pool: the log-sparsity and, when first read, the
        co-occurrence counts of the Gaussian's ``n_gaussian`` activations (cached)."""
        log_sparsity = torch.from_numpy(self.sparsity["log_sparsity"])
        return PoolStatistics(self.subject.sae, log_sparsity, self.cooccurrence)

    def cooccurrence(self) -> Cooccurrence:
        """Firing and co-firing counts of the SAE's latents on the Gaussian's activations."""

        def compute() -> Arrays:
            pool = self.acts[: self.config.n_gaussian]
            return count_cooccurrence(self.subject.sae, pool).arrays()

        return Cooccurrence.from_arrays(self.cached("cooccurrence", compute))

    def plateau_base(self, kind: str) -> torch.Tensor:
        """Plateau bases [n, d]: a Gaussian sample for ``random``, else the targets of the type
        (real: T, the pair's other activation; synthetic: built from A)."""
        if kind == "random":
            return self.gaussian.sample(self.config.n, self.generator("plateau-bases"))
        return self.targets(kind)

    # --- curves ---------------------------------------------------------------------------------

    def _curves(self, experiment: Experiment, mode: str) -> Result:
        """The experiment's curves in ``mode``, each type computed (and cached) when first read."""

        types, n = len(experiment.types), self.config.n
        precision = "" if self.config.exact else f", {self.config.dtype}"
        task = f"{experiment.name}-{mode} ({types} types × {n}{precision})"
        counter = self.progress.counter(task, types * n, scale=self.config.n_steps)

        def load(kind: str) -> Arrays:
            name, extra = _type_entry(experiment, mode, kind)
            first, computed = name not in self._results, []

            def compute() -> Arrays:
                computed.append(kind)
                start, destination = experiment.reads(self, kind)
                curves = self._run(
                    self.base_tokens,
                    destination,
                    mode=mode,
                    kl=extra["kl"],
                    base=start,
                    progress=counter,
                )
                arrays = _prefixed(kind, curves)
                if self._rounds(experiment, mode, kind):
                    arrays = {k: _authors_rounding(k, v) for k, v in arrays.items()}
                return arrays

            arrays = self.cached(name, compute, **extra)
            if counter is not None and first and not computed:
                counter.skip(self.config.n * self.config.n_steps)
            return arrays

        arrays = CurveArrays(experiment.types, experiment.kl_types, load)
        return Result(
            self.config.subject,
            experiment.name,
            mode,
            self.constants,
            arrays,
            experiment.step_metrics,
        )

    def _rounds(self, experiment: Experiment, mode: str, kind: str) -> bool:
        """Whether ``kind``'s curves are read rounded, as the authors' tables read them."""
        choice = self.config.real_curves
        if choice == "auto":
            choice = "rounded" if self.config.subject == PAPER_SUBJECT else "full"
        return choice == "rounded" and mode == "relative" and kind in experiment.rounded_types

    def _run(
        self,
        tokens: torch.Tensor,
        target: torch.Tensor,
        *,
        mode: str,
        kl: bool = False,
        base: torch.Tensor | None = None,
        progress: Callable[[int], None] | None = None,
        n_steps: int | None = None,
    ) -> Curves:
        """The engine on the subject: every call of the experiments goes through here (paths of
        ``n_steps`` points; None: the config's)."""
        from synthact.method.engine import perturbation_curves

        subject = self.subject
        return perturbation_curves(
            subject.model,
            tokens,
            target,
            base=base,
            mode=mode,
            step=self.config.spacing(self.constants.step),
            n_steps=n_steps or self.config.n_steps,
            hook_in=subject.hook_in,
            hook_out=subject.hook_out,
            kl=kl,
            progress=progress,
            share=self.share,
            tf32=self.config.tf32,
        )


class AddedRows(Lab):
    """The rows ``start = parent.config.n`` to ``stop`` of the parent lab's step experiments.

    Their bases continue the parent's permutation of the pool (`real_pairs` is prefix-stable:
    the first ``start`` pairs of ``stop`` are the parent's), so no base repeats; every other draw
    (pair targets, Gaussian and synthetic targets, plateau bases) has its own generator, the
    parent's label with ``rows START-STOP`` added, so the parent's rows, cache entries and
    snapshots are untouched. The pool, its Gaussian, sparsity and constants are the parent's;
    each cache entry's key is the parent's with ``rows: [start, stop]``.
    """

    def __init__(self, parent: Lab, stop: int):
        start = parent.config.n
        if stop <= start:
            raise ValueError(f"rows to add run from {start} to a larger n, got {stop}")
        self.parent, self.start, self.stop = parent, start, stop
        self.config = replace(parent.config, n=stop - start)
        self.device, self.share, self.cache = parent.device, parent.share, parent.cache
        self.progress, self.clock = parent.progress, parent.clock
        self._results, self._targets, self._added = {}, {}, {}

    def generator(self, *labels: str) -> torch.Generator:
        return generator(self.config.seed, *labels, f"rows {self.start}-{self.stop}")

    def _key(self, name: str, **extra: object) -> dict[str, object]:
        return self.parent._key(name, **extra) | {"rows": [self.start, self.stop]}

    @property
    def subject(self) -> Subject:  # type: ignore[override]
        return self.parent.subject

    @property
    def pool(self) -> Arrays:
        return self.parent.pool

    @property
    def acts(self) -> torch.Tensor:  # type: ignore[override]
        return self.parent.acts

    @property
    def sparsity(self) -> Arrays:
        return self.parent.sparsity

    @property
    def constants(self) -> Constants:  # type: ignore[override]
        return self.parent.constants

    @property
    def gaussian(self) -> Gaussian:  # type: ignore[override]
        return self.parent.gaussian

    @property
    def pool_statistics(self) -> PoolStatistics:  # type: ignore[override]
        return self.parent.pool_statistics

    @property
    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        """The pairs ``start`` to ``stop`` of the parent's draw of ``stop`` pairs."""
        base, target = real_pairs(len(self.acts), self.stop, self.parent.generator("pairs"))
        return base[self.start :], target[self.start :]


def _unprefixed(arrays: Arrays, prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def _type_entry(experiment: Experiment, mode: str, kind: str) -> tuple[str, dict[str, object]]:
    """The cache entry of one type's curves: its name and the key's extra fields (whether KL
    curves are recorded; for an outside construction its code's digest, as the method hash covers
    the built-in ones)."""
    extra: dict[str, object] = {"kl": kind in experiment.kl_types}
    known = constructions.CONSTRUCTIONS.get(kind)
    if known and known.origin:
        extra["construction"] = known.version
    return f"{experiment.name}-{mode}-{kind}", extra


def _authors_rounding(key: str, values: np.ndarray) -> np.ndarray:
    """L2 and KL curves ``[n, n_steps]`` rounded to `AUTHORS_DECIMALS`, in float64 as the values
    read back from the authors' observation files; the distances ``[n]`` as they are."""
    if key.endswith(("/l2", "/kl")):
        return np.round(values.astype(np.float64), AUTHORS_DECIMALS)
    return values


def _prefixed(kind: str, curves: Curves) -> Arrays:
    out = {f"{kind}/l2": curves.l2.numpy(), f"{kind}/distance": curves.distance.numpy()}
    if curves.kl is not None:
        out[f"{kind}/kl"] = curves.kl.numpy()
    return out
