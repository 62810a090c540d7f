"""Residual-stream hook names: ``blocks.L.hook_resid_pre`` and ``blocks.L.hook_resid_post``."""

from __future__ import annotations

import re

RESID_HOOK = re.compile(r"blocks\.(\d+)\.hook_resid_(pre|post)")
RESID_FORMS = ("blocks.L.hook_resid_pre", "blocks.L.hook_resid_post")


def resid_hook(name: object) -> tuple[int, str] | None:
    """``(layer, "pre" or "post")`` of a residual-stream hook name, else None."""
    match = RESID_HOOK.fullmatch(name) if isinstance(name, str) else None
    return None if match is None else (int(match[1]), match[2])
