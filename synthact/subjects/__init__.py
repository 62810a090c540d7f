"""Subjects: a model, the SAE at its input hook, the SAE's log-sparsity and a prompt source.

A subject name is a registered name (`SUBJECTS`), ``PREFIX:REST`` for a registered prefix
(`PREFIXES`, e.g. ``null:RELEASE/SAE_ID``), or ``RELEASE/SAE_ID`` of any SAELens release.
`subject_spec` resolves a name without loading anything; `load_subject` loads and validates it.
A new kind of subject is a module with its `SubjectSpec` (or `Resolver`) and one line here.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from synthact.core.registry import Registry
from synthact.subjects import gpt2, local, planted, releases, trained_tiny
from synthact.subjects.device import DEVICES, DTYPE_NAMES, resolve_device, resolve_dtype
from synthact.subjects.null_hub import NULL_SAES
from synthact.subjects.releases import NULL_PREFIX, resolve_release
from synthact.subjects.sparsity import estimate_log_sparsity
from synthact.subjects.types import Constants, Resolver, Subject, SubjectSpec
from synthact.subjects.validation import validate_subject

__all__ = [
    "DEVICES",
    "DTYPE_NAMES",
    "NULL_PREFIX",
    "PREFIXES",
    "SUBJECTS",
    "Constants",
    "Resolver",
    "Subject",
    "SubjectSpec",
    "describe_subject",
    "describe_subjects",
    "estimate_log_sparsity",
    "load_subject",
    "resolve_device",
    "resolve_release",
    "subject_spec",
    "uses_hub",
    "validate_subject",
]

EXAMPLE_RELEASE = "gpt2-small-res-jb/blocks.6.hook_resid_pre"

SUBJECTS: Registry[SubjectSpec] = Registry("subject")
SUBJECTS.register(gpt2.GPT2_SMALL)
SUBJECTS.register(gpt2.NULL_GPT2)
SUBJECTS.register(planted.PLANTED)
SUBJECTS.register(planted.PLANTED_NULL)
SUBJECTS.register(planted.PLANTED_RAISED)
SUBJECTS.register(planted.PLANTED_COOCCUR)
SUBJECTS.register(planted.PLANTED_COOCCUR_NULL)
SUBJECTS.register(trained_tiny.spec())

PREFIXES: Registry[Resolver] = Registry("subject prefix")
PREFIXES.register(Resolver("null", releases.null_release_spec, NULL_PREFIX + EXAMPLE_RELEASE))
PREFIXES.register(Resolver("path", local.local_spec, local.PREFIX + "DIR"))


def subject_spec(name: str) -> SubjectSpec:
    """The spec of a subject name; reads only SAELens' directory (no download). ValueError for an
    unknown name, release or SAE id, or a ``null:`` name the null hub does not serve."""
    if name in SUBJECTS:
        return SUBJECTS[name]
    prefix, colon, rest = name.partition(":")
    if colon and prefix in PREFIXES:
        return PREFIXES[prefix].resolve(rest)
    if "/" not in name:
        raise ValueError(
            f"unknown subject {name!r}: neither a registered subject ({', '.join(SUBJECTS)}) nor "
            f"RELEASE/SAE_ID of a SAELens release (e.g. {EXAMPLE_RELEASE}) nor PREFIX:NAME "
            f"({', '.join(r.example for r in PREFIXES.values())}); `synthact subjects` lists them"
        )
    return releases.release_spec(name)


def uses_hub(name: str) -> bool:
    """Whether the subject ``name`` downloads from the Hugging Face hub (``SubjectSpec.hub``:
    gpt2-small, a SAELens release), told from the name alone: nothing is read or imported, so a
    run can decide its hub access before the hub's libraries load."""
    if name in SUBJECTS:
        return SUBJECTS[name].hub
    prefix, colon, _ = name.partition(":")
    return "/" in name and not (colon and prefix in PREFIXES)


def describe_subject(name: str) -> str:
    """A subject in a few lines: what it is and where its scale constants come from."""
    spec = subject_spec(name)
    constants = spec.constants
    scale = (
        "the norm rule on its pool of real activations (computed at run time)"
        if constants is None
        else f"step {constants.step:g}, MS flat slope {constants.flat_slope:g}, AP threshold "
        f"{constants.ap_threshold:g} ({constants.source})"
    )
    return f"{name}: {spec.description}\nconstants: {scale}"


def load_subject(name: str, device: str = "cpu", dtype: str | torch.dtype = "float32") -> Subject:
    """Load the subject ``name`` on ``device`` (`resolve_device`) in ``dtype`` (`DTYPE_NAMES`) and
    validate it (`validate_subject`). ValueError or TypeError for a bad argument, RuntimeError when
    the device is missing or (offline) hub files are."""
    spec = subject_spec(name)
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype)
    subject = dataclasses.replace(spec.loader(device, torch_dtype), name=name)
    validate_subject(subject)
    return subject


def describe_subjects(release: str | None = None) -> str:
    """What ``synthact subjects [NAME]`` prints: the names; a subject (a registered name,
    ``RELEASE/SAE_ID`` or ``PREFIX:NAME``) described; or one release's SAE ids."""
    if release is not None and (release in SUBJECTS or "/" in release or ":" in release):
        return describe_subject(release)
    if release is not None:
        entry = releases.directory_entry(release)
        return "\n".join(f"{release}/{sae_id}" for sae_id in entry.saes_map)
    directory = releases.directory()
    lines = [f"{name:14s} {spec.description}" for name, spec in SUBJECTS.items()]
    lines += [
        "",
        "Any SAELens release: --subject RELEASE/SAE_ID, e.g.",
        f"  {EXAMPLE_RELEASE}",
        "  pythia-70m-deduped-res-sm/blocks.3.hook_resid_post",
        "  gemma-scope-2b-pt-res-canonical/layer_12/width_16k/canonical",
        "Offline random-weight stand-ins (the null hub): "
        + ", ".join(NULL_PREFIX + sae.name for sae in NULL_SAES),
        "",
        f"Releases ({len(directory)}; `synthact subjects RELEASE` lists one's SAE ids):",
    ]
    lines += [
        f"  {name} ({entry.model}, {len(entry.saes_map)} SAEs)" for name, entry in directory.items()
    ]
    return "\n".join(lines)
