"""Every real failure log of the GPU lab (fixtures/lab/failures/records.jsonl) gets its recorded category.

The lab ran real lmdeploy 0.18.0 launches on an H100 and recorded, for each failure, the category a
person assigned. `lmdoctor explain --no-facts --json` (a real child process, the log alone) must name
that category as its top finding.
"""
from __future__ import annotations

import json

import pytest

from conftest import REPO, lmdoctor

# every failure scenario's records (failures, failures-2, ...)
RECORDS = [json.loads(line) for path in sorted((REPO / "fixtures" / "lab").glob("failures*/records.jsonl"))
           for line in path.read_text().splitlines() if line.strip()]


def _param(record):
    return pytest.param(record, id=record["id"])


def test_records_point_at_their_logs():
    assert len(RECORDS) >= 19
    for record in RECORDS:
        assert (REPO / record["log"]).is_file(), record["id"]
        assert record["category"], record["id"]


@pytest.mark.parametrize("record", [_param(r) for r in RECORDS])
def test_lab_failure_gets_its_category(record):
    run = lmdoctor("explain", "--no-facts", "--json", str(REPO / record["log"]))
    doc = run.json()
    findings = [f for f in doc["findings"] if f["severity"] in ("error", "warning")]
    assert findings, f"{record['id']}: no finding (exit {run.code}); expected {record['category']}"
    top = findings[0]
    assert top["category"] == record["category"], (
        f"{record['id']}: top finding {top['rule']} ({top['category']}), expected {record['category']}")
    assert run.code == 1
