"""The paper's experiments as named, cached computations on one subject.

A `Lab` holds a `RunConfig` (subject, n, seed, ...) and computes each experiment once: the pool of
real activations, the sensitivity experiments (absolute and relative step), KL, SAE reconstruction,
activation plateaus and the latent statistics. Each result is stored in a `ResultCache` keyed by the
subject, the config, the seed and a hash of the method's source code, so pytest-xdist workers and
reruns read instead of recomputing, and any change to the method invalidates old results.

Every random draw comes from a generator seeded by ``(seed, label)``, so a result does not depend on
the order in which experiments run, on the worker that runs them, or on which other experiments ran.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import torch

from synthact import metrics
from synthact.cache import Arrays, ResultCache
from synthact.latents import LatentStats, ScaleFacts, latent_statistics, scale_facts
from synthact.perturb import MODES, naive_perturbation_curves, perturbation_curves
from synthact.prompts import PROMPT_LEN
from synthact.subjects import Subject, estimate_log_sparsity, load_subject, subject_spec
from synthact.targets import (
    SYNTHETIC_TYPES,
    Gaussian,
    collect_activations,
    fit_gaussian,
    real_pairs,
    reconstruct,
    synthetic_targets,
)

SENSITIVITY_TYPES = ("real", "random", *SYNTHETIC_TYPES)
KL_TYPES = ("real", "random", "synthetic-baseline", "synthetic-structured")
PLATEAU_TYPES = ("real", "random", "synthetic-baseline", "synthetic-structured")

METHOD_MODULES = (
    "synthact.experiments",
    "synthact.perturb",
    "synthact.targets",
    "synthact.synthetic",
    "synthact.latents",
    "synthact.subjects",
    "synthact.prompts",
    "synthact.hub",
    "synthact.planted",
)
"""Modules whose source defines the method; their hash is part of every cache key."""


def method_version() -> str:
    """SHA-256 (16 hex digits) of the source of `METHOD_MODULES`."""
    h = hashlib.sha256()
    for name in METHOD_MODULES:
        spec = importlib.util.find_spec(name)
        h.update(name.encode())
        if spec is not None and spec.origin:
            with open(spec.origin, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def generator(seed: int, *labels: str) -> torch.Generator:
    """A CPU generator seeded by ``seed`` and the labels of the draw it is for."""
    digest = hashlib.sha256("/".join([str(seed), *labels]).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


@dataclass(frozen=True)
class RunConfig:
    """What one replication run computes.

    Attributes:
        subject: the subject's name (see `synthact.subjects.subject_spec`).
        n: perturbations per type (paper: 1000).
        seed: master seed of every random draw.
        n_gaussian: real activations the Gaussian ("random") is fitted on (paper: 32,000).
        n_latent_stats: real activations for Appendix E (paper: 2,000).
        n_steps: points per perturbation curve (paper: 101, steps 0..100).
        prompt_len: tokens per prompt; the last one is perturbed (paper: 10).
        device, dtype: where and in what precision the model runs.
    """

    subject: str
    n: int = 1000
    seed: int = 0
    n_gaussian: int = 32_000
    n_latent_stats: int = 2_000
    n_steps: int = 101
    prompt_len: int = PROMPT_LEN
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        subject_spec(self.subject)
        if self.prompt_len < 1:
            raise ValueError(f"prompt_len must be at least 1 token, got {self.prompt_len}")
        if self.n < 2:
            raise ValueError(f"n must be at least 2 perturbations per type, got {self.n}")
        if self.n_gaussian < 2:
            raise ValueError(f"n_gaussian must be at least 2, got {self.n_gaussian}")
        if self.n_steps < 2:
            raise ValueError(f"n_steps must be at least 2, got {self.n_steps}")

    @property
    def n_pool(self) -> int:
        """Real activations collected once: enough for the Gaussian, Appendix E and the pairs."""
        return max(self.n_gaussian, self.n_latent_stats, self.n + 1)


@dataclass(frozen=True)
class Scale:
    """The scale-dependent constants of the method, derived from the subject's activation norm.

    ``factor`` = (mean norm of real activations at the input hook) / 56, rounded to one significant
    figure; 56 is GPT-2's norm at ``blocks.1.hook_resid_pre`` (paper, section 4.1), so GPT-2 gets
    factor 1 and exactly the paper's constants: step 0.5, AP threshold 20, MS flat-slope 0.02. Every
    subject uses the same rule, so a subject whose activations are k times larger moves k times
    further per step and its curves are judged on a k times larger scale.
    """

    factor: float

    REFERENCE_NORM = 56.0

    @classmethod
    def from_activation_norm(cls, norm: float) -> Scale:
        if not math.isfinite(norm) or norm <= 0:
            raise ValueError(f"activation norm must be positive and finite, got {norm}")
        ratio = norm / cls.REFERENCE_NORM
        exponent = math.floor(math.log10(ratio))
        return cls(round(ratio / 10**exponent) * 10**exponent)

    @property
    def step(self) -> float:
        return 0.5 * self.factor

    @property
    def ap_threshold(self) -> float:
        return 20.0 * self.factor

    @property
    def flat_slope(self) -> float:
        return 0.02 * self.factor


@dataclass(frozen=True)
class Result:
    """Curves of one experiment in one mode, by target (or base) type.

    ``arrays`` holds ``"<type>/l2"`` [n, n_steps], ``"<type>/distance"`` [n] and, where computed,
    ``"<type>/kl"`` [n, n_steps].
    """

    subject: str
    experiment: str
    mode: str
    scale: Scale
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
        """The types of both results, which share mode and scale (D.1: real + reconstruction)."""
        mine, theirs = (
            (self.subject, self.mode, self.scale),
            (other.subject, other.mode, other.scale),
        )
        if mine != theirs:
            raise ValueError(f"cannot join {mine} with {theirs}")
        experiment = f"{self.experiment}+{other.experiment}"
        return Result(
            self.subject, experiment, self.mode, self.scale, {**self.arrays, **other.arrays}
        )

    def distance(self, kind: str) -> np.ndarray:
        return self.arrays[f"{kind}/distance"]

    def lengths(self, kind: str) -> np.ndarray | None:
        """Absolute mode: each curve stops at its target (first floor(distance/step) points)."""
        if self.mode != "absolute":
            return None
        n_steps = self.curves(kind).shape[1]
        return metrics.absolute_lengths(self.distance(kind), self.scale.step, n_steps)

    def steps(self, kind: str, metric: str = "ms", signal: str = "l2") -> np.ndarray:
        """The step metric (``ms``, ``auc``, ``nl`` or ``ap``) of every curve of one type, [n]."""
        curves, lengths = self.curves(kind, signal), self.lengths(kind)
        if metric == "ms":
            flat = self.scale.flat_slope if signal == "l2" else 0.02
            return metrics.ms_step(curves, lengths, flat_slope=flat)
        if metric == "ap":
            return metrics.ap_step(curves, lengths, threshold=self.scale.ap_threshold)
        if metric in ("auc", "nl"):
            return metrics.METRICS[metric](curves, lengths)
        raise ValueError(f"unknown metric {metric!r}; choose from ms, auc, nl, ap")


class Lab:
    """Computes and caches the experiments of one `RunConfig`.

    The subject is loaded only when something has to be computed, so a run whose results are all
    cached never loads a model. Progress bars show by default when stderr is a terminal (the
    CLI, ``pytest -s``), not in captured test output.
    """

    def __init__(
        self, config: RunConfig, cache: ResultCache | None = None, *, progress: bool | None = None
    ):
        self.config = config
        self.cache = cache if cache is not None else ResultCache()
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._results: dict[str, Arrays] = {}
        self._targets: dict[str, torch.Tensor] = {}

    @cached_property
    def subject(self) -> Subject:
        return load_subject(self.config.subject, device=self.config.device, dtype=self.config.dtype)

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
            key = self._key(name, **extra)
            self._results[name] = self.cache.get_or_compute(name, key, compute)
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

    def _compute_sparsity(self) -> Arrays:
        subject = self.subject
        if not subject.estimate_sparsity:
            return {"log_sparsity": subject.log_sparsity.numpy(), "estimated_from": np.array(0)}
        log_sparsity = estimate_log_sparsity(subject.sae, self.acts)
        return {"log_sparsity": log_sparsity.numpy(), "estimated_from": np.array(len(self.acts))}

    @cached_property
    def scale(self) -> Scale:
        return Scale.from_activation_norm(float(self.acts.norm(dim=-1).mean()))

    @cached_property
    def gaussian(self) -> Gaussian:
        return fit_gaussian(self.acts[: self.config.n_gaussian])

    @cached_property
    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(base index [n], target index [n]) into the pool; base != target."""
        return real_pairs(len(self.acts), self.config.n, self._generator("pairs"))

    @property
    def base_tokens(self) -> torch.Tensor:
        return torch.from_numpy(self.pool["tokens"])[self.pairs[0]]

    @property
    def base_acts(self) -> torch.Tensor:
        return self.acts[self.pairs[0]]

    def targets(self, kind: str) -> torch.Tensor:
        """Target activations [n, d] of one type, from the pairs' base (and target) activations.

        Built once per Lab: both step modes, and the plateau bases, use the same vectors.
        """
        if kind not in self._targets:
            self._targets[kind] = self._build_targets(kind)
        return self._targets[kind]

    def _build_targets(self, kind: str) -> torch.Tensor:
        if kind == "real":
            return self.acts[self.pairs[1]]
        if kind == "random":
            return self.gaussian.sample(self.config.n, self._generator("random-targets"))
        if kind == "reconstruction":
            return reconstruct(self.subject.sae, self.acts[self.pairs[1]])
        return synthetic_targets(
            self.subject.sae,
            self.base_acts,
            kind,
            torch.from_numpy(self.sparsity["log_sparsity"]),
            self._generator("synthetic", kind),
        )

    # --- experiments ---------------------------------------------------------------------------

    def _curves(
        self, experiment: str, mode: str, kinds: tuple[str, ...], kl_kinds: tuple[str, ...] = ()
    ) -> Result:
        """Curves from the real bases towards each of ``kinds``; KL curves too for ``kl_kinds``."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose from {MODES}")

        def compute() -> Arrays:
            out: Arrays = {}
            for kind in kinds:
                curves = self._run(
                    self.base_tokens, self.targets(kind), mode=mode, kl=kind in kl_kinds
                )
                out.update(_prefixed(kind, curves))
            return out

        name = f"{experiment}-{mode}"
        arrays = self._cached(name, compute, kinds=kinds, kl_kinds=kl_kinds)
        return Result(self.config.subject, experiment, mode, self.scale, arrays)

    def _run(
        self,
        tokens: torch.Tensor,
        target: torch.Tensor,
        *,
        mode: str,
        kl: bool = False,
        base: torch.Tensor | None = None,
    ):
        subject = self.subject
        args = (subject.model, tokens, target)
        kwargs = dict(
            base=base,
            mode=mode,
            step=self.scale.step,
            n_steps=self.config.n_steps,
            hook_in=subject.hook_in,
            hook_out=subject.hook_out,
            kl=kl,
            progress=self.progress,
        )
        try:
            return perturbation_curves(*args, **kwargs)
        except NotImplementedError as error:
            architecture = subject.model.cfg.original_architecture or "this architecture"
            warnings.warn(
                f"{self.config.subject} ({architecture}): the fast engine cannot run it ({error}); "
                "running the naive engine instead (same curves, several times slower)",
                stacklevel=2,
            )
            return naive_perturbation_curves(*args, **kwargs)

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

    def plateau(self) -> Result:
        """Section 5.2: from bases of each type, absolute steps towards a fresh Gaussian sample."""

        def compute() -> Arrays:
            destinations = self.gaussian.sample(self.config.n, self._generator("plateau-targets"))
            out: Arrays = {}
            for kind in PLATEAU_TYPES:
                base = self._plateau_base(kind)
                curves = self._run(self.base_tokens, destinations, mode="absolute", base=base)
                out.update(_prefixed(kind, curves))
            return out

        arrays = self._cached("plateau", compute)
        return Result(self.config.subject, "plateau", "absolute", self.scale, arrays)

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

    def result(self, experiment: str, mode: str = "absolute") -> Result:
        """The result a paper table is computed from (``experiment`` as in paper_numbers.json)."""
        if experiment == "plateau":
            return self.plateau()
        if experiment == "reconstruction":
            return self.sensitivity(mode).join(self.reconstruction(mode))
        if experiment in ("sensitivity", "kl"):
            return getattr(self, experiment)(mode)
        raise ValueError(f"unknown experiment {experiment!r}")

    def _plateau_base(self, kind: str) -> torch.Tensor | None:
        if kind == "real":
            return None  # the prompt's own activation
        if kind == "random":
            return self.gaussian.sample(self.config.n, self._generator("plateau-bases"))
        return self.targets(kind)


@dataclass(frozen=True)
class LatentResult:
    """Appendix E statistics and the scale facts of one run."""

    stats: LatentStats
    scale_facts: ScaleFacts


def _unprefixed(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def _prefixed(kind: str, curves) -> Arrays:
    out = {f"{kind}/l2": curves.l2.numpy(), f"{kind}/distance": curves.distance.numpy()}
    if curves.kl is not None:
        out[f"{kind}/kl"] = curves.kl.numpy()
    return out
