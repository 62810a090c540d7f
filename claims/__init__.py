"""The paper's claims as tests, one module per claim; installed as ``synthact.claims`` (run them
anywhere with ``pytest --pyargs synthact.claims`` or ``synthact replicate``)."""
