"""What an experiment gives the claims: step curves by type (`Result`), or latent statistics."""

from __future__ import annotations

import functools
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace

import numpy as np

from synthact.core.cache import Arrays
from synthact.method import metrics, ties
from synthact.method.latents import LatentStats, ScaleFacts
from synthact.subjects import Constants


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


class RowsThen(Mapping[str, np.ndarray]):
    """Every array of ``first`` followed by the same array of ``then`` along the rows (the first
    axis), concatenated on first use: a claim that reads two types concatenates only those."""

    def __init__(self, first: Mapping[str, np.ndarray], then: Mapping[str, np.ndarray]):
        self._first, self._then = first, then
        self._joined: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._joined:
            self._joined[key] = np.concatenate([self._first[key], self._then[key]])
        return self._joined[key]

    def __contains__(self, key: object) -> bool:
        return key in self._first

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)


PATH_STEPS = (("ms", "l2"), ("auc", "l2"), ("nl", "l2"), ("ms", "kl"))
"""(metric, signal) read from a perturbation path's curves: MS, AUC and NL of L2, MS of KL."""
PLATEAU_STEPS = (("ap", "l2"),)
"""(metric, signal) read from a plateau path's curves: AP of L2 (section 5.2)."""


@dataclass(frozen=True)
class Result:
    """Curves of one experiment in one mode, by target (or base) type.

    ``arrays`` holds ``"<type>/l2"`` [n, n_steps], ``"<type>/distance"`` [n] and, where computed,
    ``"<type>/kl"`` [n, n_steps] (a plain dict, or `CurveArrays` computed on first use).
    ``step_metrics``: the (metric, signal) steps the claims read from it (its experiment's).
    """

    subject: str
    experiment: str
    mode: str
    constants: Constants
    arrays: Mapping[str, np.ndarray]
    step_metrics: tuple[tuple[str, str], ...] = PATH_STEPS

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
        steps = tuple(dict.fromkeys(self.step_metrics + other.step_metrics))
        return Result(self.subject, experiment, self.mode, self.constants, arrays, steps)

    def followed_by(self, more: Result) -> Result:
        """This result's rows, then ``more``'s (more rows of the same experiment and mode)."""
        mine = (self.subject, self.experiment, self.mode, self.constants)
        theirs = (more.subject, more.experiment, more.mode, more.constants)
        if mine != theirs:
            raise ValueError(f"cannot add the rows of {theirs} to {mine}")
        return replace(self, arrays=RowsThen(self.arrays, more.arrays))

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
        authors cut (`synthact.method.metrics.CUT_METRICS`: MS and AP; AUC and NL read the full
        curves); True or False cuts for every metric or for none.
        """
        curves, cut, params = self._metric_inputs(kind, metric, signal, cut)
        lengths = self.lengths(kind) if cut else None
        return metrics.METRICS[metric](curves, lengths, **params)

    def possible_steps(
        self, kind: str, metric: str = "ms", signal: str = "l2", *, cut: bool | None = None
    ) -> np.ndarray:
        """Bool ``[n, S]``: the steps of `steps` that float rounding could give each curve
        (`synthact.method.ties`), its own step included; a cut curve's length may move by one where
        its
        distance sits within rounding of a step boundary."""
        curves, cut, params = self._metric_inputs(kind, metric, signal, cut)
        possible = functools.partial(ties.POSSIBLE[metric], curves, **params)
        if not cut or self.mode != "absolute":
            return possible()
        distance, n_steps = self.distance(kind), curves.shape[1]
        lengths = [
            metrics.absolute_lengths(distance * (1 + r), self.constants.step, n_steps)
            for r in (-ties.TIE_RTOL, ties.TIE_RTOL)
        ]
        return possible(lengths[0]) | possible(lengths[1])

    def _metric_inputs(
        self, kind: str, metric: str, signal: str, cut: bool | None
    ) -> tuple[np.ndarray, bool, dict[str, float]]:
        """The curves, whether to cut them, and the metric's parameters on this subject."""
        if metric not in metrics.METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(metrics.METRICS)}")
        cut = metric in metrics.CUT_METRICS if cut is None else cut
        params = {
            "ms": {"flat_slope": self.constants.flat_slope if signal == "l2" else 0.02},
            "ap": {"threshold": self.constants.ap_threshold},
        }.get(metric, {})
        return self.curves(kind, signal), cut, params


@dataclass(frozen=True)
class LatentResult:
    """Appendix E statistics and the scale facts of one run."""

    stats: LatentStats
    scale_facts: ScaleFacts
