"""The paper's experiments as named, cached computations on one subject.

A `Lab` holds a `RunConfig` (subject, n, seed, ...) and computes each experiment once: the pool of
real activations, the sensitivity experiments (absolute and relative step), KL, SAE reconstruction,
synthetic targets built from another real activation (C14), activation plateaus and the latent
statistics. Each result is stored in a `ResultCache` keyed by the subject, the config, the seed and
a hash of the method's source code, so pytest-xdist workers and reruns read instead of recomputing,
and any change to the method invalidates old results.

Every random draw comes from a generator seeded by ``(seed, label)``, so a result does not depend on
the order in which experiments run, on the worker that runs them, or on which other experiments ran.
"""

from __future__ import annotations

import functools
import sys
import time
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import torch

from synthact import metrics
from synthact.cache import Arrays, ResultCache
from synthact.code_digest import modules_digest
from synthact.config import RunConfig
from synthact.engine import MODES, Curves, perturbation_curves
from synthact.latents import LatentStats, ScaleFacts, latent_statistics, scale_facts
from synthact.seeding import generator
from synthact.subjects import (
    Constants,
    Subject,
    estimate_log_sparsity,
    load_subject,
    subject_spec,
)
from synthact.targets import (
    SYNTHETIC_TYPES,
    Gaussian,
    check_targets,
    collect_activations,
    fit_gaussian,
    other_indices,
    real_pairs,
    reconstruct,
    synthetic_targets,
)

SENSITIVITY_TYPES = ("real", "random", *SYNTHETIC_TYPES)
KL_TYPES = ("real", "random", "synthetic-baseline", "synthetic-structured")
PLATEAU_TYPES = ("real", "random", "synthetic-baseline", "synthetic-structured")

PLATEAU_DIRECTIONS = ("gaussian", "base")
"""Where the plateau experiment steps each base: ``gaussian`` (default: the paper's text and the
authors' notebook at HEAD, a fresh Gaussian sample per perturbation) or ``base`` (the earlier run,
at 3c25aaa, that printed the AP numbers of the authors' repository: towards A, the prompt's own
activation; those numbers are not in the paper)."""

METHOD_MODULES = (
    "synthact.experiments",
    "synthact.config",
    "synthact.engine",
    "synthact.hooks",
    "synthact.validate",
    "synthact.seeding",
    "synthact.targets",
    "synthact.synthetic",
    "synthact.latents",
    "synthact.subjects",
    "synthact.prompts",
    "synthact.planted",
)
"""Modules (a package: all of its modules) whose code defines the method; the digest of their code
is part of every cache key."""


@functools.cache
def method_version() -> str:
    """16 hex digits of the code of `METHOD_MODULES`, docstrings and comments aside.

    Taken once per process, at import, so an edit during a run cannot label old results."""
    return modules_digest(METHOD_MODULES)[:16]


method_version()


class CurveArrays(Mapping[str, np.ndarray]):
    """The arrays of a `Result`, computed (or read from the cache) one type at a time, on first use.

    Keys are ``"<type>/l2"``, ``"<type>/distance"`` and, for ``kl_kinds``, ``"<type>/kl"``; a claim
    that reads two types computes only those two.
    """

    def __init__(
        self, kinds: tuple[str, ...], kl_kinds: tuple[str, ...], load: Callable[[str], Arrays]
    ):
        self._keys = [
            f"{kind}/{signal}"
            for kind in kinds
            for signal in ("l2", "distance", *(("kl",) if kind in kl_kinds else ()))
        ]
        self._load = load
        self._loaded: dict[str, Arrays] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._keys:
            raise KeyError(key)
        kind = key.rpartition("/")[0]
        if kind not in self._loaded:
            self._loaded[kind] = self._load(kind)
        return self._loaded[kind][key]

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


@dataclass(frozen=True)
class Result:
    """Curves of one experiment in one mode, by target (or base) type.

    ``arrays`` holds ``"<type>/l2"`` [n, n_steps], ``"<type>/distance"`` [n] and, where computed,
    ``"<type>/kl"`` [n, n_steps] (a plain dict, or `CurveArrays` computed on first use).
    """

    subject: str
    experiment: str
    mode: str
    constants: Constants
    arrays: Mapping[str, np.ndarray]

    @property
    def types(self) -> list[str]:
        return [k.split("/")[0] for k in self.arrays if k.endswith("/l2")]

    def curves(self, kind: str, signal: str = "l2") -> np.ndarray:
        """Curves ``[n, n_steps]`` of one type; ``signal`` is ``"l2"`` or ``"kl"``."""
        key = f"{kind}/{signal}"
        if key not in self.arrays:
            raise KeyError(
                f"{self.experiment} has no {signal} curves for {kind!r}; has {self.types}"
            )
        return self.arrays[key]

    def join(self, other: Result) -> Result:
        """The types of both results, sharing mode and constants (D.1: real + reconstruction)."""
        mine = (self.subject, self.mode, self.constants)
        theirs = (other.subject, other.mode, other.constants)
        if mine != theirs:
            raise ValueError(f"cannot join {mine} with {theirs}")
        experiment = f"{self.experiment}+{other.experiment}"
        arrays = ChainMap(self.arrays, other.arrays)  # lazy: reads compute nothing else
        return Result(self.subject, experiment, self.mode, self.constants, arrays)

    def distance(self, kind: str) -> np.ndarray:
        return self.arrays[f"{kind}/distance"]

    def lengths(self, kind: str) -> np.ndarray | None:
        """Absolute mode: each curve cut at its target, ``floor(distance / step)`` points of the
        nominal step (the authors' ``target_step``, on their 100-point grid too)."""
        if self.mode != "absolute":
            return None
        n_steps = self.curves(kind).shape[1]
        return metrics.absolute_lengths(self.distance(kind), self.constants.step, n_steps)

    def steps(
        self, kind: str, metric: str = "ms", signal: str = "l2", *, cut: bool | None = None
    ) -> np.ndarray:
        """The step metric (``ms``, ``auc``, ``nl`` or ``ap``) of every curve of one type, [n].

        ``cut``: None (default) cuts absolute-step curves at their target for the metrics the
        authors cut (`synthact.metrics.CUT_METRICS`: MS and AP; AUC and NL read the full curves);
        True or False cuts for every metric or for none.
        """
        if metric not in metrics.METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(metrics.METRICS)}")
        curves = self.curves(kind, signal)
        cut = metric in metrics.CUT_METRICS if cut is None else cut
        lengths = self.lengths(kind) if cut else None
        if metric == "ms":
            flat = self.constants.flat_slope if signal == "l2" else 0.02
            return metrics.ms_step(curves, lengths, flat_slope=flat)
        if metric == "ap":
            return metrics.ap_step(curves, lengths, threshold=self.constants.ap_threshold)
        return metrics.METRICS[metric](curves, lengths)


@dataclass(frozen=True)
class Stage:
    """One timed stage of a run: its name, wall time and nesting depth."""

    name: str
    seconds: float
    depth: int


class Lab:
    """Computes and caches the experiments of one `RunConfig`.

    The subject is loaded only when something has to be computed, so a run whose results are all
    cached never loads a model. Progress bars show by default when stderr is a terminal (the
    CLI, ``pytest -s``), not in captured test output. ``stages`` records the wall time of every
    stage computed here (loading, pool, Gaussian fit, each target type, each experiment).
    """

    def __init__(
        self,
        config: RunConfig,
        cache: ResultCache | None = None,
        *,
        progress: bool | None = None,
        device: str | None = None,
        share: int | None = None,
    ):
        """``device`` overrides ``config.device`` with a device of the same type (e.g. one GPU of
        several, ``cuda:1``); results do not depend on which, so it is not part of the cache key.
        ``share``: processes computing on that device at once, each sizing its chunks for its
        share of the memory (None: the engine's default, see `perturbation_curves`)."""
        if device is not None and torch.device(device).type != torch.device(config.device).type:
            raise ValueError(f"device {device!r} is not a {config.device!r} device")
        self.config = config
        self.device = device or config.device
        self.share = share
        self.cache = cache if cache is not None else ResultCache()
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.stages: list[Stage] = []
        self._depth = 0
        self._results: dict[str, Arrays] = {}
        self._targets: dict[tuple[str, str], torch.Tensor] = {}

    def pop_stages(self) -> list[Stage]:
        """The stages recorded since the last call (and forget them)."""
        stages, self.stages = self.stages, []
        return stages

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        """Record the wall time of the enclosed block as stage ``name``.

        Its entry is placed when the block starts and timed when it ends, so ``stages`` lists
        every stage before the stages nested in it.
        """
        stages, depth = self.stages, self._depth
        index = len(stages)
        stages.append(Stage(name, float("nan"), depth))
        start, self._depth = time.perf_counter(), depth + 1
        try:
            yield
        finally:
            self._depth = depth
            stages[index] = Stage(name, time.perf_counter() - start, depth)

    @cached_property
    def subject(self) -> Subject:
        with self._stage("load subject"):
            config = self.config
            return load_subject(config.subject, device=self.device, dtype=config.dtype)

    def _key(self, experiment: str, **extra: object) -> dict:
        return {
            "experiment": experiment,
            "method": method_version(),
            "config": asdict(self.config),
            **extra,
        }

    def _cached(self, name: str, compute: Callable[[], Arrays], **extra: object) -> Arrays:
        """``compute()``'s arrays, from memory, else from the on-disk cache, else computed."""
        if name not in self._results:

            def timed() -> Arrays:
                with self._stage(name):
                    return compute()

            key = self._key(name, **extra)
            self._results[name] = self.cache.get_or_compute(name, key, timed)
        return self._results[name]

    def _generator(self, *labels: str) -> torch.Generator:
        return generator(self.config.seed, *labels)

    # --- shared inputs -------------------------------------------------------------------------

    @property
    def pool(self) -> Arrays:
        """``tokens`` [n_pool, P] and their real activations ``acts`` [n_pool, d] at hook_in."""
        return self._cached("pool", self._compute_pool)

    def _compute_pool(self) -> Arrays:
        subject, length = self.subject, self.config.prompt_len
        if length > subject.model.cfg.n_ctx:
            raise ValueError(
                f"prompt_len {length} exceeds {self.config.subject}'s context of "
                f"{subject.model.cfg.n_ctx} tokens"
            )
        tokens = subject.sample_prompts(self.config.n_pool, self._generator("prompts"), length)
        acts = collect_activations(subject.model, tokens, subject.hook_in, progress=self.progress)
        return {"tokens": tokens.numpy(), "acts": acts.numpy()}

    @cached_property
    def acts(self) -> torch.Tensor:
        return torch.from_numpy(self.pool["acts"])

    @property
    def sparsity(self) -> Arrays:
        """``log_sparsity`` [d_sae] of the SAE, and ``estimated_from`` (0: the subject's own;
        N: estimated from the SAE's firing on the N pool activations, `estimate_log_sparsity`)."""
        return self._cached("sparsity", self._compute_sparsity)

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
        with self._stage("Gaussian fit"):
            return fit_gaussian(self.acts[: self.config.n_gaussian], self.device)

    @cached_property
    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(base index [n], target index [n]) into the pool; base != target."""
        return real_pairs(len(self.acts), self.config.n, self._generator("pairs"))

    @cached_property
    def sources(self) -> torch.Tensor:
        """Pool index [n] of a third real activation per pair, neither its base nor its target:
        what C14's synthetic targets are built from instead of the base."""
        return other_indices(len(self.acts), self.pairs, self._generator("sources"))

    @property
    def base_tokens(self) -> torch.Tensor:
        return torch.from_numpy(self.pool["tokens"])[self.pairs[0]]

    @property
    def base_acts(self) -> torch.Tensor:
        return self.acts[self.pairs[0]]

    def targets(self, kind: str, source: str = "base") -> torch.Tensor:
        """Target activations [n, d] of one type, checked finite and away from the base.

        Synthetic types are built from the pair's base activation A (``source="base"``, the
        paper's construction) or from a third real activation (``source="other"``, C14). Built once
        per Lab: both step modes, and the plateau bases, use the same vectors.
        """
        if (kind, source) not in self._targets:
            with self._stage(f"targets: {kind}" + (" (other source)" if source != "base" else "")):
                built = self._build_targets(kind, source)
                self._targets[kind, source] = check_targets(kind, self.base_acts, built)
        return self._targets[kind, source]

    def _build_targets(self, kind: str, source: str) -> torch.Tensor:
        if kind == "real":
            return self.acts[self.pairs[1]]
        if kind == "random":
            return self.gaussian.sample(self.config.n, self._generator("random-targets"))
        if kind == "reconstruction":
            return reconstruct(self.subject.sae, self.acts[self.pairs[1]])
        labels = ("synthetic", kind) if source == "base" else ("synthetic", kind, source)
        return synthetic_targets(
            self.subject.sae,
            self.base_acts if source == "base" else self.acts[self.sources],
            kind,
            torch.from_numpy(self.sparsity["log_sparsity"]),
            self._generator(*labels),
            latent_moves=self.config.latent_moves,
        )

    # --- experiments ---------------------------------------------------------------------------

    def _result(self, experiment: str, mode: str, arrays: Arrays) -> Result:
        return Result(self.config.subject, experiment, mode, self.constants, arrays)

    def _curves(
        self,
        experiment: str,
        mode: str,
        kinds: tuple[str, ...],
        kl_kinds: tuple[str, ...] = (),
        source: str = "base",
    ) -> Result:
        """Curves from the real bases towards each of ``kinds``; KL curves too for ``kl_kinds``.

        Each type is computed (and cached) on its own, when its curves are first read.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose from {MODES}")

        def load(kind: str) -> Arrays:
            kl = kind in kl_kinds

            def compute() -> Arrays:
                target = self.targets(kind, source)
                return _prefixed(kind, self._run(self.base_tokens, target, mode=mode, kl=kl))

            return self._cached(f"{experiment}-{mode}-{kind}", compute, kl=kl)

        return self._result(experiment, mode, CurveArrays(kinds, kl_kinds, load))

    def _run(
        self,
        tokens: torch.Tensor,
        target: torch.Tensor,
        *,
        mode: str,
        kl: bool = False,
        base: torch.Tensor | None = None,
    ) -> Curves:
        subject = self.subject
        return perturbation_curves(
            subject.model,
            tokens,
            target,
            base=base,
            mode=mode,
            step=self.config.spacing(self.constants.step),
            n_steps=self.config.n_steps,
            hook_in=subject.hook_in,
            hook_out=subject.hook_out,
            kl=kl,
            progress=self.progress,
            share=self.share,
            tf32=self.config.tf32,
        )

    def sensitivity(self, mode: str) -> Result:
        """Section 5.1 / Table A.1: L2 curves from real bases towards every target type.

        The same run also records the KL curves of Appendix C for ``KL_TYPES``: they are the
        same perturbations, so measuring both at once saves rerunning the model.
        """
        return self._curves("sensitivity", mode, SENSITIVITY_TYPES, KL_TYPES)

    def kl(self, mode: str) -> Result:
        """Appendix C: the perturbations measured by KL of the next-token distribution.

        A view of `sensitivity` (which records them); ``curves(kind, "kl")`` holds them.
        """
        return self.sensitivity(mode)

    def reconstruction(self, mode: str) -> Result:
        """Appendix D: perturbations towards SAE(T), the reconstruction of each real target."""
        return self._curves("reconstruction", mode, ("reconstruction",))

    def other_source(self, mode: str) -> Result:
        """Section 6 (C14): synthetic targets built from a third real activation, not the base.

        Same base prompts and types as `sensitivity`; the construction reads the latents of
        ``acts[sources]`` instead of the base's.
        """
        return self._curves("other-source", mode, SYNTHETIC_TYPES, source="other")

    def plateau(self, direction: str = "gaussian") -> Result:
        """Section 5.2 / Figure 3: AP curves from bases of each type, absolute steps.

        Every base is written into the pair's base prompt (A's) at the last position: real = T,
        the pair's OTHER activation; random = a Gaussian sample; synthetic-baseline and
        synthetic-structured = built from A (the sensitivity targets). ``direction`` (see
        `PLATEAU_DIRECTIONS`): ``gaussian`` steps towards a fresh Gaussian sample per
        perturbation (the paper; default), ``base`` towards A (the run that printed the AP numbers
        of the authors' repository).
        """
        if direction not in PLATEAU_DIRECTIONS:
            raise ValueError(f"direction must be one of {PLATEAU_DIRECTIONS}, got {direction!r}")
        name = "plateau" if direction == "gaussian" else f"plateau-towards-{direction}"

        def load(kind: str) -> Arrays:
            def compute() -> Arrays:
                base = self._plateau_base(kind)
                if direction == "gaussian":
                    labels = ("plateau-destinations", kind)
                    destination = self.gaussian.sample(self.config.n, self._generator(*labels))
                else:
                    destination = self.base_acts
                destination = check_targets(f"plateau ({kind} base)", base, destination)
                curves = self._run(self.base_tokens, destination, mode="absolute", base=base)
                return _prefixed(kind, curves)

            return self._cached(f"{name}-{kind}", compute)

        return self._result(name, "absolute", CurveArrays(PLATEAU_TYPES, (), load))

    def _plateau_base(self, kind: str) -> torch.Tensor:
        if kind == "random":
            return self.gaussian.sample(self.config.n, self._generator("plateau-bases"))
        return self.targets(kind)

    def latent_statistics(self) -> LatentResult:
        """Appendix E statistics of n_latent_stats real activations, and the scale facts."""

        def compute() -> Arrays:
            sae = self.subject.sae
            latents = latent_statistics(sae, self.acts[: self.config.n_latent_stats])
            facts = scale_facts(sae, self.acts, *self.pairs)
            return {
                **{f"stats/{k}": v for k, v in vars(latents).items() if k != "share"},
                **{f"scale/{k}": v for k, v in vars(facts).items()},
            }

        arrays = self._cached("latents", compute)
        return LatentResult(
            LatentStats(**_unprefixed(arrays, "stats/"), share="l1"),
            ScaleFacts(**_unprefixed(arrays, "scale/")),
        )

    def result(
        self, experiment: str, mode: str = "absolute", *, plateau: str = "gaussian"
    ) -> Result:
        """The result a paper table is computed from (``experiment`` as in paper_numbers.json);
        ``plateau`` is the plateau direction (`PLATEAU_DIRECTIONS`)."""
        if experiment == "plateau":
            return self.plateau(plateau)
        if experiment == "reconstruction":
            return self.sensitivity(mode).join(self.reconstruction(mode))
        if experiment in ("sensitivity", "kl"):
            return getattr(self, experiment)(mode)
        raise ValueError(f"unknown experiment {experiment!r}")


@dataclass(frozen=True)
class LatentResult:
    """Appendix E statistics and the scale facts of one run."""

    stats: LatentStats
    scale_facts: ScaleFacts


def stage_table(stages: list[Stage]) -> str:
    """The stages (as `Lab.stages` lists them: each before its nested ones) as an aligned text
    table, nested stages indented under their parent."""
    if not stages:
        return "no stage computed (every result came from the cache)\n"
    width = max(2 * s.depth + len(s.name) for s in stages)
    lines = [f"{'  ' * s.depth + s.name:<{width}}  {s.seconds:8.2f} s" for s in stages]
    return "\n".join(lines) + "\n"


def _unprefixed(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def _prefixed(kind: str, curves: Curves) -> Arrays:
    out = {f"{kind}/l2": curves.l2.numpy(), f"{kind}/distance": curves.distance.numpy()}
    if curves.kl is not None:
        out[f"{kind}/kl"] = curves.kl.numpy()
    return out
