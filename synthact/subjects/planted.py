"""The planted controls as subjects: ``planted`` (readout gain 30), ``planted-null`` (gain 0),
``planted-raised`` (ramps raised: a few of a row's active latents carry its blowup),
``planted-cooccur`` (features fire in groups, read jointly) and ``planted-cooccur-null`` (the
same groups, each member read on its own).

The construction itself is `synthact.subjects.planted_network`; docs/method.md, "Controls", says
why.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from synthact.subjects.types import Subject, SubjectSpec


def planted_subject(
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    *,
    name: str | None = None,
    gain: float = 30.0,
    seed: int = 0,
    **construction: float | int,
) -> Subject:
    """The planted subject cast to ``dtype`` (default float32) on ``device``, named ``name``
    (None: ``planted``, or ``planted-null`` at gain 0); ``construction``: other
    `synthact.subjects.planted_network.PlantedConfig` fields."""
    import torch

    from synthact.subjects.planted_network import (
        HOOK_IN,
        HOOK_OUT,
        build_planted,
        sample_planted_prompts,
    )

    dtype = torch.float32 if dtype is None else dtype
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype such as torch.float32, got {dtype!r}")
    planted = build_planted(gain=gain, seed=seed, **construction)
    planted.model.to(dtype, print_details=False)
    planted.model.to(device, print_details=False)
    planted.sae.to(device=device, dtype=dtype)
    return Subject(
        name=name or ("planted" if gain > 0 else "planted-null"),
        model=planted.model,
        sae=planted.sae,
        log_sparsity=planted.log_sparsity,
        sample_prompts=partial(sample_planted_prompts, planted.config.d_vocab),
        hook_in=HOOK_IN,
        hook_out=HOOK_OUT,
    )


PLANTED = SubjectSpec(
    "planted",
    "hand-built transformer with planted features and saturating readouts (positive)",
    partial(planted_subject, gain=30.0),
)
PLANTED_NULL = SubjectSpec(
    "planted-null",
    "the planted transformer with its readout gain set to 0 (exact null)",
    partial(planted_subject, gain=0.0),
)

RAISED = {"ramp_start": 0.95, "ramp_end": 1.05, "features_per_token": 6}
"""``planted-raised``: ramps that rise near the median feature magnitude, six features per token.

A row's weaker active latents sit below their ramps (removing them moves nothing), its stronger
ones on their plateaus: at seed 0, 100 rows, 3.7 of a row's 8.5 active latents carry a ramp (SAE
L0 8.5: superposition's crosstalk adds to the 6). A row's blowup is carried by some of its latents,
not all: C16's subject, where `planted`'s rows (L0 3.1, every latent on its plateau) cannot tell
"a few carry it" from "all do"."""

PLANTED_RAISED = SubjectSpec(
    "planted-raised",
    "the planted transformer with its ramps raised to the median feature magnitude and 6 features "
    "per token: a few of a row's active latents carry its blowup (C16's positive control)",
    partial(planted_subject, name="planted-raised", gain=30.0, **RAISED),
)

COOCCUR = {
    "n_features": 1020,
    "group_size": 3,
    "features_per_token": 3,
    "magnitude_log_std": 0.1,
    "group_gain": 400.0,
    "offset_norm": 45.0,
}
"""``planted-cooccur``: one group of three features per token, read jointly by a steep group
ramp (saturated output ``400 · |mean feature|`` ≈ 230, about 6 per unit of summed projection).

A whole group's sum, ``3m`` ± 0.17m, lies on the ramp's upper plateau; a broken group (one
member, ``m``) on its slope, so breaking groups moves both where the curve blows up (MS) and
whether a base sits on a plateau (AP). One group per token keeps the crosstalk of superposition
low: 0.1 features per activation on a feature ramp's slope, SAE L0 3.0 (two groups per token gave
3.4 and 6.9, so no base sat on a plateau, whole groups or not). The offset puts the mean
activation norm at about 57, clear of the norm rule's rounding edge at 53.2."""

PLANTED_COOCCUR = SubjectSpec(
    "planted-cooccur",
    "the planted transformer with features firing in groups of 3, each read jointly (positive)",
    partial(planted_subject, name="planted-cooccur", gain=30.0, **COOCCUR),
)
PLANTED_COOCCUR_NULL = SubjectSpec(
    "planted-cooccur-null",
    "planted-cooccur without its group readout: the same groups, each member read on its own "
    "(C15's null)",
    partial(
        planted_subject, name="planted-cooccur-null", gain=30.0, **(COOCCUR | {"group_gain": 0.0})
    ),
)
