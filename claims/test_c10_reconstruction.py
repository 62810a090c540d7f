"""C10: SAE reconstructions of real targets behave like them, blowing up slightly later."""

import pytest

from synthact import checks


@pytest.mark.claim("C10")
def test_c10_reconstruction_like_real(reconstruction, evidence):
    """Towards SAE(T) instead of T: nearly the same MS distribution (absolute KS < 0.05), later.

    Table D.1: KS 0.02 and mean 41.49 vs 41.11 (absolute); KS 0.11 and 53.34 vs 51.60 (relative).
    Reconstructions share base prompts with the real targets, so rows are paired.
    """
    kinds = ["real", "random", "reconstruction"]
    steps = evidence.distributions(reconstruction, kinds, table="D.1")
    found = [checks.earlier(steps, "real", "reconstruction")]
    if reconstruction.mode == "absolute":
        found.append(checks.ks_below(steps, "reconstruction", "real", 0.05))
    evidence.verdict(*found)
