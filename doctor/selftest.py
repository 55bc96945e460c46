"""Run each rule's own proof: its ``tests.fires`` cases must fire, its ``tests.quiet`` cases must not.

A case starts from a real fact snapshot in ``fixtures/facts/`` and changes only what the scenario
needs, so every case is a real machine plus one difference (ast-grep's vocabulary for the results:
*reported* / *missing* for fires cases, *validated* / *noisy* for quiet ones)::

    tests:
      fires:
        - snapshot: h100                     # fixtures/facts/h100.json (captured on a real H100)
          set: {pkg.lmdeploy.version: "0.5.1", pkg.torch.version: "2.4.0"}
          unset: [pkg.timm.version]           # known absent (not installed)
          unknown: {gpu.0.cc: "nvml timed out"}   # the probe failed
          cmd: "lmdeploy serve api_server /root/models/InternVL2-2B"
          lmdeploy_version: "0.5.1"           # flag table for cmd (default: pkg.lmdeploy.version)
          expect: {fix_command: "pip install"}  # substring of some fix's command
          note: why this case matters
      quiet: [...]

Log rules' cases (``log:`` / ``text:``) are run by the explain pipeline's harness.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from doctor import paths
from doctor.command import COMMAND_COVERED, Command, command_facts, parse_shell
from doctor.engine import FIRED, NOT_APPLICABLE, PASSED, build_finding, evaluate
from doctor.facts import FactSet, ProbeContext, collect, without_stage
from doctor.facts import snapshot as snapshot_io
from doctor.ruleset import Rule, RuleSet

CASE_KEYS = {"snapshot", "set", "unset", "unknown", "cmd", "lmdeploy_version", "expect", "note", "log", "text", "facts"}


def fixtures_dir() -> Path:
    return paths.rules_dir().parent / "fixtures"


@dataclass
class CaseResult:
    rule: str
    kind: str          # fires | quiet
    index: int
    state: str         # reported | missing | validated | noisy | error
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state in ("reported", "validated")


def load_snapshot(name: str) -> FactSet:
    path = fixtures_dir() / "facts" / f"{name}.json"
    with open(path, encoding="utf-8") as fh:
        return snapshot_io.from_json(json.load(fh), source=str(path))


def case_facts(case: Dict[str, Any]) -> Tuple[FactSet, Optional[Command]]:
    """Build the facts of a case: snapshot, overrides, planned command, then derived facts recomputed."""
    from doctor.gather import derived_stages
    base = load_snapshot(case["snapshot"]) if case.get("snapshot") else FactSet()
    for stage in derived_stages():
        base = without_stage(base, stage)
    if case.get("facts"):
        base = base.with_values(case["facts"])
    values = dict(base.values)
    values.update(case.get("set") or {})
    for name in case.get("unset") or []:
        values.pop(name, None)
    facts = FactSet(values, base.covered + list(case.get("set") or {}) + list(case.get("unset") or []),
                    {k: v for k, v in base.unknown.items()}, base.probes, source=f"case:{case.get('snapshot')}")
    facts.unknown.update(case.get("unknown") or {})
    for name in case.get("unknown") or {}:
        facts.values.pop(name, None)
    planned = None
    if case.get("cmd"):
        version = case.get("lmdeploy_version") or facts.value("pkg.lmdeploy.version")
        planned = parse_shell(case["cmd"], version=version)
    facts = facts.with_values(command_facts(planned) if planned else {}, covered=COMMAND_COVERED)
    ctx = ProbeContext(planned=planned, cwd=".", environ={})
    return collect(ctx, stages=derived_stages(), base=facts), planned


def run_case(rule: Rule, case: Dict[str, Any], kind: str, index: int) -> CaseResult:
    unknown_keys = set(case) - CASE_KEYS
    if unknown_keys:
        return CaseResult(rule.id, kind, index, "error", f"unknown case key(s) {sorted(unknown_keys)}")
    if rule.is_log_rule or "log" in case or "text" in case:
        from doctor.logs.selftest import run_log_case  # provided by the explain pipeline
        return run_log_case(rule, case, kind, index)
    try:
        facts, planned = case_facts(case)
    except (OSError, ValueError, KeyError) as exc:
        return CaseResult(rule.id, kind, index, "error", f"cannot build case: {exc}")
    outcome = evaluate(rule, facts)
    if kind == "fires":
        if outcome.status != FIRED:
            why = f"; unknown: {outcome.missing}" if outcome.missing else ""
            return CaseResult(rule.id, kind, index, "missing", f"status {outcome.status}{why}")
        expected = (case.get("expect") or {}).get("fix_command")
        if expected:
            finding = build_finding(rule, facts, planned)
            commands = [f.command or "" for f in finding.fixes]
            if not any(expected in c for c in commands):
                return CaseResult(rule.id, kind, index, "missing", f"no fix command contains {expected!r}: {commands}")
        return CaseResult(rule.id, kind, index, "reported")
    if outcome.status in (PASSED, NOT_APPLICABLE):
        return CaseResult(rule.id, kind, index, "validated")
    return CaseResult(rule.id, kind, index, "noisy", f"status {outcome.status} {outcome.missing or ''}".strip())


def run_rule(rule: Rule) -> List[CaseResult]:
    results = []
    for kind in ("fires", "quiet"):
        for i, case in enumerate(rule.tests.get(kind, [])):
            results.append(run_case(rule, case if isinstance(case, dict) else {}, kind, i))
    return results


def run_all(rules: RuleSet) -> List[CaseResult]:
    return [r for rule in rules.rules for r in run_rule(rule)]
