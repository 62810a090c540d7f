"""The perturbation engine against its naive reference, its paths, errors and determinism."""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from pathlib import Path

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from synthact.method.engine import (
    Curves,
    SlowPathWarning,
    chunk_rows,
    curves,
    last_position,
    memory,
    perturbation_curves,
    perturbation_path,
    request,
)
from tests.families import ARCHITECTURES as FAMILIES
from tests.families import (
    GEMMA2_TIGHT,
    GEMMA3_TIGHT,
    SMALL_SIZE,
    family_config,
    one_thread,  # noqa: F401 (an autouse fixture)
    random_model,
)

reference_curves = functools.partial(perturbation_curves, naive=True)

D_MODEL, N_LAYERS, D_VOCAB, N_PROMPTS, PROMPT_LEN, N_STEPS = 64, 3, 97, 3, 6, 21
TOL = 1e-4

ARCHITECTURES = {  # normalisations and MLPs, beside the model families of tests/families.py
    "LN-gelu_new": dict(normalization_type="LN", act_fn="gelu_new"),
    "LNPre-gelu_new": dict(normalization_type="LNPre", act_fn="gelu_new"),  # GPT-2 after fold_ln
    "none-relu": dict(normalization_type=None, act_fn="relu"),  # the planted subject
    "RMS-gated-silu": dict(normalization_type="RMS", act_fn="silu", gated_mlp=True),
    "RMSPre-attn_only": dict(normalization_type="RMSPre", attn_only=True),
}


def make_model(seed: int = 0, dtype: torch.dtype = torch.float32, **overrides) -> HookedTransformer:
    """A small random model; every parameter (biases and norm weights too) gets seeded noise."""
    settings = dict(
        n_layers=N_LAYERS,
        d_model=D_MODEL,
        n_heads=4,
        d_head=16,
        d_mlp=4 * D_MODEL,
        d_vocab=D_VOCAB,
        n_ctx=16,
        act_fn="gelu_new",
        normalization_type="LN",
        seed=seed,
        dtype=dtype,
    )
    cfg = HookedTransformerConfig(**{**settings, **overrides})
    model = HookedTransformer(cfg).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float64)
            param.add_(0.02 * noise.to(param.dtype))
    return model


def make_inputs(seed: int = 1, scale: float = 3.0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return dict(
        tokens=torch.randint(0, D_VOCAB, (N_PROMPTS, PROMPT_LEN), generator=generator),
        target=scale * torch.randn(N_PROMPTS, D_MODEL, generator=generator),
        base=scale * torch.randn(N_PROMPTS, D_MODEL, generator=generator),
    )


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def model(request) -> HookedTransformer:
    return make_model(**ARCHITECTURES[request.param])


@pytest.fixture(scope="module")
def ln_model() -> HookedTransformer:
    return make_model(**ARCHITECTURES["LN-gelu_new"])


@pytest.fixture
def inputs() -> dict[str, torch.Tensor]:
    return make_inputs()


def own_activation(model: HookedTransformer, tokens: torch.Tensor, hook: str) -> torch.Tensor:
    _, cache = model.run_with_cache(tokens, names_filter=[hook])
    return cache[hook][:, -1, :]


def assert_same_curves(a: Curves, b: Curves, tol: float = TOL) -> None:
    assert a.l2.shape == b.l2.shape
    assert (a.l2 - b.l2).abs().max().item() <= tol
    assert (a.kl is None) == (b.kl is None)
    if a.kl is not None:
        assert (a.kl - b.kl).abs().max().item() <= tol
    torch.testing.assert_close(a.distance, b.distance, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------- engine == naive


@pytest.mark.parametrize("mode", ["absolute", "relative"])
@pytest.mark.parametrize("with_base", [False, True], ids=["own", "base"])
def test_engine_matches_naive(model, inputs, mode, with_base):
    kwargs = dict(
        target=inputs["target"],
        base=inputs["base"] if with_base else None,
        mode=mode,
        n_steps=N_STEPS,
        kl=True,
    )
    engine = perturbation_curves(model, inputs["tokens"], **kwargs)
    naive = reference_curves(model, inputs["tokens"], **kwargs)
    assert_same_curves(engine, naive)
    assert engine.l2[:, 1:].max() > 1e-2, "the perturbation must move the output"
    assert engine.kl[:, 1:].max() > 1e-4


@pytest.mark.parametrize("kl", [False, True])
@pytest.mark.parametrize("mode", ["absolute", "relative"])
def test_engine_matches_naive_with_hook_out_before_last_block(ln_model, inputs, kl, mode):
    kwargs = dict(target=inputs["target"], mode=mode, n_steps=N_STEPS, kl=kl)
    hook_out = "blocks.1.hook_resid_post"
    engine = perturbation_curves(ln_model, inputs["tokens"], hook_out=hook_out, **kwargs)
    naive = reference_curves(ln_model, inputs["tokens"], hook_out=hook_out, **kwargs)
    assert_same_curves(engine, naive)
    at_last_block = perturbation_curves(ln_model, inputs["tokens"], **kwargs)
    assert not torch.allclose(engine.l2, at_last_block.l2)
    if kl:  # the KL curve is read at the logits wherever the L2 curve is measured
        assert torch.equal(engine.kl, at_last_block.kl)


@pytest.mark.parametrize(
    "hook_in", ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", "blocks.2.hook_resid_pre"]
)
def test_engine_matches_naive_at_other_input_hooks(ln_model, inputs, hook_in):
    kwargs = dict(target=inputs["target"], hook_in=hook_in, n_steps=N_STEPS, kl=True)
    engine = perturbation_curves(ln_model, inputs["tokens"], **kwargs)
    naive = reference_curves(ln_model, inputs["tokens"], **kwargs)
    assert_same_curves(engine, naive)


def test_resid_post_input_equals_next_resid_pre(ln_model, inputs):
    post = perturbation_curves(
        ln_model, inputs["tokens"], inputs["target"], hook_in="blocks.0.hook_resid_post"
    )
    pre = perturbation_curves(
        ln_model, inputs["tokens"], inputs["target"], hook_in="blocks.1.hook_resid_pre"
    )
    assert torch.equal(post.l2, pre.l2)


def test_engine_matches_naive_in_float64():
    model = make_model(dtype=torch.float64, **ARCHITECTURES["LNPre-gelu_new"])
    inputs = make_inputs()
    kwargs = dict(target=inputs["target"].double(), mode="relative", n_steps=N_STEPS, kl=True)
    engine = perturbation_curves(model, inputs["tokens"], **kwargs)
    naive = reference_curves(model, inputs["tokens"], **kwargs)
    assert_same_curves(engine, naive, tol=1e-5)  # results are float32; their agreement is exact


def test_single_token_prompts_have_no_prefix(ln_model, inputs):
    tokens = inputs["tokens"][:, :1]
    engine = perturbation_curves(ln_model, tokens, inputs["target"], n_steps=N_STEPS, kl=True)
    naive = reference_curves(ln_model, tokens, inputs["target"], n_steps=N_STEPS, kl=True)
    assert_same_curves(engine, naive)


# ---------------------------------------------------------------------------- model families

FAMILY_VARIANTS = {
    **{family: (family, {}) for family in FAMILIES},
    "gemma2-tight": ("gemma2", GEMMA2_TIGHT),
    "gemma3-tight": ("gemma3", GEMMA3_TIGHT),
}
FAMILY_PROMPT_LEN = 8  # longer than the tight windows of 3


@pytest.fixture(scope="module", params=list(FAMILY_VARIANTS))
def family_model(request) -> HookedTransformer:
    family, overrides = FAMILY_VARIANTS[request.param]
    return random_model(family_config(family, **overrides))


@pytest.fixture(scope="module")
def family_inputs() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(2)
    d_vocab, d_model = SMALL_SIZE["d_vocab"], SMALL_SIZE["d_model"]
    return dict(
        tokens=torch.randint(0, d_vocab, (N_PROMPTS, FAMILY_PROMPT_LEN), generator=generator),
        target=3 * torch.randn(N_PROMPTS, d_model, generator=generator),
        base=3 * torch.randn(N_PROMPTS, d_model, generator=generator),
    )


@pytest.mark.parametrize(
    "hook_in", ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.2.hook_resid_post"]
)
@pytest.mark.parametrize("mode", ["absolute", "relative"])
@pytest.mark.parametrize("with_base", [False, True], ids=["own", "base"])
def test_family_engine_matches_naive(family_model, family_inputs, hook_in, mode, with_base):
    kwargs = dict(
        target=family_inputs["target"],
        base=family_inputs["base"] if with_base else None,
        mode=mode,
        n_steps=N_STEPS,
        hook_in=hook_in,
        kl=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowPathWarning)  # the fast runner covers every family
        engine = perturbation_curves(family_model, family_inputs["tokens"], **kwargs)
    naive = reference_curves(family_model, family_inputs["tokens"], **kwargs)
    assert_same_curves(engine, naive)
    assert engine.l2[:, 1:].max() > 1e-2
    assert engine.kl[:, 1:].max() > 1e-4


def test_family_engine_with_fused_qkv_matches_naive(family_model, family_inputs, monkeypatch):
    """The one-product queries, keys and values that CUDA runs by default, here on CPU."""
    fused = functools.partial(last_position.LastPositionBlock, fused_qkv=True)
    monkeypatch.setattr(last_position, "LastPositionBlock", fused)
    kwargs = dict(target=family_inputs["target"], mode="relative", n_steps=N_STEPS, kl=True)
    engine = perturbation_curves(family_model, family_inputs["tokens"], batch_size=50, **kwargs)
    naive = reference_curves(family_model, family_inputs["tokens"], **kwargs)
    assert_same_curves(engine, naive)


def transformer_lens_curves(model, tokens, points, hook_in, hook_out) -> tuple[torch.Tensor, ...]:
    """L2 and KL curves ``[B, n]`` of path points ``[B, n, d]`` from TransformerLens's forward
    pass resumed at the input block (no hooks), KL in float64."""
    first = request._first_block(hook_in, model.cfg.n_layers)
    out_block = request._out_block(hook_out, model.cfg.n_layers, first)
    outs, logits = [], []
    for n in range(points.shape[1]):
        resid = model(tokens, stop_at_layer=first)
        resid[:, -1] = points[:, n]
        outs.append(model(resid, start_at_layer=first, stop_at_layer=out_block + 1)[:, -1])
        logits.append(model(resid, start_at_layer=first)[:, -1])
    out, logp = torch.stack(outs, 1), torch.stack(logits, 1).double().log_softmax(-1)
    l2 = (out - out[:, :1]).norm(dim=-1)
    kl = (logp[:, :1].exp() * (logp[:, :1] - logp)).sum(-1)
    return l2, kl


@pytest.mark.parametrize("hook_out", [None, "blocks.2.hook_resid_post"])
def test_naive_reference_matches_transformer_lens_forward(family_model, family_inputs, hook_out):
    """The reference against TransformerLens's own forward pass, not hooked: the hooked residual
    at hook_out and the logits (soft-capped once, as the model caps them)."""
    hook_in, n_steps = "blocks.1.hook_resid_pre", 5
    tokens, base, target = family_inputs["tokens"], family_inputs["base"], family_inputs["target"]
    kwargs = dict(base=base, mode="relative", n_steps=n_steps, hook_in=hook_in, hook_out=hook_out)
    naive = reference_curves(family_model, tokens, target, kl=True, **kwargs)
    points = perturbation_path(base, target, mode="relative", n_steps=n_steps)
    with torch.inference_mode():
        l2, kl = transformer_lens_curves(family_model, tokens, points, hook_in, hook_out)
    assert (naive.l2 - l2).abs().max().item() <= 1e-5
    assert (naive.kl - kl).abs().max().item() <= 1e-5


@pytest.mark.parametrize(
    ("family", "tight", "loosened"),
    [
        (
            "gemma2",
            GEMMA2_TIGHT,
            dict(window_size=4096, attn_scores_soft_cap=-1.0, output_logits_soft_cap=-1.0),
        ),
        ("gemma3", GEMMA3_TIGHT, dict(window_size=512, rotary_scaling_factor=1.0)),
        ("gemma3", {}, dict(rotary_base_local=None, use_qk_norm=False)),
        ("qwen3", {}, dict(rotary_base=10000, use_qk_norm=False)),
    ],
    ids=["gemma2-tight", "gemma3-tight", "gemma3", "qwen3"],
)
def test_family_settings_bind(family_inputs, family, tight, loosened):
    """Each setting of the variants above changes the curves, so the tests above exercise it:
    windows, soft caps, local rotary bases and scaled global ones, query/key norms."""
    tokens, target = family_inputs["tokens"], family_inputs["target"]
    bound = perturbation_curves(
        random_model(family_config(family, **tight)), tokens, target, kl=True
    )
    for setting, off in loosened.items():
        model = random_model(family_config(family, **{**tight, setting: off}))
        loose = perturbation_curves(model, tokens, target, kl=True)
        assert (loose.kl - bound.kl).abs().max() > 1e-3, setting


# ---------------------------------------------------------------------------- curve facts


@pytest.mark.parametrize("curves_fn", [perturbation_curves, reference_curves])
@pytest.mark.parametrize("mode", ["absolute", "relative"])
def test_step_zero_is_the_reference(ln_model, inputs, curves_fn, mode):
    curves = curves_fn(ln_model, inputs["tokens"], inputs["target"], mode=mode, kl=True)
    assert curves.l2.shape == curves.kl.shape == (N_PROMPTS, 101)
    assert curves.l2.dtype == curves.kl.dtype == curves.distance.dtype == torch.float32
    assert curves.l2.device.type == "cpu"
    assert torch.all(curves.l2[:, 0] == 0)
    assert torch.all(curves.kl[:, 0] == 0)
    assert curves.kl.min() >= -1e-6


def test_without_kl_the_kl_curve_is_none(ln_model, inputs):
    assert perturbation_curves(ln_model, inputs["tokens"], inputs["target"]).kl is None


@pytest.mark.parametrize("with_base", [False, True], ids=["own", "base"])
def test_distance_is_from_the_start_point(ln_model, inputs, with_base):
    base = inputs["base"] if with_base else None
    curves = perturbation_curves(ln_model, inputs["tokens"], inputs["target"], base=base)
    start = (
        base if with_base else own_activation(ln_model, inputs["tokens"], "blocks.1.hook_resid_pre")
    )
    torch.testing.assert_close(curves.distance, (inputs["target"] - start).norm(dim=-1))


def test_base_changes_the_curves(ln_model, inputs):
    own = perturbation_curves(ln_model, inputs["tokens"], inputs["target"], mode="relative")
    based = perturbation_curves(
        ln_model, inputs["tokens"], inputs["target"], base=inputs["base"], mode="relative"
    )
    assert not torch.allclose(own.l2, based.l2)


# ---------------------------------------------------------------------------- paths


def test_relative_path_runs_from_base_to_target_exactly(inputs):
    path = perturbation_path(inputs["base"], inputs["target"], mode="relative", n_steps=11)
    assert path.shape == (N_PROMPTS, 11, D_MODEL)
    assert torch.equal(path[:, 0], inputs["base"])
    assert torch.equal(path[:, -1], inputs["target"])
    torch.testing.assert_close(path[:, 5], (inputs["base"] + inputs["target"]) / 2)


@pytest.mark.parametrize("step", [0.5, 0.25])
def test_absolute_path_moves_step_per_point_towards_target(inputs, step):
    base, target = inputs["base"], inputs["target"]
    path = perturbation_path(base, target, mode="absolute", step=step, n_steps=101)
    assert torch.equal(path[:, 0], base)
    expected = step * torch.arange(101, dtype=torch.float32).expand(N_PROMPTS, -1)
    torch.testing.assert_close((path - base[:, None]).norm(dim=-1), expected, rtol=1e-5, atol=1e-5)
    direction = (target - base) / (target - base).norm(dim=-1, keepdim=True)
    torch.testing.assert_close(path[:, -1], base + 100 * step * direction, rtol=1e-5, atol=1e-5)


def test_path_keeps_float64():
    generator = torch.Generator().manual_seed(0)
    base, target = torch.randn(2, 2, 8, generator=generator, dtype=torch.float64)
    assert perturbation_path(base, target).dtype == torch.float64


# ---------------------------------------------------------------------------- determinism


def test_same_inputs_give_bitwise_same_curves(ln_model, inputs):
    first = perturbation_curves(ln_model, inputs["tokens"], inputs["target"], kl=True)
    second = perturbation_curves(ln_model, inputs["tokens"], inputs["target"], kl=True)
    assert torch.equal(first.l2, second.l2)
    assert torch.equal(first.kl, second.kl)
    assert torch.equal(first.distance, second.distance)


@pytest.mark.parametrize("batch_size", [1, 7, 50, 101, 250, 1000])
def test_batch_size_does_not_change_the_curves(ln_model, inputs, batch_size):
    kwargs = dict(target=inputs["target"], mode="relative", kl=True)
    default = perturbation_curves(ln_model, inputs["tokens"], **kwargs)
    chunked = perturbation_curves(ln_model, inputs["tokens"], batch_size=batch_size, **kwargs)
    assert_same_curves(chunked, default, tol=1e-5)
    assert torch.all(chunked.l2[:, 0] == 0)


def test_kl_chunks_are_bounded_by_logits_memory(ln_model, inputs, monkeypatch):
    kwargs = dict(target=inputs["target"], mode="relative", kl=True)
    default = perturbation_curves(ln_model, inputs["tokens"], **kwargs)
    monkeypatch.setattr(memory, "CPU_LOGITS_BYTES", 5 * 4 * D_VOCAB)  # 5 rows of float32 logits
    real_chunks, rows = curves._chunks, []

    def recording_chunks(*args):
        chunks = real_chunks(*args)
        rows.extend((s.stop - s.start) * (p.stop - p.start) for _, p, s in chunks)
        return chunks

    monkeypatch.setattr(curves, "_chunks", recording_chunks)
    bounded = perturbation_curves(ln_model, inputs["tokens"], **kwargs)
    assert max(rows) == 5
    assert_same_curves(bounded, default, tol=1e-5)


def test_prompt_groups_do_not_change_the_curves(ln_model, inputs, monkeypatch):
    kwargs = dict(target=inputs["target"], mode="relative", kl=True)
    whole = perturbation_curves(ln_model, inputs["tokens"], **kwargs)
    monkeypatch.setattr(memory, "PREFIX_PROMPTS", 2)
    grouped = perturbation_curves(ln_model, inputs["tokens"], batch_size=30, **kwargs)
    assert_same_curves(grouped, whole, tol=1e-5)
    assert_same_curves(reference_curves(ln_model, inputs["tokens"], batch_size=30, **kwargs), whole)


def test_progress_counts_every_row_and_does_not_change_the_curves(ln_model, inputs):
    quiet = perturbation_curves(ln_model, inputs["tokens"], inputs["target"], batch_size=30)
    rows = []
    counted = perturbation_curves(
        ln_model, inputs["tokens"], inputs["target"], batch_size=30, progress=rows.append
    )
    assert torch.equal(quiet.l2, counted.l2)
    assert len(rows) > 1 and sum(rows) == quiet.l2.numel()


def test_curves_come_to_the_host_once_per_call(ln_model, inputs, monkeypatch):
    """No per-chunk host round-trips: as many device-to-host reads with 63 chunks as with one."""
    kwargs = dict(target=inputs["target"], mode="relative", n_steps=N_STEPS, kl=True)
    reads = []
    for name in ("cpu", "item", "tolist", "__bool__"):
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, _name=name, **kw):
            reads.append(_name)
            return _real(self, *args, **kw)

        monkeypatch.setattr(torch.Tensor, name, counted)
    counts = []
    for batch_size in (None, 1):
        reads.clear()
        perturbation_curves(ln_model, inputs["tokens"], batch_size=batch_size, **kwargs)
        counts.append(sorted(reads))
    monkeypatch.undo()
    assert counts[0] == counts[1]
    assert counts[0].count("cpu") == 3  # distance, l2 and kl


# ---------------------------------------------------------------------------- chunk sizes

GPT2 = family_config("gpt2", "real")
GIB = 2**30


def test_cpu_chunks_keep_their_cache_sized_rows():
    assert chunk_rows(GPT2, "cpu", kl=False) == memory.CPU_ROWS == 256
    assert chunk_rows(GPT2, "cpu", kl=True) == 256  # 64 MiB holds 333 rows of GPT-2 logits
    gemma2 = family_config("gemma2", "real")
    assert chunk_rows(gemma2, "cpu", kl=True) == 64 * 2**20 // (4 * 256000)
    assert chunk_rows(GPT2, "cpu", kl=True, positions=10) == 33  # the naive reference's rows


def test_cuda_chunks_follow_free_memory():
    l2 = chunk_rows(GPT2, "cuda", kl=False, free_bytes=80 * GIB)
    kl = chunk_rows(GPT2, "cuda", kl=True, free_bytes=80 * GIB)
    assert l2 == kl == memory.CUDA_MAX_ROWS
    assert chunk_rows(GPT2, "cuda", kl=True, free_bytes=4 * GIB) >= 2048
    small = chunk_rows(GPT2, "cuda", kl=True, free_bytes=64 * 2**20)
    assert 1 <= small <= 333  # never more than today's 64 MiB of logits


def test_cuda_workers_size_for_their_share():
    alone = chunk_rows(GPT2, "cuda", kl=True, free_bytes=8 * GIB)
    shared = chunk_rows(GPT2, "cuda", kl=True, free_bytes=8 * GIB, share=4)
    assert shared == chunk_rows(GPT2, "cuda", kl=True, free_bytes=2 * GIB)
    assert shared < alone
    assert chunk_rows(GPT2, "cuda", kl=True, free_bytes=80 * GIB, share=4) >= 8192


def test_naive_rows_hold_whole_prompts():
    engine = chunk_rows(GPT2, "cuda", kl=True, free_bytes=8 * GIB)
    assert chunk_rows(GPT2, "cuda", kl=True, free_bytes=8 * GIB, positions=10) == engine // 10


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_explicit_rows_override_the_sizing(device):
    assert chunk_rows(GPT2, device, kl=True, free_bytes=GIB, override=777) == 777
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        chunk_rows(GPT2, device, kl=True, override=0)


def test_the_engine_reads_its_device_share_from_no_environment_variable():
    """The caller (the xdist fixtures) says how many processes share a device."""
    engine = Path(memory.__file__).parent
    for module in engine.glob("*.py"):
        assert "environ" not in module.read_text(), module
    assert inspect.signature(perturbation_curves).parameters["share"].default == 1


def test_prefix_groups_follow_free_memory():
    assert memory.prefix_group(GPT2, 10, None, 1) == memory.PREFIX_PROMPTS
    alone, shared = (memory.prefix_group(GPT2, 10, 80 * GIB, share) for share in (1, 4))
    assert alone >= 4 * 1000
    assert shared == alone // 4


# ---------------------------------------------------------------------------- bad input


def _nan_row(x: torch.Tensor, value: float = math.nan) -> torch.Tensor:
    x = x.clone()
    x[1, 3] = value
    return x


BAD_INPUTS = {
    "tokens-float": (lambda i: dict(tokens=i["tokens"].float()), TypeError, "integer"),
    "tokens-1d": (lambda i: dict(tokens=i["tokens"][0]), ValueError, r"\[B, P\]"),
    "tokens-empty": (lambda i: dict(tokens=i["tokens"][:, :0]), ValueError, r"\[B, P\]"),
    "tokens-vocab": (lambda i: dict(tokens=i["tokens"] + D_VOCAB), ValueError, "vocabulary"),
    "tokens-n_ctx": (lambda i: dict(tokens=i["tokens"].repeat(1, 3)), ValueError, "n_ctx"),
    "target-int": (lambda i: dict(target=i["target"].long()), TypeError, "floating"),
    "target-d": (lambda i: dict(target=i["target"][:, :-1]), ValueError, "shape"),
    "target-B": (lambda i: dict(target=i["target"][:-1]), ValueError, "shape"),
    "target-3d": (lambda i: dict(target=i["target"][None]), ValueError, "shape"),
    "target-nan": (lambda i: dict(target=_nan_row(i["target"])), ValueError, "NaN"),
    "target-inf": (lambda i: dict(target=_nan_row(i["target"], math.inf)), ValueError, "inf"),
    "base-nan": (lambda i: dict(base=_nan_row(i["base"])), ValueError, "base contains"),
    "base-d": (lambda i: dict(base=i["base"][:, :-1]), ValueError, "base must have shape"),
    "base-is-target": (lambda i: dict(base=i["target"]), ValueError, "no direction"),
    "mode": (lambda i: dict(mode="linear"), ValueError, "mode must be one of"),
    "step-zero": (lambda i: dict(step=0.0), ValueError, "step must be"),
    "step-negative": (lambda i: dict(step=-0.5), ValueError, "step must be"),
    "step-nan": (lambda i: dict(step=math.nan), ValueError, "step must be"),
    "step-str": (lambda i: dict(step="0.5"), TypeError, "step must be a number"),
    "n_steps-1": (lambda i: dict(n_steps=1), ValueError, "n_steps must be >= 2"),
    "n_steps-float": (lambda i: dict(n_steps=101.0), TypeError, "n_steps must be an int"),
    "hook_in-mlp": (lambda i: dict(hook_in="blocks.1.hook_mlp_out"), ValueError, "hook_in must"),
    "hook_in-layer": (lambda i: dict(hook_in="blocks.3.hook_resid_pre"), ValueError, "hook_in"),
    "hook_in-last-post": (
        lambda i: dict(hook_in="blocks.2.hook_resid_post"),
        ValueError,
        "after the last block",
    ),
    "hook_out-pre": (lambda i: dict(hook_out="blocks.2.hook_resid_pre"), ValueError, "hook_out"),
    "hook_out-layer": (lambda i: dict(hook_out="blocks.3.hook_resid_post"), ValueError, "M < 3"),
    "hook_out-early": (
        lambda i: dict(hook_in="blocks.2.hook_resid_pre", hook_out="blocks.1.hook_resid_post"),
        ValueError,
        "before the first perturbed block",
    ),
    "batch_size-0": (lambda i: dict(batch_size=0), ValueError, "batch_size must be a positive int"),
    "batch_size-float": (lambda i: dict(batch_size=8.0), TypeError, "batch_size must be an int"),
    "kl-str": (lambda i: dict(kl="yes"), TypeError, "kl must be a bool"),
    "tf32-int": (lambda i: dict(tf32=1), TypeError, "tf32 must be a bool"),
    "share-0": (lambda i: dict(share=0), ValueError, "share must be a positive int"),
}


@pytest.mark.parametrize("curves_fn", [perturbation_curves, reference_curves])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_clear_error(ln_model, inputs, curves_fn, case):
    change, error, message = BAD_INPUTS[case]
    kwargs = dict(tokens=inputs["tokens"], target=inputs["target"])
    kwargs.update(change(inputs))
    with pytest.raises(error, match=message):
        curves_fn(ln_model, **kwargs)


def test_own_activation_equal_to_target_is_an_error_in_absolute_mode(ln_model, inputs):
    own = own_activation(ln_model, inputs["tokens"], "blocks.1.hook_resid_pre")
    with pytest.raises(ValueError, match="no direction"):
        perturbation_curves(ln_model, inputs["tokens"], own)
    relative = perturbation_curves(ln_model, inputs["tokens"], own, mode="relative")
    assert relative.l2.abs().max() < 1e-4


def test_model_must_be_a_hooked_transformer(inputs):
    with pytest.raises(TypeError, match="HookedTransformer"):
        perturbation_curves(torch.nn.Linear(2, 2), inputs["tokens"], inputs["target"])


def test_attached_hooks_are_an_error(inputs):
    model = make_model()
    model.add_hook("blocks.2.hook_mlp_out", lambda act, hook: act * 0)
    with pytest.raises(RuntimeError, match="reset_hooks"):
        perturbation_curves(model, inputs["tokens"], inputs["target"])


SLOW_PATHS = {
    "logn-attn": (dict(use_logn_attn=True), "use_logn_attn", "own blocks"),
    "clip-qkv": (dict(clip_qkv=0.3), "clip_qkv", "own blocks"),
    "attention-sinks": (dict(use_attention_sinks=True), "use_attention_sinks", "own blocks"),
    "alibi": (dict(positional_embedding_type="alibi"), "positional_embedding_type", "own blocks"),
    "dynamic-ntk": (
        dict(positional_embedding_type="rotary", rotary_dim=16, use_dynamic_ntk_rope=True),
        "use_dynamic_ntk_rope",
        "own blocks",
    ),
    "post-norm": (
        dict(normalization_type="RMS", original_architecture="Olmo2ForCausalLM"),
        "original_architecture",
        "own blocks",
    ),
    "shortformer": (dict(positional_embedding_type="shortformer"), "positional_embedding", "naive"),
    "bidirectional": (dict(attention_dir="bidirectional"), "attention_dir", "naive"),
}


@pytest.mark.parametrize("case", list(SLOW_PATHS))
def test_models_outside_the_fast_runner_warn_and_stay_exact(inputs, case):
    overrides, field, path = SLOW_PATHS[case]
    model = make_model(**overrides)
    kwargs = dict(target=inputs["target"], mode="relative", n_steps=N_STEPS, kl=True)
    with pytest.warns(SlowPathWarning, match=rf"cfg\.{field}.*{path}") as warned:
        engine = perturbation_curves(model, inputs["tokens"], **kwargs)
    assert warned[0].filename == __file__  # the warning points at the call
    naive = reference_curves(model, inputs["tokens"], **kwargs)
    assert_same_curves(engine, naive)
    assert engine.l2[:, 1:].max() > 1e-2


def test_supported_models_do_not_warn(model, inputs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowPathWarning)
        perturbation_curves(model, inputs["tokens"], inputs["target"], n_steps=3)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(mode="sideways"), ValueError, "mode"),
        (dict(n_steps=1), ValueError, "n_steps"),
        (dict(step=-1.0), ValueError, "step"),
    ],
)
def test_bad_path_arguments(inputs, kwargs, error, message):
    with pytest.raises(error, match=message):
        perturbation_path(inputs["base"], inputs["target"], **kwargs)


def test_bad_path_vectors(inputs):
    with pytest.raises(ValueError, match="shape"):
        perturbation_path(inputs["base"], inputs["target"][:, :-1])
    with pytest.raises(ValueError, match="NaN"):
        perturbation_path(_nan_row(inputs["base"]), inputs["target"])
    with pytest.raises(ValueError, match="no direction"):
        perturbation_path(inputs["base"], inputs["base"])
