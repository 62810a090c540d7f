"""synthact: the paper "Evaluating Synthetic Activations composed of SAE Latents in GPT-2" as tests.

Importing the package is light: the heavy libraries (torch, TransformerLens, SAELens) load with the
submodules that need them, so the environment below and `configure_hub_access` take effect before
any of them is imported.
"""

from __future__ import annotations

import os
import socket

__version__ = "0.1.0"

# Intel MKL splits some matrix products differently with different thread counts, which changes
# float32 results in the last bits (seen: 1e-4 on a [256, 2048] x [2048, 512] product). Strict
# conditional numerical reproducibility makes them independent of the thread count at no
# measured cost, so a run gives the same numbers with -n 1 and -n 4. MKL reads it when torch is
# first imported: importing synthact first (as the conftest and the CLI do) is enough.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")


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
