"""What computed a result, in one line: device, CPU kernels, threads, library versions.

Results do not depend on it beyond float rounding (`synthact.method.ties`); a snapshot records it so
that a failure names the platform that made the snapshot beside the one that ran.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

KERNEL_VARIABLES = (
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "ONEDNN_MAX_CPU_ISA",
    "ATEN_CPU_CAPABILITY",
    "OMP_NUM_THREADS",
)
"""Environment variables that choose CPU kernels or threads, named where set."""


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else the machine's architecture."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def describe(device: str) -> str:
    """E.g. ``"cpu AMD EPYC (ATen AVX2), torch threads 2, torch 2.13.0, MKL_CBWR=AUTO,STRICT"`` or
    ``"cuda NVIDIA H100 80GB HBM3, torch 2.11.0"``."""
    kind = torch.device(device).type
    if kind == "cuda":
        where = f"cuda {torch.cuda.get_device_name(torch.device(device))}"
    else:
        capability = torch.backends.cpu.get_cpu_capability()
        where = f"{kind} {cpu_name()} (ATen {capability}), torch threads {torch.get_num_threads()}"
    settings = [f"{name}={os.environ[name]}" for name in KERNEL_VARIABLES if name in os.environ]
    return ", ".join([where, f"torch {torch.__version__}", *settings])
