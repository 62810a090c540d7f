"""Progress of a run: on a terminal a bar per experiment (rows done of types × rows, rate, ETA);
elsewhere (a CI log, a pytest-xdist worker) one line per finished stage."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm.auto import tqdm

from synthact.core.stages import Stage

MODES = ("bars", "lines", "off")

BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} rows [{elapsed}<{remaining}, {rate_fmt}]"
)


class Progress:
    """Reports the progress of one subject's computations on ``stream`` (default stderr).

    ``mode``: ``bars``, ``lines`` or ``off`` (None: bars when ``stream`` is a terminal, else lines).
    A task's bar counts rows of ``scale`` units each (a path of ``n_steps`` points is one row).
    """

    def __init__(self, label: str, stream: TextIO | None = None, mode: str | None = None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.mode = mode or ("bars" if self.stream.isatty() else "lines")
        if self.mode not in MODES:
            raise ValueError(f"progress mode must be one of {MODES}, got {self.mode!r}")
        self._counters: dict[str, Counter] = {}

    def counter(self, task: str, total: int, scale: int = 1) -> Counter | None:
        """With bars: the `Counter` of ``task``'s bar, ``total`` rows of ``scale`` units each
        (one per task, however often asked). Otherwise None."""
        if self.mode != "bars":
            return None
        if task not in self._counters:
            self._counters[task] = Counter(f"{self.label}: {task}", total, scale, self.stream)
        return self._counters[task]

    def close(self) -> None:
        """Close every bar, full or not (a run that reads some of an experiment's types leaves
        its bar part full)."""
        for counter in self._counters.values():
            counter.close()

    def finished(self, stage: Stage) -> None:
        """With lines: one line saying that ``stage`` finished, and in how long."""
        if self.mode == "lines":
            line = f"synthact {self.label}: {stage.name} done in {stage.seconds:.1f} s\n"
            self.stream.write(line)
            self.stream.flush()


class Counter:
    """A bar of ``total`` rows (``scale`` units each), shown from the first unit done and closed
    when every row is done or skipped."""

    def __init__(self, desc: str, total: int, scale: int, stream: TextIO):
        self.desc, self.total, self.scale, self.stream = desc, total * scale, scale, stream
        self.bar: tqdm | None = None

    def __call__(self, units: int) -> None:
        """``units`` more done."""
        if self.bar is None:
            self.bar = tqdm(
                total=self.total,
                desc=self.desc,
                unit_scale=1 / self.scale,
                unit="row",
                bar_format=BAR_FORMAT,
                file=self.stream,
                dynamic_ncols=True,
            )
        self.bar.update(units)
        self._close_when_done()

    def skip(self, units: int) -> None:
        """``units`` not to be done here (read from the cache): the total shrinks."""
        self.total -= units
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()
            self._close_when_done()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _close_when_done(self) -> None:
        if self.bar is not None and self.bar.n >= self.total:
            self.close()
