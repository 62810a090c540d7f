"""Unit tests of synthact.subjects: registry, argument checks, validation, offline failure."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from sae_lens import SAE, StandardSAE, StandardSAEConfig
from sae_lens.saes.sae import SAEMetadata
from transformer_lens import HookedTransformer, HookedTransformerConfig

import synthact
from synthact import subjects
from synthact.subjects import (
    OPENWEBTEXT_SHARDS,
    SUBJECTS,
    Subject,
    SubjectSpec,
    load_jb_gpt2,
    load_subject,
    validate_subject,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
HOOK_IN = "blocks.1.hook_resid_pre"
HOOK_OUT = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def tiny_model() -> HookedTransformer:
    cfg = HookedTransformerConfig(
        n_layers=2, d_model=16, n_ctx=10, d_head=4, n_heads=4, d_mlp=32, d_vocab=50, act_fn="gelu"
    )
    return HookedTransformer(cfg).eval()


def tiny_sae(d_in: int = 16, d_sae: int = 32, hook_name: str | None = HOOK_IN) -> StandardSAE:
    metadata = SAEMetadata(hook_name=hook_name) if hook_name else SAEMetadata()
    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, metadata=metadata))
    with torch.no_grad():
        for param in sae.parameters():
            param.normal_(generator=torch.Generator().manual_seed(0))
    return sae


def tiny_subject(model: HookedTransformer, **changes: object) -> Subject:
    subject = Subject(
        name="tiny",
        model=model,
        sae=tiny_sae(),
        log_sparsity=torch.full((32,), -3.0),
        sample_prompts=lambda n, generator: torch.randint(0, 50, (n, 10), generator=generator),
        hook_in=HOOK_IN,
        hook_out=HOOK_OUT,
    )
    return dataclasses.replace(subject, **changes)


def loader_that_must_not_run(device: str, dtype: torch.dtype) -> Subject:
    raise AssertionError("argument errors must be raised before the loader runs")


@pytest.fixture
def guarded_registry(monkeypatch: pytest.MonkeyPatch) -> str:
    spec = SubjectSpec(
        "guarded", "a loader that fails the test if called", loader_that_must_not_run
    )
    monkeypatch.setitem(SUBJECTS, spec.name, spec)
    return spec.name


# --- registry and arguments ---------------------------------------------------------------------


def test_registry_rows_are_named_and_described() -> None:
    assert {"gpt2-small", "null-gpt2", "planted", "planted-null"} <= set(SUBJECTS)
    for name, spec in SUBJECTS.items():
        assert spec.name == name
        assert spec.description and "\n" not in spec.description
        assert callable(spec.loader)


def test_unknown_subject_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown subject 'gpt3'") as error:
        load_subject("gpt3")
    for name in SUBJECTS:
        assert name in str(error.value)


@pytest.mark.parametrize("device", ["tpu", "gpu", "", "cuda:x"])
def test_bad_device_rejected(guarded_registry: str, device: str) -> None:
    with pytest.raises(ValueError, match="device must be one of"):
        load_subject(guarded_registry, device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_cuda_is_a_clear_error(guarded_registry: str) -> None:
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        load_subject(guarded_registry, device="cuda")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="needs a machine without MPS")
def test_unavailable_mps_is_a_clear_error(guarded_registry: str) -> None:
    with pytest.raises(RuntimeError, match="MPS is not available"):
        load_subject(guarded_registry, device="mps")


@pytest.mark.parametrize("dtype", ["int8", "fp32", "torch.float32", torch.int64, torch.complex64])
def test_bad_dtype_rejected(guarded_registry: str, dtype: object) -> None:
    with pytest.raises(ValueError, match="dtype must be one of"):
        load_subject(guarded_registry, dtype=dtype)  # type: ignore[arg-type]


def test_dtype_of_wrong_type_rejected(guarded_registry: str) -> None:
    with pytest.raises(TypeError, match=r"string or a torch\.dtype"):
        load_subject(guarded_registry, dtype=32)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [("float32", torch.float32), ("bfloat16", torch.bfloat16), (torch.float64, torch.float64)],
)
def test_load_subject_passes_resolved_arguments_and_registry_name(
    monkeypatch: pytest.MonkeyPatch,
    tiny_model: HookedTransformer,
    dtype: object,
    expected: torch.dtype,
) -> None:
    calls = []

    def loader(device: str, torch_dtype: torch.dtype) -> Subject:
        calls.append((device, torch_dtype))
        return tiny_subject(tiny_model, name="whatever-the-loader-says")

    monkeypatch.setitem(SUBJECTS, "tiny", SubjectSpec("tiny", "tiny test subject", loader))
    subject = load_subject("tiny", device="cpu", dtype=dtype)  # type: ignore[arg-type]
    assert calls == [("cpu", expected)]
    assert subject.name == "tiny"


def test_load_subject_validates_what_the_loader_returns(
    monkeypatch: pytest.MonkeyPatch, tiny_model: HookedTransformer
) -> None:
    spec = SubjectSpec("bad", "wrong width", lambda d, t: tiny_subject(tiny_model, sae=tiny_sae(8)))
    monkeypatch.setitem(SUBJECTS, "bad", spec)
    with pytest.raises(ValueError, match="d_in=8"):
        load_subject("bad")


@pytest.mark.parametrize(("name", "gain"), [("planted", 30.0), ("planted-null", 0.0)])
def test_planted_rows_import_the_module_lazily(
    monkeypatch: pytest.MonkeyPatch, tiny_model: HookedTransformer, name: str, gain: float
) -> None:
    calls = []

    def load_planted(device: str, dtype: torch.dtype, *, gain: float) -> Subject:
        calls.append((device, dtype, gain))
        return tiny_subject(tiny_model)

    fake = types.ModuleType("synthact.planted")
    fake.load_planted = load_planted  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "synthact.planted", fake)
    monkeypatch.setattr(synthact, "planted", fake, raising=False)
    subject = load_subject(name, dtype="float64")
    assert calls == [("cpu", torch.float64, gain)]
    assert subject.name == name


# --- validate_subject ---------------------------------------------------------------------------


def test_valid_tiny_subject_passes(tiny_model: HookedTransformer) -> None:
    validate_subject(tiny_subject(tiny_model))
    validate_subject(tiny_subject(tiny_model, sae=tiny_sae(hook_name=None)))


@pytest.mark.parametrize("role", ["hook_in", "hook_out"])
def test_unknown_hook_names_nearby_valid_hooks(tiny_model: HookedTransformer, role: str) -> None:
    subject = tiny_subject(tiny_model, **{role: "blocks.1.hook_resid_prre"})
    with pytest.raises(ValueError, match=f"{role} 'blocks.1.hook_resid_prre'") as error:
        validate_subject(subject)
    assert "blocks.1.hook_resid_pre" in str(error.value)


def test_width_mismatch_rejected(tiny_model: HookedTransformer) -> None:
    subject = tiny_subject(tiny_model, sae=tiny_sae(d_in=8))
    with pytest.raises(ValueError, match=r"d_in=8 .* d_model=16"):
        validate_subject(subject)


def test_sae_trained_on_another_hook_rejected(tiny_model: HookedTransformer) -> None:
    subject = tiny_subject(tiny_model, sae=tiny_sae(hook_name="blocks.0.hook_resid_pre"))
    with pytest.raises(ValueError, match=r"trained on 'blocks\.0\.hook_resid_pre'"):
        validate_subject(subject)


@pytest.mark.parametrize(
    ("log_sparsity", "error", "message"),
    [
        (None, ValueError, "no log_sparsity.*sparsity.safetensors"),
        ([-3.0] * 32, TypeError, "must be a torch.Tensor"),
        (torch.full((31,), -3.0), ValueError, r"shape \(31,\).*d_sae=32"),
        (torch.full((1, 32), -3.0), ValueError, r"shape \(1, 32\)"),
        (torch.tensor([-3.0] * 31 + [float("nan")]), ValueError, "non-finite"),
        (torch.tensor([-3.0] * 31 + [float("-inf")]), ValueError, "non-finite"),
    ],
)
def test_bad_log_sparsity_rejected(
    tiny_model: HookedTransformer, log_sparsity: object, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        validate_subject(tiny_subject(tiny_model, log_sparsity=log_sparsity))


def test_nan_sae_weight_rejected(tiny_model: HookedTransformer) -> None:
    sae = tiny_sae()
    with torch.no_grad():
        sae.W_enc[3, 5] = float("nan")
    with pytest.raises(ValueError, match="W_enc contains NaN"):
        validate_subject(tiny_subject(tiny_model, sae=sae))


# --- the jb GPT-2 loading path ------------------------------------------------------------------


def test_missing_sparsity_from_saelens_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tiny_model: HookedTransformer
) -> None:
    """SAELens returns None sparsity silently when sparsity.safetensors is missing."""
    monkeypatch.setattr(HookedTransformer, "from_pretrained", lambda *a, **k: tiny_model)
    monkeypatch.setattr(
        SAE, "from_pretrained_with_cfg_and_sparsity", lambda *a, **k: (tiny_sae(), {}, None)
    )
    with pytest.raises(RuntimeError, match=r"blocks\.1\.hook_resid_pre/sparsity\.safetensors"):
        load_jb_gpt2("cpu", torch.float32)


def test_jb_loading_passes_device_dtype_and_returns_cpu_float32_sparsity(
    monkeypatch: pytest.MonkeyPatch, tiny_model: HookedTransformer
) -> None:
    calls = []

    def model_from_pretrained(name: str, **kwargs: object) -> HookedTransformer:
        calls.append((name, kwargs))
        return tiny_model

    def sae_from_pretrained(release: str, sae_id: str, **kwargs: object) -> tuple:
        calls.append((release, sae_id, kwargs))
        return tiny_sae(), {}, torch.full((32,), -2.0, dtype=torch.float64)

    monkeypatch.setattr(HookedTransformer, "from_pretrained", model_from_pretrained)
    monkeypatch.setattr(SAE, "from_pretrained_with_cfg_and_sparsity", sae_from_pretrained)
    _, _, log_sparsity = load_jb_gpt2("cpu", torch.bfloat16)
    assert calls == [
        ("gpt2", {"device": "cpu", "dtype": torch.bfloat16}),
        ("gpt2-small-res-jb", "blocks.1.hook_resid_pre", {"device": "cpu", "dtype": "bfloat16"}),
    ]
    assert log_sparsity.dtype == torch.float32 and log_sparsity.device.type == "cpu"


OFFLINE_PROBE = """
import json, time
from synthact.subjects import load_subject
start = time.perf_counter()
try:
    load_subject("gpt2-small")
except RuntimeError as error:
    print(json.dumps({"seconds": time.perf_counter() - start, "message": str(error)}))
"""


@pytest.mark.slow
def test_offline_gpt2_small_without_cache_fails_fast_naming_the_files(tmp_path: Path) -> None:
    """Run in a fresh interpreter: HF_HOME/HF_HUB_OFFLINE are read when huggingface_hub loads."""
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "empty-hf-home"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("HF_HUB_CACHE", None)
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.stdout.strip(), f"no RuntimeError was raised:\n{done.stderr[-3000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["seconds"] < 10
    message = result["message"]
    for expected in (
        "HF_HUB_OFFLINE=1",
        str(tmp_path / "empty-hf-home" / "hub"),
        "model gpt2: config.json, model.safetensors, vocab.json, merges.txt",
        "jbloom/GPT2-Small-SAEs-Reformatted: blocks.1.hook_resid_pre/cfg.json",
        "blocks.1.hook_resid_pre/sparsity.safetensors",
        f"dataset apollo-research/Skylion007-openwebtext-tokenizer-gpt2: {OPENWEBTEXT_SHARDS[0]}",
        "network access",
        "HF_HOME",
        "null-gpt2",
    ):
        assert expected in message


def test_offline_check_runs_before_any_loading(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In-process twin of the subprocess test: no loading call is reached on a cache miss."""
    from synthact import hub

    def must_not_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("a loading call ran before the offline cache check")

    monkeypatch.setattr(HookedTransformer, "from_pretrained", must_not_load)
    monkeypatch.setattr(SAE, "from_pretrained_with_cfg_and_sparsity", must_not_load)
    with hub.use_hub_cache(tmp_path, offline=True), pytest.raises(RuntimeError, match="gpt2"):
        subjects.SUBJECTS["gpt2-small"].loader("cpu", torch.float32)


def test_auto_device_picks_an_available_one() -> None:
    from synthact.subjects import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto") == expected
