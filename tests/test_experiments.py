"""Run configuration, scale rule, seeding and results of `synthact.experiments`; a tiny model for
the sparsity estimate and the engine fallback."""

import numpy as np
import pytest
import torch
from sae_lens import StandardSAE, StandardSAEConfig
from sae_lens.saes.sae import SAEMetadata
from transformer_lens import HookedTransformer, HookedTransformerConfig

from synthact import experiments
from synthact.cache import ResultCache
from synthact.experiments import Lab, Result, RunConfig, Scale, generator, method_version
from synthact.subjects import SUBJECTS, Subject, SubjectSpec, estimate_log_sparsity


@pytest.mark.parametrize(
    ("norm", "factor"),
    [(56.0, 1.0), (53.5, 1.0), (80.0, 1.0), (90.0, 2.0), (35.0, 0.6), (0.78, 0.01), (560.0, 10.0)],
)
def test_scale_factor_rounds_to_one_significant_figure(norm, factor):
    assert Scale.from_activation_norm(norm).factor == pytest.approx(factor)


def test_gpt2_gets_the_paper_constants():
    scale = Scale.from_activation_norm(56.3)
    assert (scale.step, scale.ap_threshold, scale.flat_slope) == (0.5, 20.0, 0.02)


@pytest.mark.parametrize("norm", [0.0, -1.0, float("nan"), float("inf")])
def test_scale_rejects_bad_norm(norm):
    with pytest.raises(ValueError, match="activation norm"):
        Scale.from_activation_norm(norm)


def test_generators_depend_on_seed_and_labels_only():
    draw = lambda *args: torch.rand(3, generator=generator(*args))  # noqa: E731
    assert torch.equal(draw(0, "pairs"), draw(0, "pairs"))
    assert not torch.equal(draw(0, "pairs"), draw(1, "pairs"))
    assert not torch.equal(draw(0, "pairs"), draw(0, "synthetic", "pairs"))


@pytest.mark.parametrize("field", ["n", "n_gaussian", "n_steps"])
def test_run_config_rejects_tiny_sizes(field):
    with pytest.raises(ValueError, match=field):
        RunConfig(subject="planted", **{field: 1})


def test_pool_covers_every_use():
    config = RunConfig(subject="planted", n=5000, n_gaussian=100, n_latent_stats=50)
    assert config.n_pool == 5001


def test_method_version_is_stable():
    assert method_version() == method_version()
    assert len(method_version()) == 16


def _result(mode):
    curves = np.tile(np.where(np.arange(11) >= 6, 30.0, 0.0), (2, 1))  # a jump at step 6
    arrays = {
        "real/l2": curves,
        "real/distance": np.array([10.0, 2.0]),  # 20 and 4 points of step 0.5
        "random/l2": curves,
        "random/distance": np.array([10.0, 10.0]),
    }
    return Result("planted", "sensitivity", mode, Scale(1.0), arrays)


def test_result_truncates_absolute_curves_at_the_target():
    result = _result("absolute")
    assert result.types == ["real", "random"]
    np.testing.assert_array_equal(result.lengths("real"), [11, 4])
    # the second curve stops before its jump: flat, so MS gives its flat value
    np.testing.assert_array_equal(result.steps("real", "ms"), [6, 99])
    np.testing.assert_array_equal(result.steps("real", "ap"), [6, 100])


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


def test_join_needs_same_mode_and_scale():
    joined = _result("absolute").join(
        Result("planted", "reconstruction", "absolute", Scale(1.0), {})
    )
    assert joined.experiment == "sensitivity+reconstruction"
    with pytest.raises(ValueError, match="cannot join"):
        _result("absolute").join(_result("relative"))
    with pytest.raises(ValueError, match="cannot join"):
        _result("absolute").join(Result("null-gpt2", "reconstruction", "absolute", Scale(1.0), {}))


def test_run_config_rejects_unknown_subject():
    with pytest.raises(ValueError, match=r"unknown subject 'gpt3'.*gpt2-small"):
        RunConfig(subject="gpt3")


def test_run_config_takes_release_names_and_a_prompt_length():
    config = RunConfig(subject="gpt2-small-res-jb/blocks.6.hook_resid_pre", prompt_len=32)
    assert config.prompt_len == 32
    assert RunConfig(subject="planted").prompt_len == 10
    with pytest.raises(ValueError, match="prompt_len"):
        RunConfig(subject="planted", prompt_len=0)
    with pytest.raises(ValueError, match=r"has no SAE id 'blocks\.99\.hook_resid_pre'"):
        RunConfig(subject="gpt2-small-res-jb/blocks.99.hook_resid_pre")


def _tiny_subject(device: str, dtype: torch.dtype) -> Subject:
    """2 blocks, width 16, an SAE of 256 latents, no sparsity file (estimated)."""
    cfg = HookedTransformerConfig(
        n_layers=2, d_model=16, n_ctx=12, d_head=4, n_heads=4, d_mlp=32, d_vocab=300, act_fn="gelu"
    )
    torch.manual_seed(0)
    metadata = SAEMetadata(hook_name="blocks.1.hook_resid_pre")
    sae = StandardSAE(StandardSAEConfig(d_in=16, d_sae=256, metadata=metadata))
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
    config = RunConfig(subject="tiny", n=3, n_gaussian=40, n_latent_stats=20, n_steps=5)
    return Lab(config, ResultCache(tmp_path), progress=False)


def test_lab_estimates_sparsity_from_the_pool_when_the_subject_has_none(tiny_lab: Lab):
    sparsity = tiny_lab.sparsity
    assert int(sparsity["estimated_from"]) == tiny_lab.config.n_pool == 40
    expected = estimate_log_sparsity(tiny_lab.subject.sae, tiny_lab.acts)
    np.testing.assert_array_equal(sparsity["log_sparsity"], expected.numpy())


def test_lab_falls_back_to_the_naive_engine_with_a_warning(
    tiny_lab: Lab, monkeypatch: pytest.MonkeyPatch
):
    def unsupported(model, *args, **kwargs):
        raise NotImplementedError("perturbation_curves does not support this")

    monkeypatch.setattr(experiments, "perturbation_curves", unsupported)
    with pytest.warns(UserWarning, match=r"tiny \(.*\): the fast engine cannot run it.*naive"):
        result = tiny_lab.reconstruction("relative")
    assert result.curves("reconstruction").shape == (3, 5)
