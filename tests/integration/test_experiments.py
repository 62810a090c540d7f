"""The experiments table and the lab, run configuration, constants, seeding, results and stages;
a tiny model for the sparsity estimate."""

import io
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from sae_lens import StandardSAE, StandardSAEConfig
from sae_lens.saes.sae import SAEMetadata
from transformer_lens import HookedTransformer, HookedTransformerConfig

from synthact.core.cache import ResultCache
from synthact.core.progress import Progress
from synthact.core.seeding import generator
from synthact.core.stages import Stage, StageClock, stage_table
from synthact.method import constructions, metrics
from synthact.method.config import RunConfig
from synthact.method.engine import Curves
from synthact.method.experiments import (
    EXPERIMENTS,
    Experiment,
    Lab,
    method_version,
    towards_targets,
)
from synthact.method.results import Result
from synthact.subjects import SUBJECTS, Constants, Subject, SubjectSpec, estimate_log_sparsity

ONE = Constants(step=0.5, flat_slope=0.02, ap_threshold=20.0, source="test")


@pytest.mark.parametrize(
    ("norm", "factor"),
    [(56.0, 1.0), (53.5, 1.0), (80.0, 1.0), (90.0, 2.0), (35.0, 0.6), (0.78, 0.01), (560.0, 10.0)],
)
def test_norm_rule_rounds_to_one_significant_figure(norm, factor):
    constants = Constants.from_activation_norm(norm)
    assert constants.step == pytest.approx(0.5 * factor)
    assert constants.ap_threshold == pytest.approx(20 * factor)
    assert constants.flat_slope == pytest.approx(0.02 * factor)
    assert f"factor {factor:g}" in constants.source


@pytest.mark.parametrize("norm", [0.0, -1.0, float("nan"), float("inf")])
def test_norm_rule_rejects_bad_norm(norm):
    with pytest.raises(ValueError, match="activation norm"):
        Constants.from_activation_norm(norm)


def test_gpt2_small_declares_the_paper_constants_whatever_its_norm(tmp_path):
    """No pool is read (a norm of 50 would give step 0.45 by the norm rule)."""
    lab = Lab(RunConfig(subject="gpt2-small"), ResultCache(tmp_path))
    constants = lab.constants
    assert (constants.step, constants.flat_slope, constants.ap_threshold) == (0.5, 0.02, 20.0)
    assert "acts" not in vars(lab) and lab.stages == []


def test_other_subjects_use_the_norm_rule(tmp_path):
    lab = Lab(RunConfig(subject="null-gpt2"), ResultCache(tmp_path))
    lab.acts = torch.full((4, 9), 3.0)  # norm 9: factor 0.2
    assert lab.constants.step == pytest.approx(0.1)
    assert "norm rule" in lab.constants.source


@pytest.mark.parametrize(
    ("grid", "n_steps", "spacing"), [("code", 100, 50 / 99), ("text", 101, 0.5)]
)
def test_grids(grid, n_steps, spacing):
    config = RunConfig(subject="planted", grid=grid)
    assert config.n_steps == n_steps
    assert config.spacing(0.5) == pytest.approx(spacing)
    assert config.spacing(0.5) * (n_steps - 1) == pytest.approx(50.0)  # 100 nominal steps


def test_code_grid_is_the_authors_linspace():
    """``0.5 * linspace(0, 100, 100)`` are the authors' absolute step lengths."""
    config = RunConfig(subject="planted")
    lengths = config.spacing(0.5) * torch.arange(config.n_steps, dtype=torch.float64)
    torch.testing.assert_close(lengths, 0.5 * torch.linspace(0, 100, 100, dtype=torch.float64))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("grid", "paper", "grid"), ("latent_moves", "swap", "latent_moves")],
)
def test_run_config_rejects_unknown_variants(field, value, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(subject="planted", **{field: value})


def test_generators_depend_on_seed_and_labels_only():
    draw = lambda *args: torch.rand(3, generator=generator(*args))  # noqa: E731
    assert torch.equal(draw(0, "pairs"), draw(0, "pairs"))
    assert not torch.equal(draw(0, "pairs"), draw(1, "pairs"))
    assert not torch.equal(draw(0, "pairs"), draw(0, "synthetic", "pairs"))


@pytest.mark.parametrize("field", ["n", "n_gaussian"])
def test_run_config_rejects_tiny_sizes(field):
    with pytest.raises(ValueError, match=field):
        RunConfig(subject="planted", **{field: 1})


def test_pool_covers_every_use():
    config = RunConfig(subject="planted", n=5000, n_gaussian=100, n_latent_stats=50)
    assert config.n_pool == 5002  # base, target and a third activation per pair fit


def _result(mode):
    curves = np.tile(np.where(np.arange(11) >= 6, 30.0, 0.0), (2, 1))  # a jump at step 6
    arrays = {
        "real/l2": curves,
        "real/distance": np.array([10.0, 2.0]),  # 20 and 4 points of step 0.5
        "random/l2": curves,
        "random/distance": np.array([10.0, 10.0]),
    }
    return Result("planted", "sensitivity", mode, ONE, arrays)


def test_result_truncates_absolute_curves_at_the_target_for_ms_and_ap():
    result = _result("absolute")
    assert result.types == ["real", "random"]
    np.testing.assert_array_equal(result.lengths("real"), [11, 4])
    # the second curve stops before its jump: flat, so MS gives its flat value
    np.testing.assert_array_equal(result.steps("real", "ms"), [6, 99])
    np.testing.assert_array_equal(result.steps("real", "ap"), [6, 100])


def test_result_auc_and_nl_read_the_full_curves():
    result = _result("absolute")
    # a jump at 6 from 0: AUC's ratio is largest at 6 (zero area before it); NL's line through
    # v_0 = 0 and v_9 = 30 is 10/3 per step, and v_10 = 30 lies 10 % under it (tol 20 %):
    # no departure, so the curve length; cutting the second curve at 4 points would give 4
    np.testing.assert_array_equal(result.steps("real", "auc"), [6, 6])
    np.testing.assert_array_equal(result.steps("real", "nl"), [11, 11])
    np.testing.assert_array_equal(result.steps("real", "nl", cut=True), [11, 4])
    np.testing.assert_array_equal(result.steps("real", "ms", cut=False), [6, 6])


def test_result_relative_curves_are_not_truncated():
    result = _result("relative")
    assert result.lengths("real") is None
    np.testing.assert_array_equal(result.steps("real", "ms"), [6, 6])


def test_result_errors_name_what_exists():
    result = _result("absolute")
    with pytest.raises(KeyError, match="no kl curves"):
        result.curves("real", "kl")
    with pytest.raises(ValueError, match="unknown metric"):
        result.steps("real", "max")


def test_join_needs_same_mode_and_constants():
    joined = _result("absolute").join(Result("planted", "reconstruction", "absolute", ONE, {}))
    assert joined.experiment == "sensitivity+reconstruction"
    with pytest.raises(ValueError, match="cannot join"):
        _result("absolute").join(_result("relative"))
    with pytest.raises(ValueError, match="cannot join"):
        _result("absolute").join(Result("null-gpt2", "reconstruction", "absolute", ONE, {}))


def test_stages_are_listed_parents_before_their_children():
    clock = StageClock()
    with clock.stage("pool"), clock.stage("load subject"):
        pass
    stage = clock.stage
    with stage("sensitivity-absolute"), stage("targets: random"), stage("Gaussian fit"):
        pass
    assert [(s.name, s.depth) for s in clock.stages] == [
        ("pool", 0),
        ("load subject", 1),
        ("sensitivity-absolute", 0),
        ("targets: random", 1),
        ("Gaussian fit", 2),
    ]
    pool, load = clock.stages[:2]
    assert pool.seconds >= load.seconds >= 0
    assert len(clock.pop()) == 5 and clock.stages == []


def test_a_stage_that_fails_is_recorded_but_not_reported_done():
    done = []
    clock = StageClock(done.append)
    with pytest.raises(RuntimeError, match="missing files"), clock.stage("load subject"):
        with clock.stage("read config"):
            pass
        raise RuntimeError("missing files")
    assert [s.name for s in done] == ["read config"]
    assert [s.name for s in clock.stages] == ["load subject", "read config"]


def test_stage_table_indents_nested_stages():
    stages = [
        Stage("pool", 3.0, 0),
        Stage("load subject", 2.0, 1),
        Stage("sensitivity-absolute", 9.0, 0),
        Stage("targets: random", 0.5, 1),
        Stage("Gaussian fit", 0.25, 2),
    ]
    lines = stage_table(stages).splitlines()
    assert [line.rsplit("  ", 1)[0].rstrip() for line in lines] == [
        "pool",
        "  load subject",
        "sensitivity-absolute",
        "  targets: random",
        "    Gaussian fit",
    ]
    assert lines[0].endswith("3.00 s")


def test_run_config_rejects_unknown_subject():
    with pytest.raises(ValueError, match=r"unknown subject 'gpt3'.*gpt2-small"):
        RunConfig(subject="gpt3").resolved()


def test_tf32_needs_cuda_and_reference_is_exact_float32():
    with pytest.raises(ValueError, match="tf32 changes CUDA"):
        RunConfig(subject="planted", device="cpu", tf32=True).resolved()
    config = RunConfig(subject="planted", dtype="bfloat16")
    assert not config.exact and config.reference().exact
    assert config.reference() == RunConfig(subject="planted")


def test_lab_device_must_match_the_configured_type(tmp_path):
    config = RunConfig(subject="planted", device="cpu")
    with pytest.raises(ValueError, match="not a 'cpu' device"):
        Lab(config, ResultCache(tmp_path), device="cuda:1")
    assert Lab(config, ResultCache(tmp_path)).device == "cpu"


def test_run_config_takes_release_names_and_a_prompt_length():
    config = RunConfig(subject="gpt2-small-res-jb/blocks.6.hook_resid_pre", prompt_len=32)
    assert config.prompt_len == 32
    assert RunConfig(subject="planted").prompt_len == 10
    with pytest.raises(ValueError, match="prompt_len"):
        RunConfig(subject="planted", prompt_len=0)
    with pytest.raises(ValueError, match=r"has no SAE id 'blocks\.99\.hook_resid_pre'"):
        RunConfig(subject="gpt2-small-res-jb/blocks.99.hook_resid_pre").resolved()


def _tiny_subject(device: str, dtype: torch.dtype) -> Subject:
    """2 blocks, width 16, a sparse SAE of 1024 latents, no sparsity file (estimated)."""
    cfg = HookedTransformerConfig(
        n_layers=2, d_model=16, n_ctx=12, d_head=4, n_heads=4, d_mlp=32, d_vocab=300, act_fn="gelu"
    )
    torch.manual_seed(0)
    metadata = SAEMetadata(hook_name="blocks.1.hook_resid_pre")
    sae = StandardSAE(StandardSAEConfig(d_in=16, d_sae=1024, metadata=metadata))
    with torch.no_grad():
        sae.b_enc.fill_(-2.0)  # about 30 of 1024 latents fire, as in a trained SAE (not half)
    return Subject(
        name="tiny",
        model=HookedTransformer(cfg).eval(),
        sae=sae,
        log_sparsity=None,
        sample_prompts=lambda n, generator, length=10: torch.randint(
            0, 300, (n, length), generator=generator
        ),
        hook_in="blocks.1.hook_resid_pre",
        hook_out="blocks.1.hook_resid_post",
        estimate_sparsity=True,
    )


@pytest.fixture
def tiny_lab(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Lab:
    monkeypatch.setitem(SUBJECTS, "tiny", SubjectSpec("tiny", "a tiny test subject", _tiny_subject))
    config = RunConfig(subject="tiny", n=3, n_gaussian=40, n_latent_stats=20)
    return Lab(config, ResultCache(tmp_path), progress=False)


def test_lab_estimates_sparsity_from_the_pool_when_the_subject_has_none(tiny_lab: Lab):
    sparsity = tiny_lab.sparsity
    assert int(sparsity["estimated_from"]) == tiny_lab.config.n_pool == 40
    expected = estimate_log_sparsity(tiny_lab.subject.sae, tiny_lab.acts)
    np.testing.assert_array_equal(sparsity["log_sparsity"], expected.numpy())


def test_cache_keys_cover_the_method_code_and_every_variant(tmp_path, monkeypatch):
    lab = Lab(RunConfig(subject="planted", grid="text"), ResultCache(tmp_path))
    keys = []
    monkeypatch.setattr(lab.cache, "get_or_compute", lambda name, key, compute: keys.append(key))
    lab.cached("pool", dict, kl=True)
    config = {k: v for k, v in asdict(lab.config).items() if k not in ("construction", "n_needed")}
    key = {"experiment": "pool", "method": method_version(), "config": config}
    key |= {"files": "", "kl": True}  # planted's files: none, its code is the method's
    assert keys == [key]
    assert keys[0]["config"]["grid"] == "text" and keys[0]["config"]["latent_moves"] == "in-place"


class _Recorder:
    """Stands in for `Lab._run`: records each call, returns flat curves."""

    def __init__(self):
        self.calls = []

    def __call__(self, tokens, target, *, mode, kl=False, base=None, progress=None):
        self.calls.append({"tokens": tokens, "target": target, "base": base, "mode": mode})
        n = len(target)
        return Curves(torch.zeros(n, 100), None, torch.ones(n))


@pytest.mark.parametrize("direction", ["gaussian", "base"])
def test_plateau_bases_and_destinations(tmp_path, monkeypatch, direction):
    """docs/method.md: every base in A's prompt; real = T (the pair's other activation), random = a
    Gaussian sample, synthetic = built from A; destinations: a fresh Gaussian sample per base type
    (the paper), or A itself (the run that printed the AP numbers)."""
    lab = Lab(RunConfig(subject="planted", n=8, n_gaussian=200), ResultCache(tmp_path))
    recorder = _Recorder()
    monkeypatch.setattr(lab, "_run", recorder)
    result = lab.result("plateau" if direction == "gaussian" else "plateau-towards-base")
    for kind in result.types:
        result.curves(kind)
    calls = dict(zip(result.types, recorder.calls, strict=True))
    for call in calls.values():
        assert call["mode"] == "absolute" and torch.equal(call["tokens"], lab.base_tokens)
    assert torch.equal(calls["real"]["base"], lab.acts[lab.pairs[1]])
    assert torch.equal(calls["synthetic-baseline"]["base"], lab.targets("synthetic-baseline"))
    assert not torch.equal(calls["random"]["base"], calls["random"]["target"])
    targets = [call["target"] for call in calls.values()]
    if direction == "base":
        assert all(torch.equal(t, lab.base_acts) for t in targets)
    else:  # fresh samples: no two base types share their destinations
        assert not any(torch.equal(a, b) for i, a in enumerate(targets) for b in targets[i + 1 :])
        assert not any(torch.equal(t, lab.base_acts) for t in targets)


# --- the experiments table ----------------------------------------------------------------------


def test_the_table_names_every_type_and_one_way_to_compute_each_experiment():
    curve_types = {kind for e in EXPERIMENTS.values() for kind in e.types}
    assert {"real", "random", *constructions.names(), "reconstruction"} <= curve_types
    for experiment in EXPERIMENTS.values():
        assert experiment.fixture.isidentifier()
        assert set(experiment.kl_types) <= set(experiment.types)
        assert experiment.group in EXPERIMENTS and EXPERIMENTS[experiment.group].same_as is None
    with pytest.raises(ValueError, match="one of reads, same_as or compute"):
        Experiment("neither", ("real",))
    with pytest.raises(ValueError, match="registered twice"):
        EXPERIMENTS.register(Experiment("kl", same_as="sensitivity"))


def test_a_registered_experiment_is_computed_by_the_lab(tmp_path, monkeypatch):
    """One table entry is all the lab needs: its types, modes and what its paths read."""
    lab = Lab(RunConfig(subject="planted", n=8, n_gaussian=200), ResultCache(tmp_path))
    recorder = _Recorder()
    monkeypatch.setattr(lab, "_run", recorder)
    new = Experiment("towards-real", ("real",), ("relative",), reads=towards_targets("base"))
    monkeypatch.setitem(EXPERIMENTS, new.name, new)
    result = lab.result("towards-real")
    assert (result.experiment, result.mode, result.types) == ("towards-real", "relative", ["real"])
    result.curves("real")
    (call,) = recorder.calls
    assert call["mode"] == "relative" and call["base"] is None
    assert torch.equal(call["target"], lab.targets("real"))
    with pytest.raises(ValueError, match=r"runs in \('relative',\), not in mode 'absolute'"):
        lab.result("towards-real", "absolute")
    with pytest.raises(ValueError, match="unknown experiment 'towards-rael'; did you mean"):
        lab.result("towards-rael")


def test_views_and_joins_follow_the_table(tmp_path):
    lab = Lab(RunConfig(subject="planted", n=8, n_gaussian=200), ResultCache(tmp_path))
    assert lab.result("kl", "absolute").experiment == "sensitivity"
    joined = lab.result("reconstruction", "relative")
    assert joined.experiment == "sensitivity+reconstruction" and joined.mode == "relative"
    assert {"real", "random", "reconstruction"} <= set(joined.types)


def test_a_larger_n_starts_with_the_run_s_rows_and_computes_only_the_rows_added(tmp_path):
    """``--n-needed``: n = 10 is n = 6's rows (read from the cache), then 4 more of their own
    draws; bases continue the pool's permutation, so none repeats. (A plain run at a larger n
    need not start with the smaller run's rows: the synthetic constructions draw per batch.)"""
    config = RunConfig(subject="planted-null", n=6, n_gaussian=200)
    kinds = ("real", "random", "synthetic-baseline")
    run = Lab(config, ResultCache(tmp_path), progress=False).result("sensitivity", "absolute")
    first = {kind: run.curves(kind) for kind in kinds}
    lab = Lab(config, ResultCache(tmp_path), progress=False)
    larger = lab.result("sensitivity", "absolute", 10)
    for kind in kinds:
        assert larger.curves(kind).shape[0] == 10
        assert np.array_equal(larger.curves(kind)[:6], first[kind])
    assert [stage.name for stage in lab.stages if stage.name.startswith("sensitivity")] == [
        f"sensitivity-absolute-{kind}" for kind in kinds
    ]  # the 4 rows added, each type once; the first 6 rows were read
    added = lab.rows_from(10)
    bases = torch.cat([lab.pairs[0], added.pairs[0]])
    assert len(set(bases.tolist())) == 10
    assert torch.equal(bases, Lab(replace(config, n=10), ResultCache(tmp_path)).pairs[0])
    with pytest.raises(ValueError, match="not a step experiment"):
        lab.result("latent-statistics", n=10)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _tiny_lab_showing(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch, cache: Path) -> Lab:
    monkeypatch.setitem(SUBJECTS, "tiny", SubjectSpec("tiny", "a tiny test subject", _tiny_subject))
    config = RunConfig(subject="tiny", n=3, n_gaussian=40, n_latent_stats=20)
    return Lab(config, ResultCache(cache), progress=Progress("tiny", stream))


def _read_every_type(lab: Lab, experiment: str) -> None:
    result = lab.result(experiment, "absolute")
    for kind in result.types:
        result.curves(kind)
    lab.progress.close()


def test_a_lab_on_a_terminal_shows_a_bar_per_experiment(monkeypatch, tmp_path) -> None:
    stream = _Terminal()
    _read_every_type(_tiny_lab_showing(stream, monkeypatch, tmp_path), "sensitivity")
    rows = 3 * len(EXPERIMENTS["sensitivity"].types)
    final = stream.getvalue().split("\r")[-1]
    assert final.startswith(f"tiny: sensitivity-absolute ({rows // 3} types × 3): 100%"), final
    assert f"{rows}/{rows} rows" in final and "row/s" in final and "done in" not in final
    again = _Terminal()
    _read_every_type(_tiny_lab_showing(again, monkeypatch, tmp_path), "sensitivity")
    assert again.getvalue() == ""  # every type from the cache: nothing to show


def test_a_lab_off_a_terminal_prints_a_line_per_finished_stage(monkeypatch, tmp_path) -> None:
    stream = io.StringIO()
    _read_every_type(_tiny_lab_showing(stream, monkeypatch, tmp_path), "sensitivity")
    lines = stream.getvalue().splitlines()
    for kind in EXPERIMENTS["sensitivity"].types:
        assert sum(f"synthact tiny: sensitivity-absolute-{kind} done in " in x for x in lines) == 1
    assert any(line.startswith("synthact tiny: pool done in ") for line in lines), lines
    assert "%" not in stream.getvalue()


HAND_CURVE = [0.0, 0.10007, 0.20024, 0.30035, 0.40035]
"""Slopes 0.10007, 0.10017, 0.10011, 0.1: MS step 2. Rounded to 4 decimals: 0, 0.1001, 0.2002,
0.3004, 0.4004, slopes 0.1001, 0.1001, 0.1002, 0.1: MS step 3."""


class _HandCurves(_Recorder):
    """`_Recorder` whose every L2 and KL curve is `HAND_CURVE`."""

    def __call__(self, tokens, target, *, mode, kl=False, base=None, progress=None):
        super().__call__(tokens, target, mode=mode, kl=kl, base=base)
        curves = torch.tensor([HAND_CURVE] * len(target), dtype=torch.float32)
        return Curves(curves, curves if kl else None, torch.ones(len(target)))


@pytest.mark.parametrize(("real_curves", "real_step"), [("rounded", 3), ("full", 2), ("auto", 2)])
def test_relative_real_curves_are_rounded_as_the_authors_read_them(
    tmp_path, monkeypatch, real_curves, real_step
):
    """The relative real L2 and KL curves to 4 decimals with ``real_curves="rounded"`` (the
    authors' tables; ``auto`` on gpt2-small only), full precision with ``full`` and ``auto`` on
    planted; other types and absolute mode always full."""
    config = RunConfig(subject="planted", n=3, n_gaussian=200, real_curves=real_curves)
    lab = Lab(config, ResultCache(tmp_path))
    monkeypatch.setattr(lab, "_run", _HandCurves())
    relative, absolute = (
        lab.result("sensitivity", "relative"),
        lab.result("sensitivity", "absolute"),
    )
    for signal in ("l2", "kl"):
        assert list(metrics.ms_step(relative.curves("real", signal))) == [real_step] * 3
        assert list(metrics.ms_step(relative.curves("random", signal))) == [2] * 3
        assert list(metrics.ms_step(absolute.curves("real", signal))) == [2] * 3
    if real_curves == "rounded":
        np.testing.assert_array_equal(
            relative.curves("real")[0], [0, 0.1001, 0.2002, 0.3004, 0.4004]
        )
