"""Maintainers' tools that are not part of the installed library (the power table's simulation)."""
