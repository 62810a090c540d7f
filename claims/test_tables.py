"""Quantitative checks: our mean, std and KS of each paper table row, within a tolerance from n.

Asserted on gpt2-small only (claims/expectations.toml): the numbers are GPT-2's.
"""

import allure
import pytest

from synthact import report

CASES = [
    (table, mode)
    for table, spec in report.paper_numbers()["tables"].items()
    for mode in spec["rows"]
]


@pytest.mark.claim("tables")
@pytest.mark.parametrize(("table", "mode"), CASES, ids=[f"{t}-{m}" for t, m in CASES])
def test_table_matches_paper(table, mode, lab, evidence):
    """Each row's mean, std and KS agree with the paper's within 3 standard errors.

    Tolerances come from both sample sizes (`synthact.stats.row_tolerances`).
    """
    spec = report.paper_numbers()["tables"][table]
    paper = report.paper_rows(table, mode)
    steps = evidence.distributions(
        lab.result(spec["experiment"], mode),
        list(paper),
        metric=spec["metric"],
        signal=spec["signal"],
        table=table,
    )
    rows = report.agreement(steps, paper)
    allure.attach(
        report.agreement_markdown(rows),
        f"table {table} ({mode}): ours vs paper",
        allure.attachment_type.TEXT,
    )
    misses = [str(r) for r in rows if not r.ok]
    assert not misses, f"table {table} ({mode}) differs from the paper:\n" + "\n".join(misses)
