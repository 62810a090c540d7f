"""The planted positive control: a two-block transformer whose sensitivity effects exist by design.

Features ``f_i`` (random unit directions, Zipf weights) are stored in superposition: token v's
embedding is the sum of ``features_per_token`` of them (magnitudes about ``m``), plus a position
vector ``b``. Block 1's MLP reads each feature through a saturating ramp
``r_i(x) = clamp((f_i·(x - b) - ramp_start·m) / ((ramp_end - ramp_start)·m), 0, 1)`` and writes
``gain · r_i(x) · f_i`` back (gain 0: an exact null); block 0 and attention are zero, there is no
layer norm, and the logits are ``unembed_scale · f_i·(resid - b)``. The JumpReLU SAE is the ground
truth: ``W_dec`` rows ``f_i``, ``W_enc = W_dec.T``, ``b_dec = b``. Prompts are uniform token ids
whose last tokens are distinct within a draw; the log-sparsity is exact over the vocabulary.
docs/method.md ("Controls") says why C1 and C11 hold on it.

With ``group_size`` k > 1 (``planted-cooccur``) features fire in groups: consecutive blocks of k
features, drawn as wholes by Zipf weights over groups, and besides the feature ramps the MLP reads
each group jointly: a wide ramp of its summed projection ``sum_i f_i·(x - b)``, written with
``group_gain`` along the group's mean feature, rising from about half a feature's magnitude to
half a feature short of the whole group. It is flat only at 0 and for the whole group
(AND-like), so an activation of whole groups sits on plateaus and one of broken groups on slopes.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import torch
from sae_lens import JumpReLUSAE, JumpReLUSAEConfig
from sae_lens.saes.sae import SAEMetadata
from transformer_lens import HookedTransformer, HookedTransformerConfig

from synthact.subjects.prompts import PROMPT_LEN

HOOK_IN = "blocks.1.hook_resid_pre"
HOOK_OUT = "blocks.1.hook_resid_post"


@dataclass(frozen=True)
class PlantedConfig:
    """Constants of the planted construction (see the module docstring for the formulas).

    Attributes:
        d_model: residual width.
        n_features: number of planted features (= SAE width ``d_sae``).
        d_vocab: number of input tokens; each embeds ``features_per_token`` features. At least
            the number of prompts drawn at once (32,000 for the Gaussian) keeps their last
            tokens distinct.
        features_per_token: active features per token (the SAE's ideal L0), a multiple of
            ``group_size``.
        group_size: features that always fire together (1: independent features).
        group_gain: output of a saturated group ramp (used when ``group_size`` > 1).
        group_ramp_start, group_ramp_end: a group's ramp rises over this range of its summed
            projection, in units of ``m``.
        zipf_offset, zipf_exponent: feature (group) weights ``p_i ∝ (i + zipf_offset) **
            -zipf_exponent``.
        magnitude: ``m``, the median feature magnitude in an embedding.
        magnitude_log_std: magnitudes are ``m * exp(magnitude_log_std * z)``.
        offset_norm: norm of the position embedding ``b`` (the same at every position).
        ramp_start, ramp_end: the readout ramp rises from ``ramp_start·m`` to ``ramp_end·m``.
        gain: output of a saturated ramp, written along its feature (0 = exact null).
        unembed_scale: logits over the features are ``unembed_scale · f_i·(resid - b)``.
        sae_threshold: JumpReLU threshold in units of ``m``.
        d_head, n_heads: attention shape (all attention weights are zero).
        n_ctx: the longest prompt the model accepts.
    """

    d_model: int = 512
    n_features: int = 1024
    d_vocab: int = 50257
    features_per_token: int = 3
    group_size: int = 1
    group_gain: float = 100.0
    group_ramp_start: float = 0.5
    group_ramp_end: float = 2.5
    zipf_offset: float = 3.0
    zipf_exponent: float = 1.2
    magnitude: float = 20.0
    magnitude_log_std: float = 0.3
    offset_norm: float = 40.0
    ramp_start: float = 0.3
    ramp_end: float = 0.4
    gain: float = 30.0
    unembed_scale: float = 0.2
    sae_threshold: float = 0.35
    d_head: int = 64
    n_heads: int = 8
    n_ctx: int = 1024

    def __post_init__(self) -> None:
        if not 0.0 <= self.ramp_start < self.ramp_end:
            raise ValueError(
                f"need 0 <= ramp_start < ramp_end, got {self.ramp_start}, {self.ramp_end}"
            )
        if self.gain < 0 or self.magnitude <= 0 or self.sae_threshold <= 0:
            raise ValueError("gain must be >= 0; magnitude and sae_threshold must be > 0")
        if not 1 <= self.features_per_token <= self.n_features:
            raise ValueError(
                f"features_per_token must be in [1, n_features={self.n_features}], "
                f"got {self.features_per_token}"
            )
        if self.group_size < 1 or self.n_features % self.group_size:
            raise ValueError(f"group_size must divide n_features={self.n_features}")
        if self.features_per_token % self.group_size:
            raise ValueError(
                f"features_per_token={self.features_per_token} must be a multiple of "
                f"group_size={self.group_size}"
            )
        if self.d_head * self.n_heads != self.d_model:
            raise ValueError("d_head * n_heads must equal d_model")
        if self.d_vocab < 1 or self.offset_norm < 0 or self.n_ctx < 1:
            raise ValueError("d_vocab and n_ctx must be >= 1 and offset_norm >= 0")


@dataclass(frozen=True)
class PlantedWeights:
    """The planted ground truth, float64 on CPU.

    Attributes:
        features: ``[n_features, d_model]`` unit feature directions (the SAE decoder rows).
        offset: ``[d_model]`` position embedding ``b`` (the SAE's ``b_dec``).
        token_embeddings: ``[d_vocab, d_model]`` ``W_E`` (features only, without ``b``).
    """

    features: torch.Tensor
    offset: torch.Tensor
    token_embeddings: torch.Tensor


def planted_weights(cfg: PlantedConfig, seed: int) -> PlantedWeights:
    """Draw the features, offset and token embeddings of ``cfg`` from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(cfg.n_features, cfg.d_model, generator=gen, dtype=torch.float64)
    features /= features.norm(dim=1, keepdim=True)
    offset = torch.randn(cfg.d_model, generator=gen, dtype=torch.float64)
    offset *= cfg.offset_norm / offset.norm()
    k = cfg.group_size
    ranks = torch.arange(cfg.n_features // k, dtype=torch.float64)
    log_weights = -cfg.zipf_exponent * torch.log(ranks + cfg.zipf_offset)
    groups = _draw_without_replacement(log_weights, cfg.d_vocab, cfg.features_per_token // k, gen)
    chosen = (groups[:, :, None] * k + torch.arange(k)).flatten(1)  # [d_vocab, features_per_token]
    z = torch.randn(cfg.d_vocab, cfg.features_per_token, generator=gen, dtype=torch.float64)
    magnitudes = cfg.magnitude * torch.exp(cfg.magnitude_log_std * z)  # [d_vocab, k]
    embeddings = torch.zeros(cfg.d_vocab, cfg.d_model, dtype=torch.float64)
    for k in range(cfg.features_per_token):
        embeddings += magnitudes[:, k, None] * features[chosen[:, k]]
    return PlantedWeights(features, offset, embeddings)


def _draw_without_replacement(
    log_weights: torch.Tensor, n_rows: int, k: int, gen: torch.Generator, chunk: int = 8192
) -> torch.Tensor:
    """``[n_rows, k]`` distinct indices per row, drawn successively with probability ∝ weights.

    Gumbel top-k: the k largest ``log_weights + G``, ``G = -log(-log U)`` standard Gumbel, are
    distributed as k successive draws without replacement (as ``torch.multinomial(...,
    replacement=False)``, which is several times slower and larger at this size). Float32 keys
    (only their order matters); ``U`` is kept above 0 so every key is finite.
    """
    log_weights = log_weights.float()
    tiny = torch.finfo(torch.float32).tiny
    rows = []
    for start in range(0, n_rows, chunk):
        u = torch.rand(min(chunk, n_rows - start), len(log_weights), generator=gen).clamp_(tiny)
        rows.append((log_weights - (-u.log()).log()).topk(k, dim=1).indices)
    return torch.cat(rows)


def planted_state_dict(cfg: PlantedConfig, weights: PlantedWeights) -> dict[str, torch.Tensor]:
    """The nonzero parameters of the planted HookedTransformer (float64; all others are zero)."""
    f, b = weights.features, weights.offset
    ramps = [_ramps(f, f, b, cfg.ramp_start, cfg.ramp_end, cfg.magnitude, cfg.gain)]
    if cfg.group_size > 1:
        reads = f.unflatten(0, (-1, cfg.group_size)).sum(dim=1)  # [n_groups, d_model]
        start, end = cfg.group_ramp_start, cfg.group_ramp_end
        writes = reads / cfg.group_size  # the group's mean feature
        ramps.append(_ramps(reads, writes, b, start, end, cfg.magnitude, cfg.group_gain))
    columns = zip(*ramps, strict=True)  # (W_in parts, b_in parts, W_out parts)
    w_in, b_in, w_out = (torch.cat(c, dim=d) for c, d in zip(columns, (1, 0, 0), strict=True))
    return {
        "embed.W_E": weights.token_embeddings,
        "pos_embed.W_pos": b.expand(cfg.n_ctx, -1),
        "blocks.1.mlp.W_in": w_in,
        "blocks.1.mlp.b_in": b_in,
        "blocks.1.mlp.W_out": w_out,
        "unembed.W_U": cfg.unembed_scale * f.T,
        "unembed.b_U": -cfg.unembed_scale * (f @ b),
    }


def _ramps(
    reads: torch.Tensor,
    writes: torch.Tensor,
    offset: torch.Tensor,
    start: float,
    end: float,
    magnitude: float,
    gain: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MLP weights ``(W_in [d, 2r], b_in [2r], W_out [2r, d])`` of ``r`` saturating ramps: ramp
    ``j`` reads ``u = reads[j]·(x - offset)``, rises from ``start·m`` to ``end·m`` and writes
    ``gain · writes[j]`` when saturated (neurons 2j, 2j+1: relu(u - start) - relu(u - end))."""
    width = (end - start) * magnitude
    w_in = (reads / width).repeat_interleave(2, dim=0).T
    starts = torch.tensor([start, end], dtype=torch.float64) * magnitude
    b_in = -((reads @ offset)[:, None] + starts[None, :]).flatten() / width
    w_out = torch.stack([writes, -writes], dim=1).flatten(0, 1) * gain
    return w_in, b_in, w_out


def build_model(cfg: PlantedConfig, weights: PlantedWeights) -> HookedTransformer:
    """The planted HookedTransformer (float64, CPU, eval mode)."""
    model_cfg = HookedTransformerConfig(
        n_layers=2,
        d_model=cfg.d_model,
        n_ctx=cfg.n_ctx,
        d_head=cfg.d_head,
        n_heads=cfg.n_heads,
        d_mlp=2
        * (cfg.n_features + (cfg.n_features // cfg.group_size if cfg.group_size > 1 else 0)),
        d_vocab=cfg.d_vocab,
        d_vocab_out=cfg.n_features,
        act_fn="relu",
        normalization_type=None,
        positional_embedding_type="standard",
        default_prepend_bos=False,
        init_weights=False,
        dtype=torch.float64,
        model_name="planted",
    )
    model = HookedTransformer(model_cfg)
    planted = planted_state_dict(cfg, weights)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(planted[name] if name in planted else torch.zeros_like(param))
    return model.eval()


def build_sae(cfg: PlantedConfig, weights: PlantedWeights) -> JumpReLUSAE:
    """The ground-truth JumpReLU SAE (float64, CPU): decoder rows = features, W_enc = W_dec.T."""
    sae = JumpReLUSAE(
        JumpReLUSAEConfig(
            d_in=cfg.d_model,
            d_sae=cfg.n_features,
            dtype="float64",
            metadata=SAEMetadata(hook_name=HOOK_IN, model_name="planted"),
        )
    )
    with torch.no_grad():
        sae.W_dec.copy_(weights.features)
        sae.W_enc.copy_(weights.features.T)
        sae.b_dec.copy_(weights.offset)
        sae.b_enc.zero_()
        sae.threshold.fill_(cfg.sae_threshold * cfg.magnitude)
    return sae.eval()


def sample_planted_prompts(
    d_vocab: int, n: int, generator: torch.Generator, length: int = PROMPT_LEN
) -> torch.Tensor:
    """``[n, length]`` int64 token ids, each uniform over ``range(d_vocab)``.

    The last tokens are the first ``n`` of successive random permutations of the vocabulary, so
    they are distinct when ``n <= d_vocab``; the other positions are independent uniform draws.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    n_perms = -(-n // d_vocab)
    last = torch.cat([torch.randperm(d_vocab, generator=generator) for _ in range(n_perms)])
    prefix = torch.randint(0, d_vocab, (n, length - 1), generator=generator)
    return torch.cat([prefix, last[:n, None]], dim=1)


@torch.no_grad()
def vocabulary_log_sparsity(
    sae: JumpReLUSAE, weights: PlantedWeights, chunk: int = 8192
) -> torch.Tensor:
    """``[d_sae]`` ``log10(firing frequency + 1e-10)`` of ``sae`` over the prompt distribution.

    The last-position activation at ``blocks.1.hook_resid_pre`` is ``W_E[v] + b`` for last token
    ``v`` (attention and block 0 are zero), and last tokens are uniform, so the firing frequency
    is exactly the fraction of the ``d_vocab`` tokens on which a latent fires.
    """
    counts = torch.zeros(sae.cfg.d_sae, dtype=torch.float64)
    for embeddings in weights.token_embeddings.split(chunk):
        counts += (sae.encode(embeddings + weights.offset) > 0).sum(dim=0)
    return torch.log10(counts / len(weights.token_embeddings) + 1e-10)


@dataclass(frozen=True)
class Planted:
    """The planted construction: model, ground-truth SAE and exact log-sparsity (float64, CPU)."""

    config: PlantedConfig
    model: HookedTransformer
    sae: JumpReLUSAE
    log_sparsity: torch.Tensor


def build_planted(*, gain: float = 30.0, seed: int = 0, **construction: float | int) -> Planted:
    """Build the planted construction (seconds; identical weights for the same arguments).

    Args:
        gain: ramp output (30 = the positive control, 0 = the exact null ``planted-null``).
        seed: draws the features, offset and token embeddings.
        **construction: any other `PlantedConfig` field.
    """
    unknown = set(construction) - {f.name for f in dataclasses.fields(PlantedConfig)}
    if unknown:
        raise TypeError(f"unknown PlantedConfig fields {sorted(unknown)}")
    cfg = PlantedConfig(gain=gain, **construction)
    weights, log_sparsity = _drawn(cfg, seed)
    return Planted(cfg, build_model(cfg, weights), build_sae(cfg, weights), log_sparsity.clone())


@functools.lru_cache(maxsize=5)
def _drawn(cfg: PlantedConfig, seed: int) -> tuple[PlantedWeights, torch.Tensor]:
    """The weights of ``cfg`` and their exact log-sparsity ``[d_sae]`` (float32): most of a
    build's seconds, drawn once per process. Every model and SAE built from them copies them."""
    weights = planted_weights(cfg, seed)
    return weights, vocabulary_log_sparsity(build_sae(cfg, weights), weights).to(torch.float32)
