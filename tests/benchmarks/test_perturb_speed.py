"""Speed of the cached-prefix engine against the naive reference at GPT-2 small size.

A GPT-2-small-shaped model with random weights (LNPre, as after ``fold_ln``; no hub access),
float32, one CPU thread. Each pair (naive, engine) runs the same 4 prompts x 101 steps in the same
benchmark group, and each run's curves are checked against one naive reference. The speeds (ms per
perturbed forward, and their ratio) go to ``benchmark.extra_info`` and the terminal summary. No
speed threshold is asserted.
"""

from __future__ import annotations

import time

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from synthact.perturb import Curves, naive_perturbation_curves, perturbation_curves

N_PROMPTS, PROMPT_LEN, N_STEPS = 4, 10, 101
TOL = 1e-4
IMPLEMENTATIONS = {"naive": naive_perturbation_curves, "engine": perturbation_curves}
ROUNDS = {"naive": 2, "engine": 5}


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def gpt2_sized(one_thread) -> tuple[HookedTransformer, torch.Tensor, torch.Tensor]:
    """(model, tokens [4, 10], targets [4, 768]); targets have about GPT-2's activation norm."""
    cfg = HookedTransformerConfig(
        n_layers=12,
        d_model=768,
        n_heads=12,
        d_head=64,
        d_mlp=3072,
        d_vocab=50257,
        n_ctx=1024,
        act_fn="gelu_new",
        normalization_type="LNPre",
        seed=0,
    )
    model = HookedTransformer(cfg).eval()
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, cfg.d_vocab, (N_PROMPTS, PROMPT_LEN), generator=generator)
    target = torch.randn(N_PROMPTS, cfg.d_model, generator=generator)
    return model, tokens, 56 * target / target.norm(dim=-1, keepdim=True)


@pytest.fixture(scope="module")
def reference(gpt2_sized) -> Curves:
    """Naive L2 and KL curves that every benchmarked run must reproduce."""
    return naive_perturbation_curves(*gpt2_sized, n_steps=N_STEPS, kl=True)


@pytest.mark.slow
@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
@pytest.mark.parametrize("kl", [False, True], ids=["l2", "kl"])
def test_perturbation_speed(benchmark, gpt2_sized, reference, speed_record, kl, implementation):
    group = "perturb-kl" if kl else "perturb-l2"
    benchmark.group = group
    curves_fn = IMPLEMENTATIONS[implementation]
    started = time.perf_counter()
    curves = benchmark.pedantic(
        curves_fn,
        args=gpt2_sized,
        kwargs=dict(n_steps=N_STEPS, kl=kl),
        rounds=ROUNDS[implementation],
        iterations=1,
    )
    seconds = benchmark.stats.stats.min if benchmark.enabled else time.perf_counter() - started

    assert (curves.l2 - reference.l2).abs().max().item() <= TOL
    if kl:
        assert (curves.kl - reference.kl).abs().max().item() <= TOL

    ms_per_forward = 1e3 * seconds / (N_PROMPTS * N_STEPS)
    times = speed_record.setdefault(group, {})
    times[implementation] = ms_per_forward
    benchmark.extra_info["ms_per_perturbed_forward"] = ms_per_forward
    if implementation == "engine" and "naive" in times:
        benchmark.extra_info["speedup_vs_naive"] = times["naive"] / ms_per_forward
    speed_record["_note"] = (
        f"{N_PROMPTS} prompts x {N_STEPS} steps, GPT-2-sized random model, float32, 1 CPU thread"
        + ("" if benchmark.enabled else "; timing disabled: one run each, wall clock")
    )
