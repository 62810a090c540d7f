"""Hypotheses on hand-made samples: what each asserts, and what shows its effect absent."""

from __future__ import annotations

import numpy as np
import pytest

from synthact.judge.hypotheses import C16_MARGIN, c16_few_latents_carry_blowups


def _shares(mean: float, n: int = 100, seed: int = 0) -> np.ndarray:
    """``[n]`` shares around ``mean`` (a row's blowup share is >= 0)."""
    return np.random.default_rng(seed).uniform(0.5, 1.5, n) * mean


def test_c16_holds_when_the_top_latents_carry_more_than_random_ones_by_the_margin():
    found = c16_few_latents_carry_blowups(_shares(0.5), _shares(0.3, seed=1))
    assert found.holds and not all(c.passed for c in found.absent)


def test_c16_does_not_hold_when_random_latents_carry_as_much_as_the_top_ones():
    """Every latent carrying an equal part: a large share for the top 3 is not few latents."""
    top = _shares(0.6)
    found = c16_few_latents_carry_blowups(top, top - 0.01)
    assert found.checks[0].estimate == pytest.approx(0.01)
    assert not found.holds


def test_c16_is_shown_absent_when_no_removal_blows_the_output_up():
    """Differences 0 on all rows but one: the top shares, not the difference, show absence."""
    top = _shares(1e-6)
    random = top.copy()
    random[0] = 0.0
    found = c16_few_latents_carry_blowups(top, random)
    assert not found.holds and all(c.passed for c in found.absent)
    assert found.absent[0].bound < C16_MARGIN


def test_c16_needs_paired_shares():
    with pytest.raises(ValueError, match="one shape"):
        c16_few_latents_carry_blowups(np.zeros(5), np.zeros(4))
