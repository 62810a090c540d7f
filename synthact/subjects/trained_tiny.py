"""``trained-tiny``: a small GPT-2-style model and its SAE, trained on CPython's documentation and
shipped in ``synthact/data/trained-tiny`` (the recipe that built it: `synthact.build.trained_tiny`,
rerun by ``synthact trained-tiny``). It loads as a local subject."""

from __future__ import annotations

from pathlib import Path

from synthact.subjects.local import local_spec
from synthact.subjects.types import SubjectSpec

SUBJECT_DIR = Path(__file__).resolve().parents[1] / "data" / "trained-tiny"
DESCRIPTION = (
    "4-block GPT-2-style model trained here on CPython's documentation, its SAE at "
    "blocks.1.hook_resid_pre trained by SAELens, held-out prompts (a trained network)"
)


def spec() -> SubjectSpec:
    """``trained-tiny``'s subject spec: the shipped directory, loaded as a local subject."""
    return local_spec(SUBJECT_DIR, name="trained-tiny", description=DESCRIPTION)
