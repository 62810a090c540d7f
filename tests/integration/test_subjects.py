"""Unit tests of synthact.subjects: registry, argument checks, validation, offline failure."""

from __future__ import annotations

import ast
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

from synthact.core import hub_cache
from synthact.subjects import (
    SUBJECTS,
    Subject,
    SubjectSpec,
    describe_subjects,
    estimate_log_sparsity,
    load_subject,
    releases,
    resolve_release,
    subject_spec,
    validate_subject,
)
from synthact.subjects.gpt2 import OPENWEBTEXT_SHARDS

REPO_ROOT = Path(__file__).resolve().parents[2]
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


@pytest.mark.parametrize(
    ("name", "random_weights"),
    [
        ("null-gpt2", True),
        ("null:gpt2-small-res-jb/blocks.6.hook_resid_pre", True),
        ("gpt2-small", False),
        ("gpt2-small-res-jb/blocks.6.hook_resid_pre", False),
        ("planted", False),
    ],
)
def test_null_controls_say_their_weights_are_random(name: str, random_weights: bool) -> None:
    """The release's metadata (its Neuronpedia pages) does not describe a null control's SAE."""
    assert subject_spec(name).random_weights is random_weights


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
def test_planted_rows_build_the_planted_subject(name: str, gain: float) -> None:
    subject = load_subject(name, dtype="float64")
    assert subject.name == name and subject.model.cfg.dtype == torch.float64
    assert subject.model.blocks[1].mlp.W_out.norm(dim=1).max().item() == pytest.approx(gain)


def test_planted_cooccur_null_is_planted_cooccur_without_its_group_readout() -> None:
    grouped, null = load_subject("planted-cooccur"), load_subject("planted-cooccur-null")
    assert (grouped.name, null.name) == ("planted-cooccur", "planted-cooccur-null")
    assert torch.equal(grouped.model.embed.W_E, null.model.embed.W_E)
    w_out = null.model.blocks[1].mlp.W_out.norm(dim=1)  # feature ramps, then group ramps
    n_features = null.sae.cfg.d_sae
    assert w_out[: 2 * n_features].max().item() == pytest.approx(30.0)
    assert w_out[2 * n_features :].max().item() == 0.0


def test_planted_module_knows_nothing_of_subjects() -> None:
    """synthact.subjects is the one place that knows every kind of subject: no import cycle."""
    source = (REPO_ROOT / "synthact" / "subjects" / "planted_network.py").read_text()
    imported = {
        node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)
    }
    assert "synthact.subjects" not in imported


# --- names of SAELens releases ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "model", "folder"),
    [
        ("gpt2-small-res-jb/blocks.6.hook_resid_pre", "gpt2-small", "blocks.6.hook_resid_pre"),
        ("pythia-70m-deduped-res-sm/blocks.3.hook_resid_post", "pythia-70m-deduped", "3-res-sm"),
        (
            "gemma-scope-2b-pt-res-canonical/layer_12/width_16k/canonical",
            "gemma-2-2b",
            "layer_12/width_16k/average_l0_82",
        ),
    ],
)
def test_release_names_resolve_from_the_directory(name: str, model: str, folder: str) -> None:
    release = resolve_release(name)
    assert (release.name, release.model, release.folder) == (name, model, folder)
    spec = subject_spec(name)
    assert spec.name == name and release.release in spec.description


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("gpt3", r"unknown subject 'gpt3': neither a registered subject .*RELEASE/SAE_ID"),
        (
            "gpt2-small-res-jbb/blocks.6.hook_resid_pre",
            r"unknown SAELens release .*gpt2-small-res-jb",
        ),
        (
            "gpt2-small-res-jb/blocks.6.hook_resid_prre",
            r"no SAE id 'blocks\.6\.hook_resid_prre'.*'blocks\.6\.hook_resid_pre'.*subjects gpt2",
        ),
        ("null:gpt2-small-res-jb/blocks.7.hook_resid_pre", r"null hub has no stand-in.*blocks\.6"),
        ("null:nonsense", "unknown SAELens release|neither a registered"),
    ],
)
def test_bad_names_are_clear_early_errors(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        subject_spec(name)


@pytest.fixture
def fake_release_cfg(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The SAE cfg and model config the release loader reads; nothing else may load."""
    from sae_lens.loading import pretrained_sae_loaders
    from transformer_lens import loading_from_pretrained

    cfg = {
        "d_in": 768,
        "metadata": {
            "model_name": "gpt2-small",
            "hook_name": "blocks.6.hook_resid_pre",
            "dataset_path": "Skylion007/openwebtext",
        },
    }
    model_cfg = types.SimpleNamespace(n_layers=12, d_model=768)
    monkeypatch.setattr(
        pretrained_sae_loaders, "load_sae_config_from_huggingface", lambda *a, **k: cfg
    )
    monkeypatch.setattr(
        loading_from_pretrained, "get_pretrained_model_config", lambda *a, **k: model_cfg
    )
    monkeypatch.setattr(SAE, "from_pretrained_with_cfg_and_sparsity", loader_that_must_not_run)
    return cfg


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hook_name": "blocks.6.hook_mlp_out"}, "needs an SAE on the residual stream"),
        ({"hook_name": "blocks.12.hook_resid_pre"}, r"has 12 blocks \(0\.\.11\).*lacks"),
        ({"model_class_name": "HookedMamba"}, "HookedTransformer models only"),
        ({"dataset_path": None}, "names no dataset_path"),
    ],
)
def test_release_that_does_not_fit_fails_before_loading_weights(
    fake_release_cfg: dict, change: dict, message: str
) -> None:
    fake_release_cfg["metadata"].update(change)
    with pytest.raises(ValueError, match=message):
        load_subject("gpt2-small-res-jb/blocks.6.hook_resid_pre")


def test_release_width_mismatch_fails_before_loading_weights(fake_release_cfg: dict) -> None:
    fake_release_cfg["d_in"] = 512
    with pytest.raises(ValueError, match=r"d_in=512 .* d_model=768"):
        load_subject("gpt2-small-res-jb/blocks.6.hook_resid_pre")


def test_offline_release_cache_miss_says_what_to_do(tmp_path: Path) -> None:
    with hub_cache.use_hub_cache(tmp_path, offline=True), pytest.raises(RuntimeError) as error:
        load_subject("gpt2-small-res-jb/blocks.6.hook_resid_pre")
    message = str(error.value)
    for expected in ("HF_HUB_OFFLINE=1", str(tmp_path), "network access", "HF_HOME"):
        assert expected in message
    assert "--subject null:gpt2-small-res-jb/blocks.6.hook_resid_pre" in message


def test_missing_sparsity_is_estimated_only_when_the_cache_records_its_absence(
    tmp_path: Path,
) -> None:
    release = resolve_release("pythia-70m-deduped-res-sm/blocks.3.hook_resid_post")
    snapshot = tmp_path / "models--ctigges--pythia-70m-deduped__res-sm_processed"
    (snapshot / "refs").mkdir(parents=True)
    (snapshot / "refs" / "main").write_text("c" * 40)
    (snapshot / "snapshots" / ("c" * 40) / "3-res-sm").mkdir(parents=True)
    with hub_cache.use_hub_cache(tmp_path, offline=True):
        with pytest.raises(RuntimeError, match="does not record whether"):
            releases._check_ships_no_sparsity(release)
        hub_cache.record_missing(
            snapshot / "snapshots" / ("c" * 40) / "3-res-sm", "sparsity.safetensors"
        )
        releases._check_ships_no_sparsity(release)


def test_estimated_sparsity_is_the_firing_frequency(tiny_model: HookedTransformer) -> None:
    sae = tiny_sae()
    acts = torch.randn(500, 16, generator=torch.Generator().manual_seed(1))
    fires = (sae.encode(acts) > 0).double().mean(dim=0)
    expected = torch.log10(fires + 1e-10).float()
    assert torch.equal(estimate_log_sparsity(sae, acts, batch_size=64), expected)
    validate_subject(tiny_subject(tiny_model, log_sparsity=None, estimate_sparsity=True))
    with pytest.raises(ValueError, match="marked estimated"):
        validate_subject(tiny_subject(tiny_model, estimate_sparsity=True))


def test_describe_subjects_shows_names_and_how_to_name_releases() -> None:
    text = describe_subjects()
    for expected in ("gpt2-small ", "RELEASE/SAE_ID", "null:pythia-70m-deduped-res-sm/", "gemma"):
        assert expected in text
    ids = describe_subjects("pythia-70m-deduped-res-sm").splitlines()
    assert "pythia-70m-deduped-res-sm/blocks.3.hook_resid_post" in ids
    with pytest.raises(ValueError, match="unknown SAELens release"):
        describe_subjects("no-such-release")


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
        (None, ValueError, "log_sparsity is None.*sparsity.safetensors"),
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


# --- the paper's subject: the jb release with its overrides -----------------------------------


@pytest.fixture
def fake_jb_hub(monkeypatch: pytest.MonkeyPatch, fake_release_cfg: dict, tmp_path: Path) -> dict:
    """The jb release at layer 1 with a tiny model, as if online with an empty hub cache: every
    loading call is replaced, so nothing downloads."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    fake_release_cfg["metadata"]["hook_name"] = HOOK_IN
    fake_release_cfg["d_in"] = 16
    model_cfg = types.SimpleNamespace(n_layers=2, d_model=16)
    from transformer_lens import loading_from_pretrained

    monkeypatch.setattr(
        loading_from_pretrained, "get_pretrained_model_config", lambda *a, **k: model_cfg
    )
    import huggingface_hub

    monkeypatch.setattr(
        huggingface_hub, "hf_hub_download", lambda *a, **k: "/nowhere/shard.parquet"
    )
    return {"calls": [], "sparsity": torch.full((32,), -2.0, dtype=torch.float64)}


def test_paper_subject_is_the_jb_release_with_a_processed_model(
    monkeypatch: pytest.MonkeyPatch, tiny_model: HookedTransformer, fake_jb_hub: dict
) -> None:
    calls = fake_jb_hub["calls"]

    def model_from_pretrained(name: str, **kwargs: object) -> HookedTransformer:
        calls.append((name, kwargs))
        return tiny_model

    def sae_from_pretrained(release: str, sae_id: str, **kwargs: object) -> tuple:
        calls.append((release, sae_id, kwargs))
        return tiny_sae(), {}, fake_jb_hub["sparsity"]

    monkeypatch.setattr(HookedTransformer, "from_pretrained", model_from_pretrained)
    monkeypatch.setattr(SAE, "from_pretrained_with_cfg_and_sparsity", sae_from_pretrained)
    subject = SUBJECTS["gpt2-small"].loader("cpu", torch.bfloat16)
    assert calls == [
        ("gpt2-small-res-jb", "blocks.1.hook_resid_pre", {"device": "cpu", "dtype": "bfloat16"}),
        ("gpt2", {"device": "cpu", "dtype": torch.bfloat16}),
    ]
    assert (subject.hook_in, subject.hook_out) == (HOOK_IN, "blocks.1.hook_resid_post")
    assert subject.log_sparsity.dtype == torch.float32 and subject.log_sparsity.device.type == "cpu"
    assert not subject.estimate_sparsity


def test_missing_sparsity_of_the_paper_subject_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tiny_model: HookedTransformer, fake_jb_hub: dict
) -> None:
    """SAELens returns None sparsity silently when sparsity.safetensors is missing."""
    monkeypatch.setattr(HookedTransformer, "from_pretrained", lambda *a, **k: tiny_model)
    monkeypatch.setattr(
        SAE, "from_pretrained_with_cfg_and_sparsity", lambda *a, **k: (tiny_sae(), {}, None)
    )
    with pytest.raises(RuntimeError, match=r"blocks\.1\.hook_resid_pre/sparsity\.safetensors"):
        SUBJECTS["gpt2-small"].loader("cpu", torch.float32)


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

    def must_not_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("a loading call ran before the offline cache check")

    monkeypatch.setattr(HookedTransformer, "from_pretrained", must_not_load)
    monkeypatch.setattr(SAE, "from_pretrained_with_cfg_and_sparsity", must_not_load)
    with (
        hub_cache.use_hub_cache(tmp_path, offline=True),
        pytest.raises(RuntimeError, match="these hub files are not in the local cache"),
    ):
        load_subject("gpt2-small")


def test_auto_device_picks_an_available_one() -> None:
    from synthact.subjects import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto") == expected


def test_the_release_directory_is_saelens_own():
    """`releases.directory` reads SAELens' directory file without importing SAELens: every
    release and field it keeps equals SAELens' own parse."""
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    theirs = get_pretrained_saes_directory()
    ours = releases.directory()
    assert set(ours) == set(theirs)
    for name, entry in ours.items():
        for field in dataclasses.fields(entry):
            assert getattr(entry, field.name) == getattr(theirs[name], field.name), (name, field)
