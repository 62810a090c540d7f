"""The named choices of a run, shared by the option declarations and the code that reads them."""

GRIDS = {"code": 100, "text": 101}
"""Points per curve over the 100 nominal steps: ``code`` (the authors' ``linspace(0, 100, 100)``,
points 100/99 of a step apart) or ``text`` (the paper's steps 0..100)."""
NOMINAL_STEPS = 100
LATENT_MOVES = ("in-place", "distinct")
"""How synthetic-random and synthetic-baseline move latents: in place as the authors' code (values
can be lost), or to distinct latents as the paper's text."""
PROMPT_LEN = 10
"""Tokens per prompt (the paper's); the perturbed position is the last one."""
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPE_NAMES = ("float32", "float64", "float16", "bfloat16")
REAL_CURVES = ("auto", "rounded", "full")
"""Relative-mode real-target L2 and KL curves: ``rounded`` to `AUTHORS_DECIMALS` as the authors
read them back from their observation files (Tables A.1, B.1, B.2 and C.1's real rows), or ``full``
precision like every other type; ``auto``: rounded on `PAPER_SUBJECT` only (4 decimals are the
paper's scale; on a subject of small activations they would flatten the curves)."""
PAPER_SUBJECT = "gpt2-small"
AUTHORS_DECIMALS = 4
