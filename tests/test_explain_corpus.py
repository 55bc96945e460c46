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


def test_corpus_covers_every_taxonomy_category_a_log_can_show():
    """The acceptance floor of the explain issue (80 logs, 30 categories), and more: every category
    of the taxonomy has at least one log whose top finding it is — except benign_warning, which by
    design is never the top finding (its fixtures assert it under `benign:` instead)."""
    from doctor import yamlio
    from doctor.paths import rules_dir
    taxonomy = set(yamlio.load(rules_dir() / "taxonomy.yaml")["categories"])
    logs = {c.log for c in CASES}
    covered = {c.expect["category"] for c in CASES}
    benign = {r for c in CASES for r in c.expect.get("benign", [])}
    assert len(logs) >= 80
    assert len(covered & taxonomy) >= 30
    assert taxonomy - covered == {"benign_warning"}
    assert benign, "no fixture asserts a harmless warning"
