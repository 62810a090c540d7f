"""Device and dtype names of a run, checked early with what is available here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from synthact.core.choices import DEVICES, DTYPE_NAMES


def torch_dtypes() -> dict[str, torch.dtype]:
    """The ``torch.dtype`` of each of `DTYPE_NAMES`."""
    import torch

    return {name: getattr(torch, name) for name in DTYPE_NAMES}


def resolve_device(device: str) -> str:
    """A checked device name (``auto`` resolved)."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}") from error
    if parsed.type not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r}: CUDA is not available here; use device='cpu'")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {device!r}: MPS is not available here; use device='cpu'")
    return str(parsed)


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """The ``torch.dtype`` of one of `DTYPE_NAMES`, given by name or as itself."""
    import torch

    dtypes = torch_dtypes()
    if isinstance(dtype, torch.dtype):
        if dtype not in dtypes.values():
            raise ValueError(f"dtype must be one of {list(dtypes)}, got {dtype}")
        return dtype
    if isinstance(dtype, str):
        if dtype not in dtypes:
            raise ValueError(f"dtype must be one of {list(dtypes)}, got {dtype!r}")
        return dtypes[dtype]
    raise TypeError(f"dtype must be a string or a torch.dtype, got {type(dtype).__name__}")


def dtype_name(dtype: torch.dtype) -> str:
    """The `DTYPE_NAMES` name of ``dtype``."""
    return next(name for name, value in torch_dtypes().items() if value == dtype)
