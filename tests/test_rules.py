"""Every rule loads, follows the schema conventions, and passes its own fires/quiet cases."""
from __future__ import annotations

import pytest
import yaml

from doctor import selftest
from doctor.i18n import LANGS
from doctor.ruleset import load_rules, rule_files

from conftest import REPO, SHARED

RULES = load_rules()
CASES = [(rule, kind, i, case) for rule in RULES.rules for kind in ("fires", "quiet")
         for i, case in enumerate(rule.tests.get(kind, []))]


@pytest.mark.parametrize("rule,kind,index,case", CASES, ids=[f"{r.id}-{k}-{i}" for r, k, i, _ in CASES])
def test_rule_case(rule, kind, index, case):
    result = selftest.run_case(rule, case, kind, index)
    assert result.ok, f"{rule.id} {kind}[{index}] {result.state}: {result.detail} ({case.get('note', '')})"


@pytest.mark.parametrize("rule", RULES.rules, ids=[r.id for r in RULES.rules])
def test_rule_has_positive_and_near_miss_cases(rule):
    assert rule.tests.get("fires"), f"{rule.id} needs at least one `fires` case"
    assert rule.tests.get("quiet"), f"{rule.id} needs at least one `quiet` (near-miss) case"


@pytest.mark.parametrize("rule", RULES.rules, ids=[r.id for r in RULES.rules])
def test_rule_speaks_every_language(rule):
    texts = {"title": rule.title, "explanation": rule.explanation}
    texts.update({f"docs.{k}": v for k, v in rule.docs.items()})
    texts.update({f"fixes[{i}].summary": f.summary for i, f in enumerate(rule.fixes)})
    missing = {where: t.missing_langs() for where, t in texts.items() if t.missing_langs()}
    assert not missing, f"{rule.id} lacks languages {missing} (need {LANGS})"


def test_rule_files_are_all_loaded():
    assert len(rule_files()) == len(RULES.rules)


def test_taxonomy_matches_the_brief():
    shared = SHARED / "taxonomy.yaml"
    if not shared.is_file():
        pytest.skip("shared/taxonomy.yaml not available outside the workspace")
    ours = yaml.safe_load((REPO / "rules" / "taxonomy.yaml").read_text())["categories"]
    theirs = yaml.safe_load(shared.read_text())["categories"]
    assert set(theirs) <= set(ours)
