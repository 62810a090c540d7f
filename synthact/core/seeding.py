"""Seeded generators: one per random draw, so a draw does not depend on which others ran."""

from __future__ import annotations

import hashlib

import torch


def generator(seed: int, *labels: str) -> torch.Generator:
    """A CPU generator seeded by ``seed`` and the labels that name the draw."""
    digest = hashlib.sha256("/".join([str(seed), *labels]).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
