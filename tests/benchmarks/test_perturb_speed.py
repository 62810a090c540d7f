"""Speed of the cached-prefix engine against the naive reference on CPU, per model family.

Models of each family's real widths with random weights (tests/families.py; no hub access),
float32, one CPU thread. GPT-2 small and Pythia-70m run at full depth, perturbed at blocks.1 (the
paper's input layer). The Gemma-2-2B, Llama-3.1-8B, Gemma-3-1B and Qwen3-0.6B shapes are reduced
to 4, 2, 6 and 4 blocks (the full models take 10, 32, 5 and 3 GB in float32; Gemma-3's six blocks
hold five local layers and a global one) and perturbed at blocks.0, so that the engine runs every
block and the speed-up does not depend on the depth; they take up to 6 GB and minutes, and run
only with --benchmark-enable.

Each pair (naive, engine) runs the same prompts in the same benchmark group, and every run's
curves are checked against one naive reference. The speeds (ms per perturbed forward, and their
ratio) go to ``benchmark.extra_info`` and the terminal summary. No speed threshold is asserted.
Where matrix products dominate (the wide shapes), the L2 speed-up approaches the ratio of the
positions each computes, ``P·S / (P - 1 + S)`` for prompts of P tokens and S steps per path (the
naive run computes every position of every step, the engine a prompt's prefix once and then one
position per step): 7.8x here at S = 32, 9.2x at S = 101. That ratio stays below P (10 here):
an exact runner that recomputes the perturbed position in every block cannot reach 10x on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import pytest
import torch

from synthact.method.engine import Curves, perturbation_curves
from tests.families import family_config, random_model

PROMPT_LEN, TOL = 10, 1e-4
UNTIMED_STEPS = 11
"""Steps per path when timing is disabled (the default test run): the benchmark code and the
engine's agreement with the naive run are checked on shorter paths, in a tenth of the time."""
IMPLEMENTATIONS = {"naive": partial(perturbation_curves, naive=True), "engine": perturbation_curves}


@dataclass(frozen=True)
class Bench:
    """One family's benchmark: depth (None: the real one), input hook, prompts and steps."""

    n_layers: int | None
    hook_in: str
    n_prompts: int
    n_steps: int
    heavy: bool

    @property
    def rounds(self) -> dict[str, int]:
        return {"naive": 1, "engine": 3} if self.heavy else {"naive": 2, "engine": 5}


BENCHES = {
    "gpt2": Bench(None, "blocks.1.hook_resid_pre", 4, 101, heavy=False),
    "pythia": Bench(None, "blocks.1.hook_resid_pre", 4, 101, heavy=False),
    "gemma2": Bench(4, "blocks.0.hook_resid_pre", 2, 32, heavy=True),
    "llama": Bench(2, "blocks.0.hook_resid_pre", 2, 32, heavy=True),
    "gemma3": Bench(6, "blocks.0.hook_resid_pre", 2, 32, heavy=True),
    "qwen3": Bench(4, "blocks.0.hook_resid_pre", 2, 32, heavy=True),
}


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=list(BENCHES))
def family(request, bench_device, one_thread) -> tuple[str, dict]:
    """(family, curves arguments: model, tokens [n, 10], targets at 56, the norm of GPT-2's
    activations, hook_in and n_steps)."""
    name, bench = request.param, BENCHES[request.param]
    if bench_device != "cpu":
        pytest.skip("CPU benchmark; this run benchmarks --device cuda")
    if bench.heavy and not request.config.getoption("benchmark_enable"):
        pytest.skip("heavy (about 6 GB, minutes): runs with --benchmark-enable")
    depth = {} if bench.n_layers is None else {"n_layers": bench.n_layers}
    model = random_model(family_config(name, "real", **depth), noise=0)
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, model.cfg.d_vocab, (bench.n_prompts, PROMPT_LEN), generator=generator)
    target = torch.randn(bench.n_prompts, model.cfg.d_model, generator=generator)
    target = 56 * target / target.norm(dim=-1, keepdim=True)
    args = dict(model=model, tokens=tokens, target=target, hook_in=bench.hook_in)
    timed = request.config.getoption("benchmark_enable")
    return name, dict(args, n_steps=bench.n_steps if timed else UNTIMED_STEPS)


@pytest.fixture(scope="module")
def reference(family) -> Curves:
    """Naive L2 and KL curves that every benchmarked run must reproduce."""
    return perturbation_curves(**family[1], kl=True, naive=True)


@pytest.mark.slow
@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
@pytest.mark.parametrize("kl", [False, True], ids=["l2", "kl"])
def test_perturbation_speed(benchmark, family, reference, speed_record, kl, implementation):
    name, kwargs = family
    bench = BENCHES[name]
    group = f"cpu-{name}-{'kl' if kl else 'l2'}"
    benchmark.group = group
    started = time.perf_counter()
    curves = benchmark.pedantic(
        IMPLEMENTATIONS[implementation],
        kwargs=dict(kwargs, kl=kl),
        rounds=bench.rounds[implementation],
        iterations=1,
    )
    seconds = benchmark.stats.stats.min if benchmark.enabled else time.perf_counter() - started

    assert (curves.l2 - reference.l2).abs().max().item() <= TOL
    if kl:
        assert (curves.kl - reference.kl).abs().max().item() <= TOL

    per_forward = seconds / (bench.n_prompts * kwargs["n_steps"])
    times = speed_record.setdefault(group, {})
    times[implementation] = per_forward
    benchmark.extra_info["ms_per_perturbed_forward"] = 1e3 * per_forward
    if implementation == "engine" and "naive" in times:
        benchmark.extra_info["speedup_vs_naive"] = times["naive"] / per_forward
    notes = speed_record.setdefault("_notes", [])
    reduced = ", ".join(f"{n} ({b.n_layers} blocks)" for n, b in BENCHES.items() if b.n_layers)
    note = (
        f"CPU: random models of each family's real widths, float32, 1 thread; {reduced} reduced "
        "in depth and perturbed at blocks.0"
        + ("" if benchmark.enabled else f"; timing disabled: one run each of {UNTIMED_STEPS} steps")
    )
    if note not in notes:
        notes.append(note)
