"""synthact: the paper "Evaluating Synthetic Activations composed of SAE Latents in GPT-2" as tests.

Importing the package is light and changes nothing: the heavy libraries (torch, TransformerLens,
SAELens) load with the submodules that need them, so `set_run_environment` and
`configure_hub_access`, called by the command line and the claims' conftest, take effect before
any of them is imported.
"""

from __future__ import annotations

import os
import socket

__version__ = "0.1.0"

RUN_ENVIRONMENT = {"MKL_CBWR": "AUTO,STRICT", "TOKENIZERS_PARALLELISM": "false"}
"""The variables `set_run_environment` sets, with their values."""


def run_environment() -> dict[str, str]:
    """`RUN_ENVIRONMENT` as this process has it (a value already set kept): what a process that
    computes for this one (a Ray task) runs with."""
    return {name: os.environ.get(name, value) for name, value in RUN_ENVIRONMENT.items()}


def set_run_environment() -> None:
    """The environment of a run; call it before torch is imported (MKL reads it then).

    Intel MKL splits some matrix products differently with different thread counts, which
    changes float32 results in the last bits (seen: 1e-4 on a [256, 2048] x [2048, 512] product).
    Strict conditional numerical reproducibility (``MKL_CBWR``) makes them independent of the
    thread count at no measured cost, so a run gives the same numbers with -n 1 and -n 4. The
    tokenizers' own thread pool is off (``TOKENIZERS_PARALLELISM``): it warns after a fork.
    Values already set are kept.
    """
    os.environ.update(run_environment())


def configure_hub_access(timeout: float = 2.0) -> bool:
    """Go offline (cached files only) unless the Hugging Face hub answers; returns True if online.

    Sets ``HF_HUB_OFFLINE=1`` and ``HF_DATASETS_OFFLINE=1`` when ``HF_HUB_OFFLINE`` is unset and
    huggingface.co:443 cannot be reached within ``timeout`` seconds, so that a machine without
    network fails fast on missing files instead of retrying for minutes. An explicit
    ``HF_HUB_OFFLINE`` is respected. Call it before importing huggingface_hub, which reads the
    variables at import time.
    """
    if "HF_HUB_OFFLINE" in os.environ:
        return os.environ["HF_HUB_OFFLINE"] in ("", "0", "false", "False")
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
    except OSError:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        return False
    return True
