"""Argument checks shared by the library: each raises early with what was wrong and what to pass."""

from __future__ import annotations

import torch

LOG_SPARSITY_HINT = (
    "pass log10(firing frequency + 1e-10) per SAE latent, as "
    "SAE.from_pretrained_with_cfg_and_sparsity returns it from a release's sparsity.safetensors"
)


def check_positive_int(name: str, value: object) -> int:
    """``value``, an int >= 1 (TypeError for another type, ValueError below 1)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int (>= 1), got {value}")
    return value


def check_generator(generator: object) -> torch.Generator:
    """``generator``, a ``torch.Generator`` (TypeError otherwise)."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            "generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), "
            f"got {type(generator).__name__}"
        )
    return generator


def check_rows(x: object, name: str, width: int | None = None, *, finite: bool = False) -> None:
    """``x`` is a 2-D tensor ``[rows >= 1, width]`` (finite when asked); ValueError otherwise."""
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or len(x) == 0:
        raise ValueError(f"{name} must be a 2-D tensor [rows, features] with at least one row")
    if width is not None and x.shape[1] != width:
        raise ValueError(f"{name} has {x.shape[1]} features per row, the SAE expects {width}")
    if finite and not torch.isfinite(x).all():
        raise ValueError(f"{name} contain NaN or infinite values")


def check_log_sparsity(log_sparsity: object, d_sae: int) -> torch.Tensor:
    """``log_sparsity``, a finite tensor ``[d_sae]``; raises with what to pass otherwise."""
    if log_sparsity is None:
        raise ValueError(f"log_sparsity is None; {LOG_SPARSITY_HINT}")
    if not isinstance(log_sparsity, torch.Tensor):
        raise TypeError(
            f"log_sparsity must be a torch.Tensor, got {type(log_sparsity).__name__}; "
            + LOG_SPARSITY_HINT
        )
    if log_sparsity.shape != (d_sae,):
        raise ValueError(
            f"log_sparsity has shape {tuple(log_sparsity.shape)}, the SAE has d_sae={d_sae} "
            f"latents; {LOG_SPARSITY_HINT}"
        )
    if not torch.isfinite(log_sparsity).all():
        raise ValueError(f"log_sparsity has non-finite values (NaN or inf); {LOG_SPARSITY_HINT}")
    return log_sparsity
