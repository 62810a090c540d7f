"""The paper's reported numbers (``synthact/data/paper_numbers.json``): its tables' rows, the
scale facts, the AP values of the authors' repository; what the hypotheses' margins, the power
simulation and the table checks compare with."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def paper_numbers() -> dict:
    """The paper's reported numbers (synthact/data/paper_numbers.json)."""
    text = resources.files("synthact").joinpath("data/paper_numbers.json").read_text()
    return json.loads(text)


def paper_rows(table: str, mode: str) -> dict[str, list[float | None]]:
    """``{type: [mean, std, ks]}`` of one paper table in one step mode (empty if not reported)."""
    return paper_numbers()["tables"][table]["rows"].get(mode, {})
