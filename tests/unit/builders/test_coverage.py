"""The engine path of SAELens' models: from their configs, offline fallbacks, counts and report."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from synthact.build import coverage
from synthact.build.coverage import (
    TRANSFORMER_LENS,
    ModelCoverage,
    config_path,
    coverage_report,
    directory_coverage,
    model_path,
)
from synthact.core import hub_cache
from tests.families import ARCHITECTURES as FAMILIES
from tests.families import family_config


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_at_its_real_size_takes_the_fast_path(family):
    assert config_path(family_config(family, "real")) == ("fast", "")


@pytest.mark.parametrize(
    ("overrides", "path", "setting"),
    [
        (dict(use_attention_sinks=True), "generic", "cfg.use_attention_sinks=True"),
        (dict(use_logn_attn=True), "generic", "cfg.use_logn_attn=True"),
        (dict(attention_dir="bidirectional"), "naive", "cfg.attention_dir='bidirectional'"),
    ],
)
def test_slower_paths_name_their_setting(overrides, path, setting):
    taken, why = config_path(family_config("gpt2", **overrides))
    assert taken == path and setting in why


@pytest.mark.parametrize("model", ["google/gemma-3-270m", "google/gemma-3-27b-it", "gemma-2-2b"])
def test_models_configured_by_name_need_no_hub(tmp_path: Path, model):
    with hub_cache.use_hub_cache(tmp_path, offline=True):
        assert model_path(model) == ("fast", "", TRANSFORMER_LENS)


@pytest.mark.parametrize(
    ("model", "official", "architecture", "setting"),
    [
        ("qwen3-0.6b", "Qwen/Qwen3-0.6B", "Qwen3ForCausalLM", "use_qk_norm"),
        (
            "pythia-70m-deduped",
            "EleutherAI/pythia-70m-deduped",
            "GPTNeoXForCausalLM",
            "parallel_attn_mlp",
        ),
    ],
)
def test_offline_without_the_hub_config_the_architecture_decides(
    tmp_path: Path, model, official, architecture, setting
):
    """The architecture's defaults go through TransformerLens's own conversion: its family
    settings are there."""
    with hub_cache.use_hub_cache(tmp_path, offline=True):
        path, why, source = model_path(model)
        cfg, _ = coverage._model_config(official)
    assert (path, why) == ("fast", "")
    assert source.startswith(f"{architecture} defaults") and "not in the hub cache" in source
    assert getattr(cfg, setting) is True


def test_unreadable_and_absent_models_are_told_apart(tmp_path: Path):
    with hub_cache.use_hub_cache(tmp_path, offline=True):
        unknown = model_path("gpt2-small")  # TransformerLens's name "gpt2" is not in its registry
    assert unknown[0] == "unknown" and "gpt2's config.json is not in the hub cache" in unknown[1]
    none = model_path("Qwen/Qwen3.5-27B")
    assert none[0] == "none" and "not a TransformerLens model" in none[1]


def _entry(model: str, n_saes: int) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        model=model, saes_map={f"sae{i}": f"folder{i}" for i in range(n_saes)}
    )


def test_directory_coverage_counts_saes_and_releases_per_model():
    directory = {"a": _entry("m1", 2), "b": _entry("m2", 5), "c": _entry("m1", 4)}
    paths = {"m1": ("fast", "", TRANSFORMER_LENS), "m2": ("generic", "why", TRANSFORMER_LENS)}
    rows = directory_coverage(directory, paths.__getitem__)
    assert rows == [
        ModelCoverage("m1", 6, 2, "fast", "", TRANSFORMER_LENS),
        ModelCoverage("m2", 5, 1, "generic", "why", TRANSFORMER_LENS),
    ]


def test_report_sums_each_path_and_shows_each_model():
    rows = [
        ModelCoverage("m1", 6, 2, "fast", "", TRANSFORMER_LENS),
        ModelCoverage("m2", 3, 1, "generic", "attention sinks (cfg.x=1)", "Arch defaults: ..."),
        ModelCoverage("m3", 1, 1, "none", "not a TransformerLens model", ""),
    ]
    report = coverage_report(rows).splitlines()
    assert report[0] == "10 SAEs of 3 models, by the engine path of their model:"
    summary = {line.split()[0]: line.split()[1:] for line in report[1:6]}
    assert summary["fast"][:3] == ["6", "SAEs", "60.0"]
    assert summary["generic"][:3] == ["3", "SAEs", "30.0"]
    assert summary["naive"][0] == summary["unknown"][0] == "0"
    assert report[-2].split()[:3] == ["m2", "3", "generic"]
    assert report[-2].endswith("attention sinks (cfg.x=1) [config: Arch defaults: ...]")
    assert report[-3].split() == ["m1", "6", "fast"]
