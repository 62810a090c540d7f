"""Unit tests of synthact.method.synthetic against hand-built cases and plain brute-force
references."""

from __future__ import annotations

import math
import time

import pytest
import torch

from synthact.method.synthetic import (
    _frequency_neighbours,
    synthetic_baseline,
    synthetic_frequency,
    synthetic_random,
    synthetic_structured,
)

DEAD = -10.0


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def log10_of(freqs: list[float]) -> torch.Tensor:
    """Log-sparsity of the given linear frequencies (0 -> dead, -10)."""
    return torch.tensor([math.log10(f) if f > 0 else DEAD for f in freqs], dtype=torch.float32)


def random_problem(seed: int, n_rows: int = 12, d_sae: int = 48, d_model: int = 5):
    """Random small inputs: frequency ties (few distinct counts), dead latents, one empty row.

    Returns acts [n_rows, d_sae] with distinct positive values, log_sparsity [d_sae],
    W_dec [d_sae, d_model] float64.
    """
    g = seeded(seed)
    counts = torch.randint(0, 6, (d_sae,), generator=g).double()
    log_sparsity = torch.where(counts > 0, torch.log10(counts / 1000), DEAD).float()
    active = torch.rand(n_rows, d_sae, generator=g) < 6 / d_sae
    active[0] = False
    active[1, :3] = True  # at least one non-empty row
    acts = torch.where(active, torch.rand(n_rows, d_sae, generator=g) + 0.1, 0.0)
    W_dec = torch.randn(d_sae, d_model, generator=g, dtype=torch.float64)
    return acts, log_sparsity, W_dec


def nonzero_values(row: torch.Tensor) -> list[float]:
    return sorted(row[row != 0].tolist())


def moves(acts_row: torch.Tensor, out_row: torch.Tensor) -> list[tuple[int, int]]:
    """(base latent, chosen latent) pairs in base index order, matched by (distinct) value."""
    chosen = {value: j for j, value in enumerate(out_row.tolist()) if value != 0}
    return [(i, chosen[v]) for i, v in enumerate(acts_row.tolist()) if v != 0]


def frequency_ranking(freq: list[float], of: int, among: list[int]) -> list[int]:
    """`among` sorted by (|f_j - f_of|, j): the plain reference of "most similar sparsity"."""
    return sorted(among, key=lambda j: (abs(freq[j] - freq[of]), j))


def structured_reference(
    acts, log_sparsity, W_dec, cos_target, n_candidates, match_top_cos, exclude_dead, reserve
):
    """Brute force of synthetic_structured: per row, per latent, full scans and sorts."""
    d_sae = acts.shape[1]
    freq = (10.0 ** log_sparsity.double()).tolist()
    unit = W_dec / W_dec.norm(dim=1, keepdim=True)

    def cos(a: int, b: int) -> float:
        return 1.0 if a == b else float(unit[a] @ unit[b])

    out = torch.zeros_like(acts)
    for b in range(acts.shape[0]):
        active = [i for i in range(d_sae) if acts[b, i] > 0]
        if not active:
            continue
        top = max(active, key=lambda i: (float(acts[b, i]), -i))
        pool = [
            j for j in range(d_sae) if j != top and (not exclude_dead or log_sparsity[j] > DEAD)
        ]
        candidates = frequency_ranking(freq, top, pool)[:n_candidates]
        if match_top_cos:
            top_synth = min(candidates, key=lambda j: abs(cos(top, j) - cos_target))
        else:
            top_synth = candidates[0]
        used = {top_synth} if reserve else set()
        for i in active:
            if reserve and i == top:
                j = top_synth
            else:
                unused = [j for j in range(d_sae) if j not in used]
                j = min(unused, key=lambda j: (abs(cos(top_synth, j) - cos(top, i)), j))
            used.add(j)
            out[b, j] = acts[b, i]
    return out


# --- the frequency ranking ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [1, 3, 8, None])
def test_frequency_neighbours_equal_full_sort(seed, n):
    g = seeded(seed)
    d_sae = 40
    # few distinct values -> tie groups larger than n; dyadic steps -> exact equal distances on
    # both sides of a query
    freq = torch.randint(0, 8, (d_sae,), generator=g).double() / 8
    in_pool = torch.rand(d_sae, generator=g) < 0.7 if seed % 2 else torch.ones(d_sae, dtype=bool)
    pool = in_pool.nonzero().squeeze(1)
    queries = torch.arange(d_sae)  # latents outside the pool too
    n = len(pool) - 1 if n is None else n
    fast = _frequency_neighbours(freq, pool, queries, n)
    for q in queries.tolist():
        expected = frequency_ranking(freq.tolist(), q, [j for j in pool.tolist() if j != q])
        assert fast[q].tolist() == expected[:n]


def test_frequency_neighbours_too_few_latents_is_an_error():
    freq = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    with pytest.raises(ValueError, match="not enough latents"):
        _frequency_neighbours(freq, torch.arange(3), torch.tensor([0]), 3)


# --- properties shared by the three constructions ----------------------------------------------


def construct(kind: str, acts, log_sparsity, W_dec, seed: int):
    """``random`` and ``baseline``: the authors' in-place code; ``*-text``: the paper's text."""
    if kind.startswith("random"):
        return synthetic_random(acts, log_sparsity, seeded(seed), distinct=kind.endswith("text"))
    if kind.startswith("baseline"):
        text = kind.endswith("text")
        return synthetic_baseline(acts, log_sparsity, seeded(seed), k=3, skip_chosen=text)
    if kind == "frequency":
        return synthetic_frequency(acts, log_sparsity, seeded(seed), n_candidates=5, k=3)
    return synthetic_structured(acts, log_sparsity, W_dec, seeded(seed), n_candidates=5)


KINDS = ["random", "baseline", "structured", "frequency"]
DISTINCT_KINDS = ["random-text", "baseline-text", "structured", "frequency"]
"""Constructions that choose distinct latents, so no value is ever lost."""


def is_sub_multiset(part: list[float], whole: list[float]) -> bool:
    rest = list(whole)
    for value in part:
        if value not in rest:
            return False
        rest.remove(value)
    return True


@pytest.mark.parametrize("kind", DISTINCT_KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_values_and_counts_preserved(kind, seed):
    acts, log_sparsity, W_dec = random_problem(seed)
    out = construct(kind, acts, log_sparsity, W_dec, seed)
    assert out.shape == acts.shape and out.dtype == acts.dtype
    for a, o in zip(acts, out, strict=True):
        assert nonzero_values(o) == nonzero_values(a)
    assert (out[0] == 0).all()  # a row without active latents stays all-zero


@pytest.mark.parametrize("kind", ["random", "baseline"])
@pytest.mark.parametrize("seed", range(3))
def test_in_place_moves_keep_a_subset_of_the_values(kind, seed):
    acts, log_sparsity, W_dec = random_problem(seed, n_rows=40, d_sae=12)  # crowded: collisions
    out = construct(kind, acts, log_sparsity, W_dec, seed)
    assert out.shape == acts.shape and out.dtype == acts.dtype
    lost = 0
    for a, o in zip(acts, out, strict=True):
        assert is_sub_multiset(nonzero_values(o), nonzero_values(a))
        lost += len(nonzero_values(a)) - len(nonzero_values(o))
    assert lost > 0  # the code's in-place moves do lose values when latents collide
    assert (out[0] == 0).all()


@pytest.mark.parametrize("kind", KINDS + DISTINCT_KINDS[:2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtype_kept_and_values_exact(kind, dtype):
    acts, log_sparsity, W_dec = random_problem(7)
    acts = acts.to(dtype)
    out = construct(kind, acts, log_sparsity, W_dec, 0)
    assert out.dtype == dtype
    for a, o in zip(acts, out, strict=True):
        assert is_sub_multiset(nonzero_values(o), nonzero_values(a))


@pytest.mark.parametrize("kind", ["random", "baseline", "frequency"])
def test_same_seed_same_output_other_seed_other_output(kind):
    acts, log_sparsity, W_dec = random_problem(3, n_rows=40)
    first = construct(kind, acts, log_sparsity, W_dec, 11)
    assert torch.equal(first, construct(kind, acts, log_sparsity, W_dec, 11))
    assert not torch.equal(first, construct(kind, acts, log_sparsity, W_dec, 12))


def test_structured_draws_nothing_from_the_generator():
    acts, log_sparsity, W_dec = random_problem(4)
    generator = seeded(5)
    state = generator.get_state()
    first = synthetic_structured(acts, log_sparsity, W_dec, generator, n_candidates=5)
    assert torch.equal(generator.get_state(), state)
    again = synthetic_structured(acts, log_sparsity, W_dec, seeded(99), n_candidates=5)
    assert torch.equal(first, again)


# --- synthetic_random --------------------------------------------------------------------------


def test_random_text_never_dead_never_collides_and_covers_all_live_latents():
    d_sae = 30
    log_sparsity = torch.full((d_sae,), -3.0)
    dead = [0, 4, 5, 17, 29]
    log_sparsity[dead] = DEAD
    n_rows = 3000
    acts = torch.zeros(n_rows, d_sae)
    acts[:, [0, 9]] = torch.tensor([1.0, 2.0])  # two active latents, one of them dead
    out = synthetic_random(acts, log_sparsity, seeded(0), distinct=True)
    hits = (out != 0).sum(dim=0)
    assert (hits[dead] == 0).all()
    assert ((out != 0).sum(dim=1) == 2).all()  # distinct: no two values on one latent
    live = [j for j in range(d_sae) if j not in dead]
    # each live latent: Binomial(3000, 2/25), mean 240, sd ~15
    assert hits[live].min() > 150 and hits[live].max() < 330


def test_random_code_draws_with_replacement_in_place():
    # two active latents, both dead, two live latents: the second move lands on the first's
    # destination half of the time, overwriting it (value 1.0 lost, 2.0 kept)
    log_sparsity = torch.tensor([DEAD, DEAD, -2.0, -2.0])
    acts = torch.tensor([[1.0, 2.0, 0.0, 0.0]]).repeat(4000, 1)
    out = synthetic_random(acts, log_sparsity, seeded(0))
    assert (out[:, :2] == 0).all()
    one_value = (out != 0).sum(dim=1) == 1
    assert 0.46 < one_value.float().mean() < 0.54  # Binomial(4000, 1/2): sd 0.008
    assert (out[one_value].sum(dim=1) == 2.0).all()  # the later move wins


def test_random_code_hand_cases():
    only_live = torch.tensor([DEAD, DEAD, DEAD, -2.0])
    # every value moves to latent 3 in turn: 1.0 overwrites latent 3's own 3.0, 2.0 overwrites
    # the 1.0, and visiting latent 3 last moves the 2.0 it now holds onto itself
    out = synthetic_random(torch.tensor([[1.0, 2.0, 0.0, 3.0]]), only_live, seeded(0))
    assert out.tolist() == [[0.0, 0.0, 0.0, 2.0]]
    out = synthetic_random(torch.tensor([[0.0, 0.0, 0.0, 5.0]]), only_live, seeded(0))
    assert out.tolist() == [[0.0, 0.0, 0.0, 5.0]]  # a latent drawn onto itself keeps its value


def test_random_needs_live_latents():
    acts = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="non-dead"):
        synthetic_random(acts, torch.tensor([DEAD, DEAD, -2.0, -2.0]), seeded(0), distinct=True)
    with pytest.raises(ValueError, match="every latent is dead"):
        synthetic_random(acts, torch.full((4,), DEAD), seeded(0))


# --- synthetic_baseline ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 3, 10])
def test_baseline_text_stays_in_k_nearest_of_what_is_left(seed, k):
    acts, log_sparsity, _ = random_problem(seed, n_rows=10)
    out = synthetic_baseline(acts, log_sparsity, seeded(seed), k=k, skip_chosen=True)
    freq = (10.0 ** log_sparsity.double()).tolist()
    everyone = range(acts.shape[1])
    for a, o in zip(acts, out, strict=True):
        chosen: list[int] = []
        for i, j in moves(a, o):
            left = [m for m in everyone if m != i and m not in chosen]
            assert j in frequency_ranking(freq, i, left)[:k]
            chosen.append(j)


def baseline_in_place_reference(acts_row, freq):
    """The authors' loop with k = 1, transcribed: z in place, nearest latent other than i."""
    z = acts_row.clone()
    for i in [i for i in range(len(z)) if acts_row[i] > 0]:
        value = z[i].clone()
        j = frequency_ranking(freq, i, [m for m in range(len(z)) if m != i])[0]
        z[i] = 0
        z[j] = value
    return z


@pytest.mark.parametrize("seed", range(6))
def test_baseline_code_k1_equals_the_transcribed_loop(seed):
    acts, log_sparsity, _ = random_problem(seed, n_rows=20, d_sae=16)
    out = synthetic_baseline(acts, log_sparsity, seeded(seed), k=1)
    freq = (10.0 ** log_sparsity.double()).tolist()
    for a, o in zip(acts, out, strict=True):
        assert torch.equal(o, baseline_in_place_reference(a, freq))


@pytest.mark.parametrize("seed", range(4))
def test_baseline_code_picks_among_the_k_nearest(seed):
    acts, log_sparsity, _ = random_problem(seed, n_rows=30)
    out = synthetic_baseline(acts, log_sparsity, seeded(seed), k=3)
    freq = (10.0 ** log_sparsity.double()).tolist()
    everyone = range(acts.shape[1])
    for a, o in zip(acts, out, strict=True):
        allowed = {
            j
            for i in (a > 0).nonzero().flatten().tolist()
            for j in frequency_ranking(freq, i, [m for m in everyone if m != i])[:3]
        }
        assert set((o > 0).nonzero().flatten().tolist()) <= allowed


def test_baseline_k1_excludes_itself_and_may_pick_a_base_latent():
    # gaps between consecutive frequencies grow, so every nearest neighbour is unambiguous
    log_sparsity = log10_of([0.01, 0.02, 0.04, 0.07, 0.11, 0.16, 0.22])
    acts = torch.tensor([[0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0]])
    # latent 3 (0.07) -> 2 (0.04); latent 4 (0.11) -> 3 (0.07), an active base latent
    for skip_chosen in (False, True):
        out = synthetic_baseline(acts, log_sparsity, seeded(0), k=1, skip_chosen=skip_chosen)
        assert moves(acts[0], out[0]) == [(3, 2), (4, 3)]


def test_baseline_code_overwrites_a_latent_not_yet_visited():
    log_sparsity = log10_of([0.01, 0.02, 0.04, 0.10, 0.11, 0.16, 0.22])
    acts = torch.tensor([[0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0]])
    # code: 3 (0.10) -> 4 (0.11) overwrites 4's 2.0; then 4 moves the 1.0 it holds -> 3
    out = synthetic_baseline(acts, log_sparsity, seeded(0), k=1)
    assert out.tolist() == [[0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]]
    # text: 3 -> 4; 4 -> 3 (4 is taken by then), written into a zero vector
    out = synthetic_baseline(acts, log_sparsity, seeded(0), k=1, skip_chosen=True)
    assert out.tolist() == [[0.0, 0.0, 0.0, 2.0, 1.0, 0.0, 0.0]]


def test_baseline_frequency_ties_go_to_the_lower_index():
    log_sparsity = log10_of([0.05, 0.3, 0.05, 0.4, 0.5, 0.05])
    acts = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 2.0]])
    # text: 2 -> 0 (tie with 5, lower index); 5 -> 2 (0 is taken; tie of 0 and 2, lower free)
    out = synthetic_baseline(acts, log_sparsity, seeded(0), k=1, skip_chosen=True)
    assert moves(acts[0], out[0]) == [(2, 0), (5, 2)]
    # code: 2 -> 0, then 5 -> 0 as well (the tie's lower index), overwriting the 1.0
    out = synthetic_baseline(acts, log_sparsity, seeded(0), k=1)
    assert out.tolist() == [[2.0, 0.0, 0.0, 0.0, 0.0, 0.0]]


def test_baseline_does_not_exclude_dead_latents():
    log_sparsity = log10_of([0.0, 0.2, 1e-9, 0.3, 0.0])
    acts = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0]])
    out = synthetic_baseline(acts, log_sparsity, seeded(0), k=1)
    assert moves(acts[0], out[0]) == [(2, 0)]  # dead latent 0 is the nearest


def test_baseline_is_uniform_over_the_k_nearest():
    k, n_rows = 10, 2000
    log_sparsity = log10_of([0.001 * (j + 1) ** 1.5 for j in range(40)])
    acts = torch.zeros(n_rows, 40)
    acts[:, 20] = 1.0
    out = synthetic_baseline(acts, log_sparsity, seeded(0), k=k)
    freq = (10.0 ** log_sparsity.double()).tolist()
    nearest = frequency_ranking(freq, 20, [j for j in range(40) if j != 20])[:k]
    hits = (out != 0).sum(dim=0)
    assert hits.sum() == n_rows and hits[nearest].sum() == n_rows
    # Binomial(2000, 0.1): mean 200, sd ~13
    assert hits[nearest].min() > 140 and hits[nearest].max() < 260


def test_baseline_k_too_large():
    acts, log_sparsity, _ = random_problem(0, d_sae=10)
    with pytest.raises(ValueError, match=r"k=.* too large"):
        synthetic_baseline(acts, log_sparsity, seeded(0), k=10)
    with pytest.raises(ValueError, match=r"k=.* too large"):
        synthetic_baseline(acts, log_sparsity, seeded(0), k=7, skip_chosen=True)


# --- synthetic_structured ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    ("match_top_cos", "exclude_dead", "reserve"),
    [(True, False, False), (False, False, False), (True, True, False), (True, False, True)],
)
def test_structured_equals_brute_force(seed, match_top_cos, exclude_dead, reserve):
    acts, log_sparsity, W_dec = random_problem(seed, n_rows=10)
    fast = synthetic_structured(
        acts,
        log_sparsity,
        W_dec,
        seeded(0),
        cos_target=0.42,
        n_candidates=7,
        match_top_cos=match_top_cos,
        exclude_dead_candidates=exclude_dead,
        reserve_top_synth=reserve,
    )
    expected = structured_reference(
        acts, log_sparsity, W_dec, 0.42, 7, match_top_cos, exclude_dead, reserve
    )
    assert torch.equal(fast, expected)


def unit_at_cos(cos: float, spin: float = 0.0) -> list[float]:
    """A unit vector in R^3 with the given cosine to e0 (the rest rotated by `spin`)."""
    rest = math.sqrt(1 - cos**2)
    return [cos, rest * math.cos(spin), rest * math.sin(spin)]


def top_synth_case():
    """Top = latent 0 (W_dec row e0). Latents 1-5: frequency neighbours of the top with cosines
    0.9, 0.45, 0.42, 0.40, -0.2; latent 6 (cos 0.42) and 7 are far in frequency."""
    freqs = [0.1, 0.11, 0.08, 0.13, 0.06, 0.15, 0.5, 0.9]
    cosines = [1.0, 0.9, 0.45, 0.42, 0.40, -0.2, 0.42, 0.0]
    W_dec = torch.tensor([unit_at_cos(c, spin=j) for j, c in enumerate(cosines)])
    return log10_of(freqs), W_dec


def test_structured_picks_the_candidate_at_cos_target():
    log_sparsity, W_dec = top_synth_case()
    acts = torch.zeros(1, 8)
    acts[0, 0] = 2.5
    out = synthetic_structured(acts, log_sparsity, W_dec, seeded(0), n_candidates=5)
    assert out[0].nonzero().squeeze(1).tolist() == [3]
    assert out[0, 3] == 2.5


def test_structured_without_cos_picks_the_frequency_nearest():
    log_sparsity, W_dec = top_synth_case()
    acts = torch.zeros(1, 8)
    acts[0, 0] = 2.5
    out = synthetic_structured(
        acts, log_sparsity, W_dec, seeded(0), n_candidates=5, match_top_cos=False
    )
    assert out[0].nonzero().squeeze(1).tolist() == [1]  # |0.11 - 0.1| is the smallest gap


@pytest.mark.parametrize("seed", range(4))
def test_structured_each_latent_gets_the_nearest_free_cosine(seed):
    acts, log_sparsity, W_dec = random_problem(seed, n_rows=10)
    # with the top's move reserved, the output reveals top_synth: where the top's value went
    out = synthetic_structured(
        acts, log_sparsity, W_dec, seeded(0), n_candidates=6, reserve_top_synth=True
    )
    unit = W_dec / W_dec.norm(dim=1, keepdim=True)
    gram = unit @ unit.T
    gram.fill_diagonal_(1.0)
    for a, o in zip(acts, out, strict=True):
        pairs = moves(a, o)
        if not pairs:
            continue
        top = int(a.argmax())
        top_synth = dict(pairs)[top]
        used = [top_synth]
        for i, j in pairs:
            if i == top:
                continue
            gap = (gram[top_synth] - gram[top, i]).abs()
            free = [m for m in range(len(gap)) if m not in used]
            assert gap[j] == gap[free].min()
            used.append(j)


def test_structured_top_synth_carries_the_top_value():
    acts, log_sparsity, W_dec = random_problem(1, n_rows=10)
    out = synthetic_structured(
        acts, log_sparsity, W_dec, seeded(0), n_candidates=5, match_top_cos=False
    )
    freq = (10.0 ** log_sparsity.double()).tolist()
    for a, o in zip(acts, out, strict=True):
        if (a > 0).any():
            top = int(a.argmax())
            nearest = frequency_ranking(freq, top, [j for j in range(len(a)) if j != top])[0]
            assert o[nearest] == a[top]


def steal_case():
    """Active latents 0 (value 1) and 5 (top, value 3). top_synth = 6, the frequency-nearest
    latent to 5. cos(5, 0) = 0.99 is nearest to cos(6, 6) = 1, so latent 0, visited first, takes
    latent 6 unless it is reserved for the top; the next best cosine with 6 is latent 1's 0.6."""
    freqs = [0.9, 0.8, 0.7, 0.6, 0.01, 0.1, 0.11, 0.3]
    W_dec = torch.tensor(
        [
            unit_at_cos(0.99),  # latent 0
            [0.0, 0.6, 0.8],
            [0.0, -0.6, 0.8],
            [0.0, 0.0, 1.0],
            [0.0, -1.0, 0.0],
            [1.0, 0.0, 0.0],  # latent 5, the top
            [0.0, 1.0, 0.0],  # latent 6, top_synth
            [0.0, 0.28, 0.96],
        ]
    )
    acts = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0]])
    return acts, log10_of(freqs), W_dec


@pytest.mark.parametrize(("reserve", "value_at_top_synth"), [(False, 1.0), (True, 3.0)])
def test_structured_reserve_top_synth(reserve, value_at_top_synth):
    acts, log_sparsity, W_dec = steal_case()
    out = synthetic_structured(
        acts,
        log_sparsity,
        W_dec,
        seeded(0),
        n_candidates=1,
        match_top_cos=False,
        reserve_top_synth=reserve,
    )
    assert out[0, 6] == value_at_top_synth
    assert out[0, 1] == 4.0 - value_at_top_synth


@pytest.mark.parametrize(("exclude_dead", "top_synth"), [(False, 0), (True, 3)])
def test_structured_exclude_dead_candidates(exclude_dead, top_synth):
    # the top (latent 2) is rare; the frequency-nearest latent is dead latent 0
    log_sparsity = log10_of([0.0, 0.5, 1e-9, 0.01, 0.0])
    W_dec = torch.eye(5)
    acts = torch.tensor([[0.0, 0.0, 4.0, 0.0, 0.0]])
    out = synthetic_structured(
        acts,
        log_sparsity,
        W_dec,
        seeded(0),
        n_candidates=1,
        match_top_cos=False,
        exclude_dead_candidates=exclude_dead,
    )
    assert out[0].nonzero().squeeze(1).tolist() == [top_synth]


def test_structured_top_ties_go_to_the_lower_index():
    log_sparsity, W_dec = top_synth_case()
    acts = torch.zeros(1, 8)
    acts[0, [4, 6]] = 2.0  # equal maxima: the top is latent 4 (frequency 0.06)
    out = synthetic_structured(
        acts, log_sparsity, W_dec, seeded(0), n_candidates=1, match_top_cos=False
    )
    # latent 4 is the top, so it moves to its frequency-nearest latent, 2 (latent 6's is 5)
    assert out[0, 2] == 2.0
    assert torch.equal(
        out, structured_reference(acts, log_sparsity, W_dec, 0.42, 1, False, False, False)
    )


# --- synthetic_frequency -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 3])
def test_frequency_stays_in_the_frequency_neighbourhoods(seed, k):
    """top -> one of the 5 latents nearest it in frequency; then every other latent, in index
    order, -> one of the k nearest it; among non-dead latents not active in the row nor taken."""
    acts, log_sparsity, _ = random_problem(seed, n_rows=10)
    out = synthetic_frequency(acts, log_sparsity, seeded(seed), n_candidates=5, k=k)
    freq = (10.0 ** log_sparsity.double()).tolist()
    alive = [j for j in range(acts.shape[1]) if log_sparsity[j] > DEAD]
    for a, o in zip(acts, out, strict=True):
        if not (a > 0).any():
            continue
        top = int(a.argmax())
        pairs = dict(moves(a, o))
        taken = (a > 0).nonzero().squeeze(1).tolist()
        for i, n in [(top, 5)] + [(i, k) for i in pairs if i != top]:
            left = [j for j in alive if j not in taken]
            assert pairs[i] in frequency_ranking(freq, i, left)[:n]
            taken.append(pairs[i])


def test_frequency_draws_uniformly_in_both_neighbourhoods():
    """Top 20 and latent 5, over 2000 rows: top_synth uniform over the 10 candidates, latent 5's
    destination uniform over its 3 nearest."""
    n_rows = 2000
    log_sparsity = log10_of([0.001 * (j + 1) ** 1.5 for j in range(40)])
    acts = torch.zeros(n_rows, 40)
    acts[:, 20], acts[:, 5] = 2.0, 1.0
    out = synthetic_frequency(acts, log_sparsity, seeded(0), n_candidates=10, k=3)
    freq = (10.0 ** log_sparsity.double()).tolist()
    others = [j for j in range(40) if j not in (5, 20)]
    candidates = frequency_ranking(freq, 20, others)[:10]
    nearest = frequency_ranking(freq, 5, others)[:3]
    top_hits = (out == 2.0).sum(dim=0)
    other_hits = (out == 1.0).sum(dim=0)
    assert top_hits[candidates].sum() == n_rows and other_hits[nearest].sum() == n_rows
    # Binomial(2000, 0.1): mean 200, sd ~13; Binomial(2000, 1/3): mean 667, sd ~21
    assert top_hits[candidates].min() > 140 and top_hits[candidates].max() < 260
    assert other_hits[nearest].min() > 580 and other_hits[nearest].max() < 760


def test_frequency_leaves_the_row_and_never_picks_a_dead_latent():
    """Latents 2 and 3 fire; nearest them in frequency are each other, then 1 and 5 (0 and 4
    are dead), so top 3 and latent 2 go to 1 and 5, whichever draws."""
    log_sparsity = log10_of([0.0, 0.2, 0.21, 0.22, 0.0, 0.3, 0.9, 1.0])
    acts = torch.tensor([[0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0]])
    for seed in range(20):
        out = synthetic_frequency(acts, log_sparsity, seeded(seed), n_candidates=2, k=1)
        assert out[0, 1] + out[0, 5] == 3.0


def test_frequency_too_few_live_latents_is_an_error():
    acts, log_sparsity, _ = random_problem(0)
    with pytest.raises(ValueError, match="not enough free latents"):
        synthetic_frequency(acts, log_sparsity, seeded(0), n_candidates=48)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_missing_sparsity_says_how_to_load_it(kind):
    acts, _, W_dec = random_problem(0)
    with pytest.raises(ValueError, match="from_pretrained_with_cfg_and_sparsity"):
        construct(kind, acts, None, W_dec, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_sparsity_of_wrong_length(kind):
    acts, log_sparsity, W_dec = random_problem(0)
    with pytest.raises(ValueError, match="log_sparsity has shape"):
        construct(kind, acts, log_sparsity[:-1], W_dec, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_nan_sparsity(kind):
    acts, log_sparsity, W_dec = random_problem(0)
    log_sparsity[3] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        construct(kind, acts, log_sparsity, W_dec, 0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (lambda a: torch.where(a > 0, math.nan, a), ValueError, "NaN"),
        (lambda a: -a, ValueError, "negative"),
        (lambda a: a[0], ValueError, r"\[B, d_sae\]"),
        (lambda a: (a > 0).long(), TypeError, "floating point"),
        (lambda a: a.tolist(), TypeError, "torch.Tensor"),
    ],
)
def test_bad_acts(kind, bad, error, message):
    acts, log_sparsity, W_dec = random_problem(0)
    with pytest.raises(error, match=message):
        construct(kind, bad(acts), log_sparsity, W_dec, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_generator_must_be_a_generator(kind):
    acts, log_sparsity, W_dec = random_problem(0)
    with pytest.raises(TypeError, match=r"torch\.Generator"):
        if kind == "structured":
            synthetic_structured(acts, log_sparsity, W_dec, 0)
        else:
            by_kind = {"random": synthetic_random, "baseline": synthetic_baseline}
            by_kind.get(kind, synthetic_frequency)(acts, log_sparsity, 0)


@pytest.mark.parametrize(
    "W_dec",
    [torch.randn(47, 5), torch.randn(48), torch.zeros(48, 5), torch.full((48, 5), math.nan)],
    ids=["d_sae", "1-D", "zero rows", "NaN"],
)
def test_bad_decoder(W_dec):
    acts, log_sparsity, _ = random_problem(0)
    with pytest.raises(ValueError, match="W_dec"):
        synthetic_structured(acts, log_sparsity, W_dec, seeded(0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cos_target": 1.5}, "cos_target"),
        ({"n_candidates": 0}, "n_candidates"),
        ({"n_candidates": 48}, "not enough latents"),
    ],
)
def test_bad_structured_options(kwargs, message):
    acts, log_sparsity, W_dec = random_problem(0)
    with pytest.raises(ValueError, match=message):
        synthetic_structured(acts, log_sparsity, W_dec, seeded(0), **kwargs)


@pytest.mark.parametrize(
    ("k", "error", "message"),
    [
        (0, ValueError, "k must be a positive int"),
        (2.5, TypeError, "k must be an int"),
        (True, TypeError, "k must be an int"),
    ],
)
def test_bad_k(k, error, message):
    acts, log_sparsity, _ = random_problem(0)
    with pytest.raises(error, match=message):
        synthetic_baseline(acts, log_sparsity, seeded(0), k=k)


# --- scale ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_gpt2_size_takes_seconds_and_keeps_the_invariants():
    """1000 rows, d_sae 24576, d_model 768, ~20 active latents per row, ~1 % dead latents.
    (About 0.4 s, 0.4 s and 2.2 s on one CPU thread; the bound only catches a blow-up.)"""
    g = seeded(0)
    d_sae, n_rows = 24576, 1000
    counts = (torch.randn(d_sae, generator=g) * 2 + 6).exp().floor()
    counts[torch.rand(d_sae, generator=g) < 0.01] = 0
    log_sparsity = torch.where(counts > 0, torch.log10(counts / 1e6), DEAD).float()
    W_dec = torch.randn(d_sae, 768, generator=g)
    active = torch.rand(n_rows, d_sae, generator=g) < 20 / d_sae
    acts = torch.where(active, torch.rand(n_rows, d_sae, generator=g) + 0.1, 0.0)
    n_max = int(active.sum(dim=1).max())
    constructions = {
        "random": lambda: synthetic_random(acts, log_sparsity, seeded(1), distinct=True),
        "baseline": lambda: synthetic_baseline(acts, log_sparsity, seeded(1), skip_chosen=True),
        "structured": lambda: synthetic_structured(acts, log_sparsity, W_dec, seeded(1)),
        "frequency": lambda: synthetic_frequency(acts, log_sparsity, seeded(1)),
    }
    outputs = {}
    for name, construction in constructions.items():
        start = time.perf_counter()
        outputs[name] = construction()
        elapsed = time.perf_counter() - start
        assert elapsed < 60, f"{name} took {elapsed:.1f} s for 1000 rows"
        # same multiset of values per row, hence also the same number of active latents
        assert torch.equal(outputs[name].topk(n_max).values, acts.topk(n_max).values), name
    assert (outputs["random"][:, counts == 0] == 0).all()
