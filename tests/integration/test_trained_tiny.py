"""The shipped trained-tiny subject: its corpus, its recipe's reproduction, loading it offline."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import torch

from synthact.build import trained_tiny
from synthact.build.trained_tiny import (
    CORPUS_PYTHON,
    CORPUS_SHA256,
    MODEL_DIR,
    RECIPE_FILE,
    TRAJECTORY_STEPS,
    Recipe,
)
from synthact.subjects import validate_subject
from synthact.subjects.local import load_local_subject, load_transformer
from synthact.subjects.prompts import token_stream
from synthact.subjects.trained_tiny import SUBJECT_DIR

REBUILD = "SYNTHACT_REBUILD_TRAINED_TINY"


@cache
def record() -> dict:
    return json.loads((SUBJECT_DIR / RECIPE_FILE).read_text())


@cache
def streams() -> dict[str, torch.Tensor]:
    """The shipped corpus tokenized by the shipped tokenizer."""
    tokenizer = load_transformer(SUBJECT_DIR / MODEL_DIR).tokenizer
    return {
        name: token_stream(tokenizer, text) for name, text in trained_tiny.read_corpus().items()
    }


def test_record_matches_the_recipe_in_the_code() -> None:
    assert record()["recipe_version"] == trained_tiny.RECIPE_VERSION
    assert record()["recipe"] == dataclasses.asdict(Recipe())
    for name, digest in CORPUS_SHA256.items():
        assert record()["corpus"][name]["sha256"] == digest


@pytest.mark.skipif(
    platform.python_version() != CORPUS_PYTHON, reason=f"the corpus is CPython {CORPUS_PYTHON}'s"
)
def test_corpus_extraction_reproduces_the_shipped_corpus() -> None:
    assert trained_tiny.extract_corpus() == trained_tiny.read_corpus()


def test_changed_corpus_is_a_clear_error(tmp_path: Path) -> None:
    corpus = trained_tiny.read_corpus()
    trained_tiny.write_corpus(tmp_path, {**corpus, "heldout": corpus["heldout"] + " "})
    with pytest.raises(ValueError, match=r"heldout\.txt\.gz has SHA-256 .* the corpus changed"):
        trained_tiny.read_corpus(tmp_path)


def test_tokenizer_reproduces_the_shipped_one() -> None:
    corpus = trained_tiny.read_corpus()
    fresh = trained_tiny.train_tokenizer(corpus["train"], Recipe().vocab_size)
    shipped = json.loads((SUBJECT_DIR / MODEL_DIR / "tokenizer.json").read_text())
    assert json.loads(fresh.backend_tokenizer.to_str())["model"] == shipped["model"]


def test_first_training_steps_reproduce_the_recorded_losses() -> None:
    """The recipe from scratch: initialisation, data order, schedule and optimizer of its first
    steps give the losses the shipped build recorded (to float rounding across CPUs)."""
    _, losses = trained_tiny.train_model(Recipe(), streams()["train"], steps=TRAJECTORY_STEPS)
    recorded = record()["model"]["losses"][:TRAJECTORY_STEPS]
    assert losses == pytest.approx(recorded, rel=1e-4)
    assert losses[-1] < losses[0] - 0.5  # it learns from the first steps


def test_shipped_model_and_sae_measure_as_recorded() -> None:
    subject = load_local_subject(SUBJECT_DIR)
    validate_subject(subject)
    heldout = streams()["heldout"]
    model = record()["model"]
    assert trained_tiny.heldout_loss(subject.model, heldout) == pytest.approx(
        model["heldout_loss"], rel=1e-5
    )
    assert model["heldout_loss"] < model["unigram_loss"] - 1.0
    measured = trained_tiny.measure_sae(SUBJECT_DIR, subject.model, heldout, Recipe())
    for where in ("heldout", "prompts"):
        assert measured[where] == pytest.approx(record()["sae"][where], rel=1e-4)
    assert measured["dead_latents"] == record()["sae"]["dead_latents"]


def test_shipped_subject_serves_the_default_pool_of_prompts() -> None:
    """The experiments draw n_pool = 32,000 distinct prompts by default (--n-gaussian)."""
    subject = load_local_subject(SUBJECT_DIR)
    prompts = subject.sample_prompts(32_000, torch.Generator().manual_seed(0))
    assert prompts.shape == (32_000, 10) and len(prompts.unique(dim=0)) == 32_000


def test_shipped_subject_loads_offline_without_any_cache(tmp_path: Path) -> None:
    code = (
        "import torch; from synthact.subjects import trained_tiny, "
        "validate_subject; spec = trained_tiny.spec(); spec.preflight(); "
        "s = spec.loader('cpu', torch.float32); validate_subject(s); "
        "print(s.name, s.model(s.sample_prompts(4, torch.Generator().manual_seed(0))).shape)"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "trained-tiny torch.Size([4, 10, 2048])" in done.stdout
    assert not any(tmp_path.iterdir()), "loading wrote into the Hugging Face cache"


@pytest.mark.skipif(
    os.environ.get(REBUILD) != "1",
    reason=f"retrains trained-tiny in full (10 to 20 minutes on 2 CPU cores); set {REBUILD}=1",
)
def test_full_recipe_reproduces_the_shipped_subject(tmp_path: Path) -> None:
    rebuilt = trained_tiny.build(tmp_path / "trained-tiny")
    shipped = record()
    assert rebuilt["model"]["heldout_loss"] == pytest.approx(
        shipped["model"]["heldout_loss"], abs=0.02
    )
    for where in ("heldout", "prompts"):
        got, want = rebuilt["sae"][where], shipped["sae"][where]
        assert got["explained_variance"] == pytest.approx(want["explained_variance"], abs=0.02)
        assert got["l0"] == pytest.approx(want["l0"], rel=0.1)
