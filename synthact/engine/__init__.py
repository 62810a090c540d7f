"""The perturbation engine."""
