"""What a subject is: a loaded `Subject`, the `SubjectSpec` that loads one, its `Constants`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

Sampler = Callable[..., "torch.Tensor"]
"""``(n, generator, length=PROMPT_LEN) -> tokens [n, length]`` (int64, CPU), deterministic given
the generator's state."""


@dataclass
class Subject:
    """A loaded subject: ``model`` (eval mode) and ``sae`` reading ``hook_in``; the perturbation
    is applied at ``hook_in`` and measured at ``hook_out``, last position. ``log_sparsity``
    ``[d_sae]`` (CPU) is ``log10(firing frequency + 1e-10)``, or None when ``estimate_sparsity``
    (the experiments estimate it from pool activations)."""

    name: str
    model: HookedTransformer
    sae: SAE
    log_sparsity: torch.Tensor | None
    sample_prompts: Sampler
    hook_in: str
    hook_out: str
    estimate_sparsity: bool = False


@dataclass(frozen=True)
class Constants:
    """The scale-dependent constants (docs/method.md, "Scale"): absolute ``step`` length, MS
    ``flat_slope``, AP ``ap_threshold``, and their ``source`` in words."""

    step: float
    flat_slope: float
    ap_threshold: float
    source: str

    REFERENCE_NORM = 56.0
    """GPT-2 small's mean activation norm at ``blocks.1.hook_resid_pre`` (paper, section 4.1)."""

    @property
    def factor(self) -> float:
        """The scale factor of these constants against the paper's (1 for the paper's own)."""
        return self.step / self.paper().step

    @classmethod
    def paper(cls) -> Constants:
        """The paper's constants for GPT-2 small."""
        return cls(step=0.5, flat_slope=0.02, ap_threshold=20.0, source="declared: the paper's")

    @classmethod
    def from_activation_norm(cls, norm: float) -> Constants:
        """The norm rule: the paper's constants times ``norm / 56`` rounded to one significant
        figure."""
        if not math.isfinite(norm) or norm <= 0:
            raise ValueError(f"activation norm must be positive and finite, got {norm}")
        ratio = norm / cls.REFERENCE_NORM
        exponent = math.floor(math.log10(ratio))
        factor = round(ratio / 10**exponent) * 10**exponent
        paper = cls.paper()
        return cls(
            step=paper.step * factor,
            flat_slope=paper.flat_slope * factor,
            ap_threshold=paper.ap_threshold * factor,
            source=f"norm rule: mean activation norm {norm:.4g} / 56 -> factor {factor:g}",
        )


def _nothing_to_check() -> None:
    """The preflight of a subject that needs no downloaded file."""


def _all_in_code() -> str:
    """The fingerprint of a subject that the method's code builds whole (its digest covers it)."""
    return ""


@dataclass(frozen=True)
class SubjectSpec:
    """How to load a subject: ``loader(device, torch dtype) -> Subject``. ``constants``: declared
    ones (None: the norm rule on the pool). ``preflight()`` checks in milliseconds, loading
    nothing, that the subject can load here (offline: its hub files are cached), else raises
    RuntimeError saying what to do. ``fingerprint()`` identifies the content of its files
    (weights, configs, prompts) for the result cache's keys, or is None while they are not on
    this machine yet (known once loaded). ``hub``: it downloads from the Hugging Face hub.
    ``random_weights``: its model and SAE are random weights under a real release's names (a null
    control), so the release's metadata, its Neuronpedia pages included, does not describe them."""

    name: str
    description: str
    loader: Callable[[str, torch.dtype], Subject]
    constants: Constants | None = None
    preflight: Callable[[], None] = _nothing_to_check
    fingerprint: Callable[[], str | None] = _all_in_code
    hub: bool = False
    random_weights: bool = False


@dataclass(frozen=True)
class Resolver:
    """A kind of subject name: ``PREFIX:REST`` names ``resolve(REST)``; ``example`` shows one."""

    name: str  # the prefix, without its colon
    resolve: Callable[[str], SubjectSpec]
    example: str
