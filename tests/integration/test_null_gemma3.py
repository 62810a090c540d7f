"""The Gemma-3 null hub: a Gemma Scope 2 SAE in its release's layout, loaded offline through
SAELens' own loader, and (with --null-gemma3) the built hub's subject.

The layout test writes a small SAE into a temporary hub (no model, a second); the subject tests
build the Gemma-3 null hub once into ``$SYNTHACT_CACHE`` (about 0.6 GB, a few minutes).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sae_lens import SAE
from safetensors.torch import load_file

from synthact.core.hub_cache import use_hub_cache
from synthact.core.hub_server import serve_hub_cache
from synthact.method.engine import engine_path
from synthact.subjects import NULL_PREFIX, Subject, load_subject
from synthact.subjects.null_hub import (
    GEMMA3_HUB,
    GEMMA_SCOPE_2,
    ensure_null_hub,
    hub_saes,
    random_unit_rows,
)
from synthact.subjects.null_hub import _snapshot as snapshot
from synthact.subjects.null_hub import _write_gemma_scope_2_files as write_gemma_scope_2

(GEMMA_SAE,) = hub_saes(GEMMA3_HUB)


def test_the_gemma3_hub_holds_a_gemma_scope_2_residual_sae() -> None:
    assert GEMMA_SAE.layout == GEMMA_SCOPE_2
    assert GEMMA_SAE.release.startswith("gemma-scope-2-") and "resid_post" in GEMMA_SAE.folder


def test_saelens_loads_the_layout_offline_and_fires_as_the_jb_form(tmp_path: Path) -> None:
    """SAELens' unmodified Gemma Scope 2 loader: cfg and widths from the files (the widths by an
    HTTP range read of the params header, served locally), the weights as written; its JumpReLU
    fires where ``relu((x - b_dec) @ W_dec.T + b_enc)`` does."""
    generator = torch.Generator().manual_seed(0)
    d_in, d_sae = 16, 48
    W_dec = random_unit_rows(d_sae, d_in, generator)
    b_enc = -0.3 * torch.rand(d_sae, generator=generator, dtype=torch.float64)
    b_dec = torch.randn(d_in, generator=generator, dtype=torch.float64)
    folder = snapshot(tmp_path, GEMMA_SAE.repo, seed=0) / GEMMA_SAE.folder
    folder.mkdir(parents=True)
    write_gemma_scope_2(folder, W_dec, b_enc, b_dec, GEMMA_SAE)

    with use_hub_cache(tmp_path, offline=True), serve_hub_cache(tmp_path):
        sae, cfg, log_sparsity = SAE.from_pretrained_with_cfg_and_sparsity(
            GEMMA_SAE.release, GEMMA_SAE.sae_id, device="cpu"
        )
    assert log_sparsity is None
    assert (sae.cfg.d_in, sae.cfg.d_sae) == (d_in, d_sae)
    assert cfg["metadata"]["model_name"] == GEMMA_SAE.cfg["model_name"]
    assert cfg["metadata"]["hook_name"] == GEMMA_SAE.hook
    params = load_file(folder / "params.safetensors")
    assert torch.equal(sae.W_dec.detach(), params["w_dec"])
    assert torch.equal(sae.threshold.detach(), params["threshold"])

    x = 2 * torch.randn(500, d_in, generator=generator, dtype=torch.float64)
    fires_jb = (x - b_dec) @ W_dec.T + b_enc > 0
    with torch.no_grad():
        fires = sae.encode(x.float()) > 0
    assert 0 < fires_jb.double().mean() < 1
    assert (fires != fires_jb).double().mean() < 1e-3  # float32 rounding at the threshold


# --- the built Gemma-3 null hub (with --null-gemma3) --------------------------------------------


@pytest.fixture(scope="module")
def gemma_subject(tmp_path_factory: pytest.TempPathFactory) -> Subject:
    """Loaded while the process's own hub cache is an empty folder: only the null hub serves."""
    ensure_null_hub(hub=GEMMA3_HUB)
    with use_hub_cache(tmp_path_factory.mktemp("empty-hf-cache"), offline=True):
        return load_subject(NULL_PREFIX + GEMMA_SAE.name)


@pytest.mark.null_gemma3
def test_null_gemma3_model_is_gemma_3_270m_shaped_on_the_fast_engine(gemma_subject) -> None:
    cfg = gemma_subject.model.cfg
    assert cfg.original_architecture == "Gemma3ForCausalLM"
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_key_value_heads, cfg.d_head) == (
        18,
        640,
        4,
        1,
        256,
    )
    assert cfg.use_qk_norm and cfg.attn_types[:6] == ["local"] * 5 + ["global"]
    assert engine_path(gemma_subject.model) == ("fast", None)
    assert (gemma_subject.hook_in, gemma_subject.hook_out) == (
        "blocks.12.hook_resid_post",
        "blocks.17.hook_resid_post",
    )


@pytest.mark.null_gemma3
def test_null_gemma3_sae_is_the_built_one_and_sparse(gemma_subject) -> None:
    hub_dir = ensure_null_hub(hub=GEMMA3_HUB)
    repo = hub_dir / ("models--" + GEMMA_SAE.repo.replace("/", "--"))
    commit = (repo / "refs" / "main").read_text()
    params = load_file(repo / "snapshots" / commit / GEMMA_SAE.folder / "params.safetensors")
    assert torch.equal(gemma_subject.sae.W_dec.detach(), params["w_dec"])
    assert gemma_subject.log_sparsity is None  # estimated on the run's activations
    tokens = gemma_subject.sample_prompts(256, torch.Generator().manual_seed(12345))
    with torch.no_grad():
        acts = gemma_subject.model(tokens, stop_at_layer=13)[:, -1]
        l0 = (gemma_subject.sae.encode(acts) > 0).sum(dim=1).double()
    assert 10 <= l0.mean().item() <= 50
