"""The test of tables: its statement is `synthact.judge.claims`' record of it.

Asserted on gpt2-small only (claims/expectations.toml): the numbers are GPT-2's. A table is
compared only with a run of the variant that printed it (its ``run`` in paper_numbers.json).
"""

import allure
import pytest

from synthact.judge.claims import claim
from synthact.outputs import report

TABLES = claim("tables")

CASES = [
    (table, mode)
    for table, spec in report.paper_numbers()["tables"].items()
    for mode in spec["rows"]
]


@pytest.mark.claim(TABLES.id)
@pytest.mark.parametrize(("table", "mode"), CASES, ids=[f"{t}-{m}" for t, m in CASES])
def test_table_matches_paper(table, mode, lab, evidence):
    """Each row's mean, std and KS agree with the paper's within 3 standard errors.

    Tolerances come from both sample sizes (`synthact.judge.stats.row_tolerances`).
    """
    spec = report.paper_numbers()["tables"][table]
    mismatch = report.run_mismatch(table, lab.config)
    if mismatch:
        pytest.skip(mismatch)
    allure.dynamic.description(
        f"{test_table_matches_paper.__doc__}\n\nPaper numbers: {spec['provenance'][mode]}."
    )
    paper = report.paper_rows(table, mode)
    steps = evidence.distributions(
        report.table_result(lab, table, mode),
        list(paper),
        metric=spec["metric"],
        signal=spec["signal"],
        table=table,
    )
    evidence.table_verdict(report.agreement(steps, paper))
