"""Unit tests of synthact.subjects.local: path:DIR subjects from an SAE saved by SAELens."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sae_lens import SAE, StandardSAE, StandardSAEConfig
from sae_lens.saes.sae import SAEMetadata
from safetensors.torch import save_file
from transformer_lens import HookedTransformer, HookedTransformerConfig

from synthact.build.trained_tiny import train_tokenizer
from synthact.core.cache import ResultCache
from synthact.method.config import RunConfig
from synthact.method.experiments import Lab
from synthact.subjects import SUBJECTS, load_subject, subject_spec, validate_subject
from synthact.subjects.local import (
    MANIFEST,
    check_local_subject,
    load_local_subject,
    load_transformer,
    local_fingerprint,
    local_spec,
    save_transformer,
)

HOOK = "blocks.1.hook_resid_pre"
TEXT = " ".join(
    f"Prompt {i}: a subject is a model, the SAE at its hook and prompts." for i in range(200)
)
D_SAE = 32


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXT, vocab_size=300)


def write_subject(
    directory: Path,
    tokenizer,
    *,
    d_in: int = 16,
    hook: str = HOOK,
    manifest: dict | None = None,
    sparsity: bool = True,
    **metadata: object,
) -> Path:
    """A 2-block model (d_model 16), its SAE and a text prompt file, as a local subject."""
    torch.manual_seed(0)
    cfg = HookedTransformerConfig(
        n_layers=2,
        d_model=16,
        n_ctx=16,
        d_head=4,
        n_heads=4,
        d_mlp=32,
        d_vocab=len(tokenizer),
        act_fn="gelu_new",
        normalization_type="LN",
    )
    save_transformer(HookedTransformer(cfg), directory / "model", tokenizer)
    meta = SAEMetadata(
        **{"hook_name": hook, "model_name": "tiny", "prepend_bos": False, **metadata}
    )
    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=D_SAE, metadata=meta))
    sae.save_model(directory)
    if sparsity:
        save_file({"sparsity": torch.linspace(-4, -1, D_SAE)}, directory / "sparsity.safetensors")
    (directory / "prompts.txt").write_text(TEXT)
    manifest = {"model": "model", "prompts": "prompts.txt"} if manifest is None else manifest
    (directory / MANIFEST).write_text(json.dumps(manifest))
    return directory


def sae_loading_must_not_run(*args: object, **kwargs: object) -> SAE:
    raise AssertionError("the check must fail before any weights are loaded")


def test_local_subject_loads_model_sae_sparsity_and_prompts(tmp_path: Path, tokenizer) -> None:
    subject = load_local_subject(write_subject(tmp_path, tokenizer))
    validate_subject(subject)
    assert (subject.hook_in, subject.hook_out) == (HOOK, "blocks.1.hook_resid_post")
    assert torch.equal(subject.log_sparsity, torch.linspace(-4, -1, D_SAE))
    prompts = subject.sample_prompts(20, torch.Generator().manual_seed(0))
    assert prompts.shape == (20, 10) and len(prompts.unique(dim=0)) == 20
    again = subject.sample_prompts(20, torch.Generator().manual_seed(0))
    assert torch.equal(prompts, again)


def test_local_subject_in_bfloat16(tmp_path: Path, tokenizer) -> None:
    subject = load_local_subject(write_subject(tmp_path, tokenizer), dtype=torch.bfloat16)
    assert subject.model.W_E.dtype == subject.sae.W_dec.dtype == torch.bfloat16
    assert subject.log_sparsity.dtype == torch.float32


def test_without_sparsity_file_the_sparsity_is_estimated(tmp_path: Path, tokenizer) -> None:
    subject = load_local_subject(write_subject(tmp_path, tokenizer, sparsity=False))
    assert subject.estimate_sparsity and subject.log_sparsity is None
    validate_subject(subject)


def test_token_prompt_file_and_bos(tmp_path: Path, tokenizer) -> None:
    stream = torch.arange(100) % 50
    save_file({"tokens": stream}, tmp_path / "tokens.safetensors")
    manifest = {"model": "model", "prompts": "tokens.safetensors"}
    write_subject(tmp_path, tokenizer, manifest=manifest, prepend_bos=True)
    prompts = load_local_subject(tmp_path).sample_prompts(30, torch.Generator().manual_seed(0))
    assert (prompts[:, 0] == tokenizer.bos_token_id).all()
    assert set(prompts[:, 1:].flatten().tolist()) <= set(range(50))


def test_prompts_from_the_cfg_dataset_when_no_file_is_given(tmp_path: Path, tokenizer) -> None:
    data = tmp_path / "dataset"
    data.mkdir()
    rows = [{"text": f"row {i}: {TEXT[:80]}"} for i in range(40)]
    (data / "train.jsonl").write_text("\n".join(json.dumps(row) for row in rows))
    sae_dir = tmp_path / "sae"
    write_subject(sae_dir, tokenizer, manifest={"model": "model"}, dataset_path=str(data))
    prompts = load_local_subject(sae_dir).sample_prompts(10, torch.Generator().manual_seed(0))
    expected = {tuple(tokenizer(row["text"])["input_ids"][:10]) for row in rows}
    assert {tuple(row) for row in prompts.tolist()} <= expected


def test_spec_preflight_checks_without_loading(tmp_path: Path, tokenizer, monkeypatch) -> None:
    monkeypatch.setattr(SAE, "load_from_disk", sae_loading_must_not_run)
    spec = local_spec(write_subject(tmp_path, tokenizer, hook="blocks.2.hook_resid_pre"))
    assert spec.name == f"path:{tmp_path}"
    with pytest.raises(ValueError, match="has 2 blocks"):
        spec.preflight()


def one_line_error(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            {"hook": "blocks.2.hook_resid_pre"},
            ValueError,
            r"reads 'blocks.2.hook_resid_pre' but "
            r"the model has 2 blocks \(0\.\.1\)",
        ),
        ({"hook": "blocks.0.attn.hook_z"}, ValueError, "needs an SAE on the residual stream"),
        (
            {"d_in": 32},
            ValueError,
            r"width d_in=32 but the model's residual stream has "
            r"d_model=16",
        ),
        ({"manifest": {"model": "model"}}, ValueError, "no prompt source"),
        (
            {"manifest": {"model": "model", "prompts": "prompts.csv"}},
            FileNotFoundError,
            "prompts.csv, which does not exist",
        ),
        (
            {"manifest": {"model": "elsewhere", "prompts": "prompts.txt"}},
            FileNotFoundError,
            "elsewhere lacks config.json, model.safetensors",
        ),
        ({"manifest": {"model": "model", "weights": "x"}}, ValueError, "keys among"),
        (
            {"manifest": {"prompts": "prompts.txt"}},
            ValueError,
            "'tiny', which is not a TransformerLens pretrained model",
        ),
    ],
)
def test_bad_subjects_are_clear_one_line_errors_before_loading_weights(
    tmp_path: Path, tokenizer, monkeypatch, change: dict, error: type, message: str
) -> None:
    write_subject(tmp_path, tokenizer, **change)
    monkeypatch.setattr(SAE, "load_from_disk", sae_loading_must_not_run)
    with pytest.raises(error) as raised:
        load_local_subject(tmp_path)
    assert re.search(message, one_line_error(raised))


@pytest.mark.parametrize("missing", ["cfg.json", "sae_weights.safetensors"])
def test_missing_sae_file_is_named(tmp_path: Path, tokenizer, missing: str) -> None:
    (write_subject(tmp_path, tokenizer) / missing).unlink()
    with pytest.raises(FileNotFoundError, match=f"lacks {missing}: .*SAE.save_model") as raised:
        check_local_subject(tmp_path)
    one_line_error(raised)


def test_missing_directory_says_what_path_names(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such directory; path:DIR names") as raised:
        check_local_subject(tmp_path / "nowhere")
    one_line_error(raised)


def test_prompt_ids_outside_the_vocabulary_are_rejected(tmp_path: Path, tokenizer) -> None:
    save_file({"tokens": torch.tensor([1, 2, 5000] * 10)}, tmp_path / "tokens.safetensors")
    write_subject(tmp_path, tokenizer, manifest={"model": "model", "prompts": "tokens.safetensors"})
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        load_local_subject(tmp_path)


def test_saved_transformer_loads_back_identical(tmp_path: Path, tokenizer) -> None:
    write_subject(tmp_path, tokenizer)
    model = load_transformer(tmp_path / "model")
    again = load_transformer(tmp_path / "model")
    tokens = torch.randint(0, len(tokenizer), (3, 12), generator=torch.Generator().manual_seed(0))
    assert torch.equal(model(tokens), again(tokens))
    assert model.tokenizer.decode(tokenizer("a model")["input_ids"]) == "a model"


def test_local_model_config_with_unknown_keys_is_rejected(tmp_path: Path, tokenizer) -> None:
    write_subject(tmp_path, tokenizer)
    config = tmp_path / "model" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "n_experts": 4}))
    with pytest.raises(ValueError, match=r"not HookedTransformerConfig fields: \['n_experts'\]"):
        check_local_subject(tmp_path)


def test_path_prefix_and_trained_tiny_are_registered(tmp_path: Path, tokenizer) -> None:
    write_subject(tmp_path, tokenizer)
    assert subject_spec(f"path:{tmp_path}").name == f"path:{tmp_path}"
    assert load_subject(f"path:{tmp_path}").name == f"path:{tmp_path}"
    assert "trained-tiny" in SUBJECTS
    with pytest.raises(FileNotFoundError, match="no such directory"):
        subject_spec(f"path:{tmp_path / 'nowhere'}").preflight()


def test_a_different_sae_saved_into_the_same_directory_is_not_served_from_the_cache(
    tmp_path: Path, tokenizer
) -> None:
    """The cache key holds the subject's files' fingerprint, not only its path."""
    directory = write_subject(tmp_path / "subject", tokenizer)
    cache = ResultCache(tmp_path / "cache")
    config = RunConfig(
        subject=f"path:{directory}",
        device="cpu",
        n=4,
        n_gaussian=64,
        n_latent_stats=16,
        prompt_len=8,
    )

    def real_curves() -> np.ndarray:
        lab = Lab(config, cache, progress=False)
        return lab.result("sensitivity", "absolute").curves("synthetic-baseline")

    before, again = real_curves(), real_curves()
    sae = SAE.load_from_disk(directory)
    with torch.no_grad():
        sae.W_dec.mul_(2.0)
    sae.save_model(directory)
    after = real_curves()
    assert np.array_equal(before, again)
    assert not np.allclose(before, after)
    assert len(list((tmp_path / "cache" / "results").glob("*synthetic-baseline*.npz"))) == 2


def test_the_fingerprint_follows_every_file_the_subject_loads(tmp_path: Path, tokenizer) -> None:
    directory = write_subject(tmp_path, tokenizer)
    first = local_fingerprint(directory)
    assert local_fingerprint(directory) == first
    (directory / "prompts.txt").write_text(TEXT + " one more prompt.")
    assert local_fingerprint(directory) != first
