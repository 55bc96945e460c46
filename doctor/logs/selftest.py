"""Log rules' own cases: each ``tests.fires`` case must make the rule fire, each ``quiet`` case not.

A case gives the log as a fixture path or inline text, and optionally machine facts and a command::

    tests:
      fires:
        - log: logs/port_in_use/api-server-port-in-use.log   # under fixtures/
          expect: {top: true, fix_command: "--server-port", says: "23333"}
        - text: |                                           # inline log (small, message shape with a note)
            OSError: Cannot find empty port in range: 6006-6006.
          snapshot: h100                                    # machine facts: a real snapshot (+ set/unset/unknown)
          cmd: "lmdeploy serve gradio /root/models/x"       # explain --cmd
          note: why this case matters
      quiet:
        - text: ...                                         # the nearest log that must NOT fire this rule

Without ``snapshot``/``facts`` the log is read alone (``--no-facts``). The whole rule set runs, so
``top: true`` checks that this rule is the one explain puts first. ``says`` is a substring of the
finding's title, explanation, fixes or evidence; ``fix_command`` of one of its fix commands.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from doctor.ruleset import Rule
from doctor.selftest import CaseResult, fixtures_dir

EXPECT_KEYS = {"top", "says", "not_says", "fix_command", "captures"}


def _finding(findings: List[Any], rule_id: str) -> Optional[Any]:
    return next((f for f in findings if f.rule == rule_id), None)


def run_log_case(rule: Rule, case: Dict[str, Any], kind: str, index: int) -> CaseResult:
    from doctor.logs.pipeline import Options, run
    from doctor.logs.reader import LogInputError
    from doctor.ruleset import load_rules
    if rule.log is None:
        return CaseResult(rule.id, kind, index, "error", "log/text cases need a rule with a log: section")
    if ("log" in case) == ("text" in case):
        return CaseResult(rule.id, kind, index, "error", "a log case has exactly one of log: (fixture path) or text:")
    expect = case.get("expect") or {}
    if set(expect) - EXPECT_KEYS:
        return CaseResult(rule.id, kind, index, "error", f"unknown expect key(s) {sorted(set(expect) - EXPECT_KEYS)}")
    if "log" in case:
        path = fixtures_dir() / str(case["log"])
        if not path.is_file():
            return CaseResult(rule.id, kind, index, "error", f"fixture {case['log']} not found under fixtures/")
        data = path.read_bytes()
    else:
        data = str(case["text"]).encode("utf-8")
    facts = None
    if any(k in case for k in ("snapshot", "set", "unset", "unknown", "facts")):
        from doctor.selftest import case_facts
        spec = {k: v for k, v in case.items() if k in ("snapshot", "set", "unset", "unknown", "facts")}
        try:
            facts, _ = case_facts(spec)
        except (OSError, ValueError, KeyError) as exc:
            return CaseResult(rule.id, kind, index, "error", f"cannot build case facts: {exc}")
    rules = load_rules().log_rules()
    if rule not in rules:
        rules = [r for r in rules if r.id != rule.id] + [rule]
    try:
        result = run(Options(path=str(case.get("log", "<text>")), data=data, cmd=case.get("cmd"),
                             facts_mode="given" if facts is not None else "none", facts=facts,
                             show_all=True, rules=rules, workers=1))
    except LogInputError as exc:
        return CaseResult(rule.id, kind, index, "error", f"unreadable log: {exc}")
    findings = result.report.findings
    matched = rule.id in result.diagnosis.matches
    if kind == "quiet":
        if matched:
            return CaseResult(rule.id, kind, index, "noisy", f"fired on: {_where(result, rule.id)}")
        return CaseResult(rule.id, kind, index, "validated")
    if not matched:
        unchecked = [u for u in result.report.unchecked if u.rule == rule.id]
        why = f"; couldn't check: {unchecked[0].missing}" if unchecked else ""
        return CaseResult(rule.id, kind, index, "missing", f"did not fire{why}")
    finding = _finding(findings, rule.id)
    if expect.get("top") and (not findings or findings[0].rule != rule.id):
        top = findings[0].rule if findings else None
        return CaseResult(rule.id, kind, index, "missing", f"fired but {top} ranks first")
    if finding is None:
        if expect.get("says") or expect.get("fix_command"):
            return CaseResult(rule.id, kind, index, "missing", "fired but was superseded; cannot check says/fix_command")
        return CaseResult(rule.id, kind, index, "reported")
    text = "\n".join([finding.title, finding.explanation] + [f.summary for f in finding.fixes]
                     + [f.command or "" for f in finding.fixes] + [e.text for e in finding.evidence])
    says = expect.get("says")
    for s in [says] if isinstance(says, str) else says or []:
        if s not in text:
            return CaseResult(rule.id, kind, index, "missing", f"finding does not say {s!r}")
    for s in expect.get("not_says") or []:
        if s in text:
            return CaseResult(rule.id, kind, index, "missing", f"finding says {s!r}, which it must not")
    wanted = expect.get("fix_command")
    if wanted and not any(wanted in (f.command or "") for f in finding.fixes):
        return CaseResult(rule.id, kind, index, "missing",
                          f"no fix command contains {wanted!r}: {[f.command for f in finding.fixes]}")
    for name, value in (expect.get("captures") or {}).items():
        got = result.diagnosis.matches[rule.id].captures.get(f"match.{name}")
        if got != value:
            return CaseResult(rule.id, kind, index, "missing", f"capture {name} = {got!r}, expected {value!r}")
    return CaseResult(rule.id, kind, index, "reported")


def _where(result: Any, rule_id: str) -> str:
    lm = result.diagnosis.matches[rule_id]
    return f"line {lm.primary.line}: {lm.primary.text.splitlines()[0][:120]}"
