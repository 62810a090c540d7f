"""Wall times of the stages of a run (loading, pool, Gaussian fit, each target type, each
experiment), nested as they ran."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One timed stage: its name, wall seconds and nesting depth."""

    name: str
    seconds: float
    depth: int


class StageClock:
    """Records `Stage`s, each listed before the stages nested in it; ``finished`` is called with
    each stage that ends without an error (a failed one is recorded, not reported done)."""

    def __init__(self, finished: Callable[[Stage], None] | None = None) -> None:
        self.stages: list[Stage] = []
        self.finished = finished
        self._depth = 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the enclosed block as stage ``name`` (its entry placed when it starts)."""
        stages, depth = self.stages, self._depth
        index = len(stages)
        stages.append(Stage(name, float("nan"), depth))
        start, self._depth = time.perf_counter(), depth + 1
        try:
            yield
        finally:
            self._depth = depth
            stages[index] = Stage(name, time.perf_counter() - start, depth)
        if self.finished is not None:
            self.finished(stages[index])

    def pop(self) -> list[Stage]:
        """The stages recorded since the last call (and forget them)."""
        stages, self.stages = self.stages, []
        return stages


def stage_table(stages: list[Stage]) -> str:
    """The stages as an aligned text table, nested stages indented under their parent."""
    if not stages:
        return "no stage computed (every result came from the cache)\n"
    width = max(2 * s.depth + len(s.name) for s in stages)
    lines = [f"{'  ' * s.depth + s.name:<{width}}  {s.seconds:8.2f} s" for s in stages]
    return "\n".join(lines) + "\n"
