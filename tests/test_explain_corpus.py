"""Every log of the fixture corpus (fixtures/logs) gets its expected verdict from `explain`."""
from __future__ import annotations

import pytest

from doctor.logs.corpus import load_cases, run_case

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_case(case):
    outcome = run_case(case)
    assert outcome.ok, f"{case.id}: " + "; ".join(outcome.problems) + (f" ({case.note})" if case.note else "")


def test_corpus_metadata_is_complete():
    assert CASES, "the corpus is empty"
    for case in CASES:
        assert case.source in ("real", "issue", "reproduced")
        assert case.log.stat().st_size > 0
