"""Synthetic latent activation vectors: the SAE latents of real activations, moved elsewhere.

Each construction takes latent activations ``acts [B, d_sae]`` (``sae.encode``, never negative)
and moves every active latent (> 0) of a row to another latent, keeping its value; it returns
``[B, d_sae]`` in ``acts``' dtype and device, decoded elsewhere. docs/method.md ("Target and base
types") defines the three constructions and their paper-text variants. Frequencies are linear
(``10 ** log_sparsity``), frequency ties rank the lower index first, and every random draw is made
on ``generator``'s device, so a CPU generator picks the same latents for CPU and GPU ``acts``.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor

from synthact.core.validate import check_generator, check_log_sparsity, check_positive_int

DEAD_LOG_SPARSITY = -10.0
"""A latent with ``log_sparsity <= DEAD_LOG_SPARSITY`` never fired (``log10(0 + 1e-10)``)."""

_ROWS_PER_CHUNK = 128
"""Rows processed together by ``synthetic_structured`` (bounds a ``[rows, d_sae]`` buffer)."""


def synthetic_random(
    acts: Tensor, log_sparsity: Tensor, generator: torch.Generator, *, distinct: bool = False
) -> Tensor:
    """Move each active latent to a uniformly random non-dead latent (``log_sparsity > -10``).

    ``distinct=False`` (the authors' code): in place, in index order (`_move_in_place`),
    destinations drawn with replacement, so a value can be overwritten and lost.
    ``distinct=True`` (the text): distinct destinations written into a zero vector.
    ``acts [B, d_sae]``, ``log_sparsity [d_sae]`` -> ``[B, d_sae]``.
    """
    _check_acts(acts)
    log_sparsity = _log_sparsity_on(log_sparsity, acts)
    check_generator(generator)
    latents, counts = _active_latents(acts)
    alive = (log_sparsity > DEAD_LOG_SPARSITY).nonzero().squeeze(1)
    n_max = latents.shape[1]
    if n_max == 0:
        return torch.zeros_like(acts)
    if not distinct:
        if len(alive) == 0:
            raise ValueError("every latent is dead; synthetic_random needs a non-dead latent")
        draw = _randint(len(alive), latents.shape, generator, acts.device)
        return _move_in_place(acts, latents, alive[draw])
    if n_max > len(alive):
        raise ValueError(
            f"a row has {n_max} active latents but only {len(alive)} latents are non-dead; "
            "synthetic_random(distinct=True) needs at least as many non-dead latents as active ones"
        )
    moved = torch.full_like(latents, -1)
    for row in counts.nonzero().squeeze(1).tolist():
        n = int(counts[row])
        draw = torch.randperm(len(alive), generator=generator, device=generator.device)[:n]
        moved[row, :n] = alive[draw.to(acts.device)]
    return _place(acts, latents, moved)


def synthetic_baseline(
    acts: Tensor,
    log_sparsity: Tensor,
    generator: torch.Generator,
    k: int = 10,
    *,
    skip_chosen: bool = False,
) -> Tensor:
    """Move each active latent i, in index order, to one of the ``k`` latents nearest it in
    frequency (dead ones included, i excluded), picked uniformly: a "bag of latents".

    ``skip_chosen=False`` (the authors' code, whose skip never took effect): in place, values can be
    lost. ``skip_chosen=True`` (the text): chosen latents are skipped and nothing is lost.
    ``acts [B, d_sae]``, ``log_sparsity [d_sae]`` -> ``[B, d_sae]``.
    """
    _check_acts(acts)
    freq = _frequencies(_log_sparsity_on(log_sparsity, acts))
    check_generator(generator)
    check_positive_int("k", k)
    latents, counts = _active_latents(acts)
    n_rows, n_max = latents.shape
    if n_max == 0:
        return torch.zeros_like(acts)
    left = len(freq) - (n_max if skip_chosen else 1)
    if k > left:
        raise ValueError(
            f"k={k} is too large: with d_sae={len(freq)} and a row of {n_max} active latents, a "
            f"latent has only {left} latents left to choose from"
        )
    picks = _randint(k, (n_rows, n_max), generator, acts.device)
    # (Padding slots, -1, are ranked as latent 0; they are never read.)
    queries, slot_query = torch.unique(latents.clamp(min=0), return_inverse=True)
    everyone = torch.arange(len(freq), device=acts.device)
    if not skip_chosen:
        nearest = _frequency_neighbours(freq, everyone, queries, k)[slot_query]  # [B, n_max, k]
        moved = nearest.gather(2, picks[:, :, None]).squeeze(2)
        return _move_in_place(acts, latents, moved)
    # A latent's first k + n_max - 1 neighbours hold k that are neither chosen nor itself.
    candidates = _frequency_neighbours(freq, everyone, queries, k + n_max - 1)[slot_query]
    return _place(acts, latents, _draw_unused(candidates, picks, counts))


def synthetic_structured(
    acts: Tensor,
    log_sparsity: Tensor,
    W_dec: Tensor,
    generator: torch.Generator,
    cos_target: float = 0.42,
    n_candidates: int = 100,
    match_top_cos: bool = True,
    *,
    exclude_dead_candidates: bool = False,
    reserve_top_synth: bool = False,
) -> Tensor:
    """Move the active latents so that their decoder geometry around the top latent is kept.

    Per row: ``top`` = the largest activation; ``top_synth`` = among the ``n_candidates`` latents
    nearest ``top`` in frequency, the one whose cosine with ``top`` is closest to ``cos_target``
    (``match_top_cos=False``: the nearest in frequency); then each active latent i, in index order,
    goes to the unused latent whose cosine with ``top_synth`` is closest to ``cos(top, i)``. Cosines
    are between rows of ``W_dec [d_sae, d_model]``. Paper-text variants: ``exclude_dead_candidates``
    (non-dead candidates only) and ``reserve_top_synth`` (``top`` takes ``top_synth`` first).
    Deterministic; ``generator`` is accepted for a common call form. ``acts [B, d_sae]``,
    ``log_sparsity [d_sae]`` -> ``[B, d_sae]``.
    """
    _check_acts(acts)
    log_sparsity = _log_sparsity_on(log_sparsity, acts)
    freq = _frequencies(log_sparsity)
    unit = _unit_decoder_rows(W_dec, acts)
    check_generator(generator)
    check_positive_int("n_candidates", n_candidates)
    if not (isinstance(cos_target, (int, float)) and -1.0 <= cos_target <= 1.0):
        raise ValueError(f"cos_target must be a number in [-1, 1], got {cos_target!r}")
    latents, counts = _active_latents(acts)
    if latents.shape[1] == 0:
        return torch.zeros_like(acts)
    rows = (counts > 0).nonzero().squeeze(1)
    top = acts[rows].argmax(dim=1)
    if exclude_dead_candidates:
        pool = (log_sparsity > DEAD_LOG_SPARSITY).nonzero().squeeze(1)
    else:
        pool = torch.arange(len(freq), device=acts.device)
    tops, row_query = torch.unique(top, return_inverse=True)
    candidates = _frequency_neighbours(freq, pool, tops, n_candidates)[row_query]
    moved = torch.full_like(latents, -1)
    for chunk in torch.split(torch.arange(len(rows), device=acts.device), _ROWS_PER_CHUNK):
        top_synth = _pick_top_synth(unit, top[chunk], candidates[chunk], cos_target, match_top_cos)
        moved[rows[chunk]] = _match_cosines(
            unit, latents[rows[chunk]], top[chunk], top_synth, reserve_top_synth
        )
    return _place(acts, latents, moved)


def _pick_top_synth(
    unit: Tensor, top: Tensor, candidates: Tensor, cos_target: float, match_top_cos: bool
) -> Tensor:
    """``top [R]``, ``candidates [R, n]`` ranked by frequency -> ``top_synth [R]``."""
    if not match_top_cos:
        return candidates[:, 0]
    cos = torch.bmm(unit[candidates], unit[top].unsqueeze(2)).squeeze(2)  # [R, n]
    best = (cos - cos_target).abs().argmin(dim=1, keepdim=True)
    return candidates.gather(1, best).squeeze(1)


def _draw_unused(
    candidates: Tensor, picks: Tensor, counts: Tensor, reserved: Tensor | None = None
) -> Tensor:
    """Each active slot, in order, takes the ``picks``-th of its candidates that is neither
    reserved nor taken by an earlier slot of its row.

    Args:
        candidates: ``[B, n_max, L]`` each slot's candidate latents, in order of preference.
        picks: ``[B, n_max]`` which free candidate each slot takes (0: the first).
        counts: ``[B]`` active slots per row (the first ``counts[b]``).
        reserved: ``[B, r]`` latents no slot of the row may take (-1: none; None: nothing).

    Returns:
        ``[B, n_max]`` the latent each slot moves to, padded with -1.
    """
    # Rows sorted by decreasing count, so the rows still active at step t are a prefix.
    order = counts.argsort(descending=True, stable=True)
    candidates, picks, counts = candidates[order], picks[order], counts[order]
    moved = torch.full_like(picks, -1)
    reserved = moved[:, :0] if reserved is None else reserved[order]
    for t in range(picks.shape[1]):
        n = int((counts > t).sum())
        options = candidates[:n, t]  # [n, L]
        excluded = torch.cat([reserved[:n], moved[:n, :t]], dim=1)
        free = ~(options[:, :, None] == excluded[:, None, :]).any(dim=2)
        nth_free = free.cumsum(dim=1)
        hit = free & (nth_free == picks[:n, t, None] + 1)
        if not hit.any(dim=1).all():
            raise ValueError(
                f"not enough free latents: a row's slot {t} wants its free candidate "
                f"{int(picks[:n, t].max()) + 1} of {options.shape[1]}, but its row's other latents "
                "took them (an SAE with more latents, or sparser activations, is needed)"
            )
        moved[:n, t] = options.gather(1, hit.int().argmax(dim=1, keepdim=True)).squeeze(1)
    return moved[order.argsort()]


def _match_cosines(
    unit: Tensor, latents: Tensor, top: Tensor, top_synth: Tensor, reserve_top_synth: bool
) -> Tensor:
    """Step 4 of ``synthetic_structured`` for ``R`` rows.

    Args:
        unit: ``[d_sae, d_model]`` unit-norm decoder rows.
        latents: ``[R, n_max]`` active latents in index order, padded with -1.
        top, top_synth: ``[R]``.

    Returns:
        ``[R, n_max]`` the latent each active latent moves to, padded with -1.
    """
    rows = torch.arange(len(top), device=top.device)
    synth_cos = unit[top_synth] @ unit.T  # [R, d_sae]
    synth_cos[rows, top_synth] = 1.0
    top_cos = (unit[latents.clamp(min=0)] * unit[top][:, None, :]).sum(dim=2)  # [R, n_max]
    top_cos[latents == top[:, None]] = 1.0
    return _match_relations(synth_cos, top_cos, latents, top, top_synth, reserve_top_synth)


def _match_relations(
    synth_rel: Tensor,
    top_rel: Tensor,
    latents: Tensor,
    top: Tensor,
    top_synth: Tensor,
    reserve_top_synth: bool,
    tie_break: Tensor | None = None,
) -> Tensor:
    """Move each active latent i, in index order, to the unused latent j whose relation to
    ``top_synth`` is closest to i's relation to ``top``.

    Args:
        synth_rel: ``[R, d_sae]`` relation of every latent to the row's ``top_synth``.
        top_rel: ``[R, n_max]`` relation of each active latent to the row's ``top``.
        latents: ``[R, n_max]`` active latents in index order, padded with -1.
        top, top_synth: ``[R]``.
        tie_break: ``[d_sae]`` a latent property (log-frequency); among equal relations the
            latent nearest i in it wins (None: the lowest index).

    Returns:
        ``[R, n_max]`` the latent each active latent moves to, padded with -1.
    """
    order = (latents >= 0).sum(dim=1).argsort(descending=True, stable=True)
    latents, top, top_synth = latents[order], top[order], top_synth[order]
    synth_rel, top_rel = synth_rel[order], top_rel[order]
    counts = (latents >= 0).sum(dim=1)
    is_top = latents == top[:, None]
    moved = torch.full_like(latents, -1)
    reserved = top_synth[:, None] if reserve_top_synth else moved[:, :0]
    for t in range(latents.shape[1]):
        n = int((counts > t).sum())
        gap = (synth_rel[:n] - top_rel[:n, t, None]).abs_()
        if tie_break is not None:
            own = tie_break[latents[:n, t].clamp(min=0)]
            gap += _TIE_WEIGHT * (tie_break[None, :] - own[:, None]).abs()
        gap.scatter_(1, torch.cat([reserved[:n], moved[:n, :t]], dim=1), math.inf)
        nearest = gap.argmin(dim=1)
        if reserve_top_synth:
            nearest = torch.where(is_top[:n, t], top_synth[:n], nearest)
        moved[:n, t] = nearest
    return moved[order.argsort()]


_TIE_WEIGHT = 1e-12
"""Weight of the tie-break distance (log10 frequencies, at most 10 apart, in float64): below the
smallest nonzero difference of two conditional probabilities of a pool of up to 10^5 activations
(``1 / N**2``), so it only orders equal relations."""


def synthetic_cooccurrence(
    acts: Tensor,
    log_sparsity: Tensor,
    cooccurrence: Cooccurring,
    generator: torch.Generator,
    n_candidates: int = 100,
) -> Tensor:
    """Move the active latents so that their co-firing with the top latent is kept.

    The analogue of ``synthetic_structured`` with the pool's conditional firing probability
    ``P(j | k)`` (how often j fires when k does) in place of the decoder cosine. Per row: ``top``
    = the largest activation; ``top_synth`` = among the ``n_candidates`` non-dead latents nearest
    ``top`` in frequency, the one least likely to fire with ``top`` (ties: nearest in frequency),
    so the synthetic set is another set, as a real target is; ``top`` takes ``top_synth``, then
    each other active latent i, in index order, goes to the unused latent j whose ``P(j |
    top_synth)`` is closest to ``P(i | top)`` (ties: nearest in frequency). Values and L0 are
    kept. Deterministic; ``generator`` is accepted for a common call form.
    ``acts [B, d_sae]``, ``log_sparsity [d_sae]`` -> ``[B, d_sae]``.
    """
    _check_acts(acts)
    log_sparsity = _log_sparsity_on(log_sparsity, acts)
    freq = _frequencies(log_sparsity)
    check_generator(generator)
    check_positive_int("n_candidates", n_candidates)
    latents, counts = _active_latents(acts)
    if latents.shape[1] == 0:
        return torch.zeros_like(acts)
    rows = (counts > 0).nonzero().squeeze(1)
    top = acts[rows].argmax(dim=1)
    alive = (log_sparsity > DEAD_LOG_SPARSITY).nonzero().squeeze(1)
    tops, row_query = torch.unique(top, return_inverse=True)
    candidates = _frequency_neighbours(freq, alive, tops, n_candidates)[row_query]  # nearest first
    moved = torch.full_like(latents, -1)
    for chunk in torch.split(torch.arange(len(rows), device=acts.device), _ROWS_PER_CHUNK):
        row_latents = latents[rows[chunk]]
        given_top = cooccurrence.conditional(top[chunk]).to(acts.device)  # [R, d_sae]
        least = given_top.gather(1, candidates[chunk]).argmin(dim=1, keepdim=True)  # first minimum
        top_synth = candidates[chunk].gather(1, least).squeeze(1)
        moved[rows[chunk]] = _match_relations(
            cooccurrence.conditional(top_synth).to(acts.device),
            given_top.gather(1, row_latents.clamp(min=0)),
            row_latents,
            top[chunk],
            top_synth,
            reserve_top_synth=True,
            tie_break=log_sparsity.double(),
        )
    return _place(acts, latents, moved)


def synthetic_frequency(
    acts: Tensor,
    log_sparsity: Tensor,
    generator: torch.Generator,
    n_candidates: int = 100,
    k: int = 10,
) -> Tensor:
    """The frequency-matched control of ``synthetic_cooccurrence``: its swaps, without ``P(j|k)``.

    Per row: ``top`` = the largest activation goes first, to ``top_synth``, drawn uniformly among
    the ``n_candidates`` latents nearest ``top`` in frequency (the co-occurrence construction's
    neighbourhood); then each other active latent i, in index order, goes to one of the ``k``
    latents nearest i in frequency, drawn uniformly. Only non-dead latents that are not active in
    the row and not yet taken are eligible (the synthetic set is another set, as in the
    co-occurrence construction). Each latent keeps its value and about its firing frequency (L0
    is kept); which latents fire together is left to chance.
    ``acts [B, d_sae]``, ``log_sparsity [d_sae]`` -> ``[B, d_sae]``.
    """
    _check_acts(acts)
    log_sparsity = _log_sparsity_on(log_sparsity, acts)
    freq = _frequencies(log_sparsity)
    check_generator(generator)
    check_positive_int("n_candidates", n_candidates)
    check_positive_int("k", k)
    latents, counts = _active_latents(acts)
    n_rows, n_max = latents.shape
    if n_max == 0:
        return torch.zeros_like(acts)
    # The top latent first, the others after it in index order (padding stays last).
    top = acts.argmax(dim=1)  # rows without an active latent are never read
    is_top = latents == top[:, None]
    first = (~is_top).int().argsort(dim=1, stable=True)
    latents = latents.gather(1, first)
    picks = _randint(k, (n_rows, n_max), generator, acts.device)
    picks[:, 0] = _randint(n_candidates, (n_rows,), generator, acts.device)
    # (Padding slots, -1, are ranked as latent 0; they are never read.)
    queries, slot_query = torch.unique(latents.clamp(min=0), return_inverse=True)
    alive = (log_sparsity > DEAD_LOG_SPARSITY).nonzero().squeeze(1)
    # Besides the query itself, at most n_max - 1 active and n_max - 1 taken latents are skipped;
    # a small SAE may hold fewer (then `_draw_unused` says so if a slot finds too few free).
    depth = min(max(n_candidates, k) + 2 * (n_max - 1), len(alive) - 1)
    candidates = _frequency_neighbours(freq, alive, queries, depth)[slot_query]
    moved = _draw_unused(candidates, picks, counts, reserved=latents)
    return _place(acts, latents, moved)


class Cooccurring(Protocol):
    """What ``synthetic_cooccurrence`` reads of the pool
    (`synthact.method.cooccurrence.Cooccurrence`)."""

    def conditional(self, given: Tensor) -> Tensor:
        """``[len(given), d_sae]`` float64: ``P(j fires | given[r] fires)``, 1 at ``given[r]``."""
        ...


def _frequency_neighbours(freq: Tensor, pool: Tensor, queries: Tensor, n: int) -> Tensor:
    """The ``n`` latents of ``pool`` closest in frequency to each query, the query excluded.

    Ranking key: ``(|freq[j] - freq[q]|, j)``. Exact without a sort per query: the pool is sorted
    once by (frequency up, index up) and once by (frequency down, index up); the first ``n + 1``
    latents at or above the query's frequency in the first order, and the first ``n`` strictly
    below it in the second, are each already in key order and together hold the answer. (This
    assumes distinct frequencies keep distinct float64 distances to the query, which holds for
    frequencies above ~1e-9 read from a float32 log-sparsity; equal frequencies are exact ties.)

    Args:
        freq: ``[d_sae]`` float64 linear frequencies.
        pool: ``[P]`` eligible latent ids in increasing order.
        queries: ``[Q]`` latent ids.
        n: neighbours wanted per query.

    Returns:
        ``[Q, n]`` latent ids, nearest first.
    """
    pool_freq = freq[pool]
    up = pool_freq.sort(stable=True).indices
    down = pool_freq.sort(descending=True, stable=True).indices
    query_freq = freq[queries]
    at_or_above = torch.searchsorted(pool_freq[up], query_freq, side="left")
    below = torch.searchsorted(-pool_freq[down], -query_freq, side="right")
    position = torch.cat(
        [
            at_or_above[:, None] + torch.arange(n + 1, device=pool.device),
            below[:, None] + torch.arange(n, device=pool.device),
        ],
        dim=1,
    )
    in_pool = position < len(pool)
    position = position.clamp(max=len(pool) - 1)
    half = n + 1
    ids = torch.cat([pool[up][position[:, :half]], pool[down][position[:, half:]]], dim=1)
    distance = (freq[ids] - query_freq[:, None]).abs()
    distance = distance.masked_fill(~in_pool | (ids == queries[:, None]), math.inf)
    by_index = ids.argsort(dim=1)
    ids, distance = ids.gather(1, by_index), distance.gather(1, by_index)
    by_distance = distance.argsort(dim=1, stable=True)[:, :n]
    if not distance.gather(1, by_distance).isfinite().all():
        raise ValueError(
            f"not enough latents to rank: {n} neighbours are needed but the pool holds only "
            f"{len(pool)} latents (lower n_candidates / k, or use a larger SAE)"
        )
    return ids.gather(1, by_distance)


def _active_latents(acts: Tensor) -> tuple[Tensor, Tensor]:
    """``acts [B, d_sae]`` -> (actives ``[B, n_max]`` ascending, -1 padded; ``counts [B]``)."""
    row, col = (acts > 0).nonzero(as_tuple=True)  # row-major: columns ascend within a row
    counts = torch.bincount(row, minlength=acts.shape[0])
    n_max = int(counts.max()) if len(counts) else 0
    slot = torch.arange(len(row), device=acts.device) - (counts.cumsum(0) - counts)[row]
    latents = torch.full((acts.shape[0], n_max), -1, dtype=torch.long, device=acts.device)
    latents[row, slot] = col
    return latents, counts


def _move_in_place(acts: Tensor, latents: Tensor, moved: Tensor) -> Tensor:
    """The authors' loop, in place on ``z = acts``: for each row and slot ``t`` in order,
    ``v = z[latents[t]]; z[latents[t]] = 0; z[moved[t]] = v``.

    A destination that holds a value (an active latent not yet visited, or an earlier destination)
    is overwritten and that value is lost; a latent visited after its value was overwritten moves
    the value it holds then. ``latents``, ``moved``: ``[B, n_max]``, -1 padded alike.
    """
    out = acts.clone()
    rows = torch.arange(len(acts), device=acts.device)
    for t in range(latents.shape[1]):
        live = latents[:, t] >= 0
        row, source, destination = rows[live], latents[live, t], moved[live, t]
        value = out[row, source]
        out[row, source] = 0
        out[row, destination] = value
    return out


def _place(acts: Tensor, latents: Tensor, moved: Tensor) -> Tensor:
    """``out[b, moved[b, s]] = acts[b, latents[b, s]]`` for every active slot; zero elsewhere."""
    out = torch.zeros_like(acts)
    row = torch.arange(acts.shape[0], device=acts.device)[:, None].expand_as(latents)
    slot = latents >= 0
    out[row[slot], moved[slot]] = acts[row[slot], latents[slot]]
    return out


def _frequencies(log_sparsity: Tensor) -> Tensor:
    """Linear firing frequencies ``10 ** log_sparsity`` in float64."""
    return 10.0 ** log_sparsity.double()


def _check_acts(acts: Tensor) -> None:
    if not isinstance(acts, Tensor):
        raise TypeError(f"acts must be a torch.Tensor [B, d_sae], got {type(acts).__name__}")
    if acts.ndim != 2:
        raise ValueError(
            f"acts must be [B, d_sae] latent activations, got shape {tuple(acts.shape)} "
            "(use acts[None] for a single vector)"
        )
    if not acts.is_floating_point():
        raise TypeError(f"acts must be floating point, got {acts.dtype}")
    if not acts.isfinite().all():
        raise ValueError("acts contains NaN or inf")
    if (acts < 0).any():
        raise ValueError("acts contains negative values; pass SAE latent activations (sae.encode)")


def _log_sparsity_on(log_sparsity: Tensor | None, acts: Tensor) -> Tensor:
    """``log_sparsity`` ``[d_sae]`` checked against ``acts [B, d_sae]``, on their device."""
    return check_log_sparsity(log_sparsity, acts.shape[1]).detach().to(acts.device)


def _unit_decoder_rows(W_dec: Tensor, acts: Tensor) -> Tensor:
    """Validate ``W_dec [d_sae, d_model]``; return its rows at unit norm on ``acts``' device."""
    if not isinstance(W_dec, Tensor):
        raise TypeError(f"W_dec must be a torch.Tensor, got {type(W_dec).__name__}")
    d_sae = acts.shape[1]
    if W_dec.ndim != 2 or W_dec.shape[0] != d_sae:
        raise ValueError(
            f"W_dec must be [d_sae={d_sae}, d_model] (sae.W_dec), got {tuple(W_dec.shape)}"
        )
    W_dec = W_dec.detach().to(acts.device)
    if W_dec.dtype != torch.float64:
        W_dec = W_dec.float()
    if not W_dec.isfinite().all():
        raise ValueError("W_dec contains NaN or inf")
    norms = W_dec.norm(dim=1, keepdim=True)
    if (norms == 0).any():
        zero = (norms[:, 0] == 0).nonzero().squeeze(1)[:5].tolist()
        raise ValueError(f"W_dec has zero rows (e.g. latents {zero}); their cosine is undefined")
    return W_dec / norms


def _randint(high: int, shape: tuple[int, ...], generator: torch.Generator, device) -> Tensor:
    """Uniform ints in ``[0, high)`` drawn on the generator's device, moved to ``device``."""
    return torch.randint(high, shape, generator=generator, device=generator.device).to(device)
