"""Registries: the one table of each kind of extension (subjects, subject prefixes, experiments).

An entry is a frozen dataclass with a ``name``; what reads a registry (fixtures, the CLI, listings,
xdist groups) iterates it, so adding an entry is one `Registry.register` line beside its code.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(dict[str, T]):
    """Entries of one kind by name, in the order they were registered."""

    def __init__(self, kind: str, entries: Iterable[T] = ()):
        super().__init__()
        self.kind = kind
        for entry in entries:
            self.register(entry)

    def register(self, entry: T) -> T:
        """Add ``entry`` under its name (ValueError if the name is taken); returns it."""
        if entry.name in self:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice")
        self[entry.name] = entry
        return entry

    def lookup(self, name: str) -> T:
        """The entry called ``name``; ValueError naming the close and the known names if none."""
        if name not in self:
            nearby = difflib.get_close_matches(name, list(self), n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(nearby)}? " if nearby else ""
            raise ValueError(f"unknown {self.kind} {name!r}; {hint}known: {', '.join(self)}")
        return self[name]
