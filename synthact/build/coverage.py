"""Which path of the perturbation engine serves each SAE of SAELens' pretrained-SAE directory.

An SAE is perturbed on its model, and the model's TransformerLens config decides the engine path
(`synthact.method.engine.engine_path`): ``fast`` (the last-position runner), ``generic``
(TransformerLens's own blocks on the cached prefix, exact and slower) or ``naive`` (full forward
passes). `directory_coverage` counts the SAEs of the installed directory by their model's path;
two more paths say what the engine cannot serve: ``none`` (TransformerLens has no
``HookedTransformer`` of that name) and ``unknown`` (its config cannot be read here). Counts are
by model: whether an SAE reads the residual stream, as synthact needs, is checked when its own
cfg is read.

A model's config is TransformerLens's own: from its name alone for the families TransformerLens
configures by name (Gemma, Llama), else from the model's ``config.json`` on the hub (from the hub
cache offline). Offline without that file, the architecture that TransformerLens's model registry
lists for the model is converted from its default Hugging Face config: the settings the engine
checks are set per architecture, whatever the widths.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from synthact.method.engine import engine_path

if TYPE_CHECKING:
    from synthact.subjects.releases import DirectoryEntry

PATHS = ("fast", "generic", "naive", "none", "unknown")
"""The engine's three paths, then what it cannot serve."""
TRANSFORMER_LENS = "TransformerLens"
"""The config source of a model whose config TransformerLens read (by name or from the hub)."""


@dataclass(frozen=True)
class ModelCoverage:
    """One model of the directory: its SAEs and the engine path that serves them.

    Attributes:
        model: the model's name in SAELens' directory.
        n_saes, n_releases: its SAEs and the releases they come in.
        path: one of `PATHS`.
        why: the config setting that rules out a faster path, or why no path serves the model;
            empty for ``fast``.
        source: where its config came from (`TRANSFORMER_LENS`, or its architecture's defaults);
            empty without one.
    """

    model: str
    n_saes: int
    n_releases: int
    path: str
    why: str
    source: str


def directory_coverage(
    directory: Mapping[str, DirectoryEntry] | None = None,
    path_of: Callable[[str], tuple[str, str, str]] | None = None,
) -> list[ModelCoverage]:
    """Every model of ``directory`` (default: the installed SAELens directory) with its SAEs and
    engine path, most SAEs first; ``path_of`` gives a model's (path, why, config source)
    (default `model_path`)."""
    if directory is None:
        from synthact.subjects.releases import directory as saelens_directory

        directory = saelens_directory()
    path_of = path_of or model_path
    saes, releases = Counter(), Counter()
    for entry in directory.values():
        saes[entry.model] += len(entry.saes_map)
        releases[entry.model] += 1
    return [
        ModelCoverage(model, n_saes, releases[model], *path_of(model))
        for model, n_saes in saes.most_common()
    ]


def model_path(model: str) -> tuple[str, str, str]:
    """(path, why, config source) of a model of SAELens' directory, by its name there."""
    from transformer_lens.loading_from_pretrained import get_official_model_name

    try:
        official = get_official_model_name(model)
    except ValueError:
        return "none", f"not a TransformerLens model ({model!r} is not one of its names)", ""
    cfg, source = _model_config(official)
    if cfg is None:
        return "unknown", source, ""
    return (*config_path(cfg), source)


def config_path(cfg: HookedTransformerConfig) -> tuple[str, str]:
    """(path, why) of the model TransformerLens builds from ``cfg``, built on the meta device (no
    memory, no weights, no tokenizer)."""
    cfg = dataclasses.replace(cfg, tokenizer_name=None, device="meta", n_devices=1)
    with torch.device("meta"):
        model = HookedTransformer(cfg)
    path, problem = engine_path(model)
    return path, problem or ""


def _model_config(official: str) -> tuple[HookedTransformerConfig | None, str]:
    """TransformerLens's config of the model and where it came from, or None and why not."""
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config

    try:
        with _quiet_logging():
            return get_pretrained_model_config(official), TRANSFORMER_LENS
    except OSError:
        return _architecture_config(official)


def _architecture_config(official: str) -> tuple[HookedTransformerConfig | None, str]:
    """The config TransformerLens converts from the default Hugging Face config of the model's
    architecture (as TransformerLens's model registry lists it), or None and why not."""
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config
    from transformer_lens.tools.model_registry import api
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    architecture = api.get_model_architecture(official)
    model_types = {name: kind for kind, name in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.items()}
    missing = f"{official}'s config.json is not in the hub cache"
    if architecture not in model_types:
        return None, f"{missing} (run once online)"
    hf_config = AutoConfig.for_model(model_types[architecture], architectures=[architecture])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"  # a neutral name: TransformerLens reads families from names
        hf_config.save_pretrained(folder)
        with _quiet_logging():
            cfg = get_pretrained_model_config(str(folder))
    return cfg, f"{architecture} defaults: {missing}"


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """Silences TransformerLens's logged advice while it reads a config."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def coverage_report(rows: list[ModelCoverage]) -> str:
    """What ``synthact subjects --coverage`` prints: SAEs per path, then one line per model."""
    total = sum(row.n_saes for row in rows)
    lines = [f"{total} SAEs of {len(rows)} models, by the engine path of their model:"]
    for path in PATHS:
        n_saes = sum(row.n_saes for row in rows if row.path == path)
        n_models = sum(row.path == path for row in rows)
        lines.append(
            f"  {path:8s} {n_saes:6d} SAEs {100 * n_saes / total:5.1f} % {n_models:3d} models"
        )
    lines += ["", f"{'model':42s} {'SAEs':>5s}  {'path':8s} why"]
    for row in rows:
        notes = [row.why] if row.why else []
        if row.source not in ("", TRANSFORMER_LENS):
            notes.append(f"[config: {row.source}]")
        lines.append(f"{row.model:42s} {row.n_saes:5d}  {row.path:8s} {' '.join(notes)}".rstrip())
    return "\n".join(lines)
