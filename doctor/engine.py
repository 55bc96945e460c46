"""Evaluate rules against facts and turn the ones that fire into ranked findings with concrete fixes.

Used by ``check`` (environment rules) and by ``explain`` (log rules, with captures from the log).
Fixes that edit a command are applied to the *subject* command (the planned launch, or the launch
found in the log) with the flag table of its lmdeploy version, so a fix never suggests a flag the
version does not have.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from doctor.command import Command
from doctor.facts import ABSENT, FactSet, Unknown
from doctor.i18n import tr
from doctor.model import Evidence, Finding, Fix, Report, Safety, Unchecked
from doctor.ruleset import TEMPLATE_RE, FixSpec, Rule

FIRED, PASSED, UNKNOWN, NOT_APPLICABLE = "fired", "passed", "unknown", "n/a"


def format_value(value: Any, filt: str = "") -> str:
    if filt == "gib" and isinstance(value, (int, float)):
        return f"{value / 1024:.1f} GiB"
    if filt == "first" and isinstance(value, (list, tuple)):
        return str(value[0]) if value else ""
    if filt == "quote":
        return shlex.quote(str(value))
    if filt == "lines" and isinstance(value, (list, tuple)):
        return "\n".join(map(str, value))
    if filt == "args":
        return " ".join(shlex.quote(str(v)) for v in (value if isinstance(value, (list, tuple)) else [value]))
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_text(text: str, facts: FactSet, captures: Optional[Mapping[str, Any]] = None) -> str:
    """Fill placeholders for display, showing "?" where a fact is not known (titles, explanations).

    Fix commands use :func:`render`, which refuses to build a command with a hole in it.
    """
    full = render(text, facts, captures)
    if full is not None:
        return full
    return TEMPLATE_RE.sub(lambda m: render(m.group(0), facts, captures) or "?", text)


def render(text: str, facts: FactSet, captures: Optional[Mapping[str, Any]] = None) -> Optional[str]:
    """Fill ``{fact}`` placeholders; None when a placeholder has no known value."""
    missing = False

    def sub(m) -> str:
        nonlocal missing
        name, filt = m.group(1), m.group(2) or ""
        if captures is not None and name in captures:
            value = captures[name]
        else:
            value = facts.get(name)
        if value is None or value is ABSENT or isinstance(value, Unknown):
            missing = True
            return ""
        return format_value(value, filt)

    out = TEMPLATE_RE.sub(sub, text)
    return None if missing else out


@dataclass
class RuleOutcome:
    rule: Rule
    status: str
    evidence: List[Tuple[str, Any]] = field(default_factory=list)
    missing: Dict[str, str] = field(default_factory=dict)


def evaluate(rule: Rule, facts: FactSet) -> RuleOutcome:
    """Three-valued evaluation of a rule's `applies` and `when` against facts."""
    if rule.applies is not None:
        applies = rule.applies.evaluate(facts)
        if applies.value is False:
            return RuleOutcome(rule, NOT_APPLICABLE)
        if applies.value is None:
            return RuleOutcome(rule, UNKNOWN, missing=applies.missing)
    if rule.when is None:
        return RuleOutcome(rule, PASSED)
    res = rule.when.evaluate(facts)
    if res.value is None:
        return RuleOutcome(rule, UNKNOWN, missing=res.missing)
    return RuleOutcome(rule, FIRED if res.value else PASSED, evidence=res.evidence)


def apply_edit(subject: Command, edit: Mapping[str, Any], facts: FactSet,
               captures: Optional[Mapping[str, Any]] = None) -> Optional[Tuple[Command, Dict[str, str], List[str]]]:
    """Rewrite the subject command; None when a value is unknown or a flag is not in its version."""
    cmd = subject
    env: Dict[str, str] = {}
    diff: List[str] = []
    flags = dict(edit.get("set_flag") or {})
    if edit.get("set_flags_from"):
        computed = facts.value(str(edit["set_flags_from"]))
        if not isinstance(computed, dict) or not computed:
            return None
        flags.update({k: str(v) for k, v in computed.items()})
    for flag, raw in flags.items():
        value = render(str(raw), facts, captures)
        if value is None or (cmd.table is not None and cmd.subcommand and cmd.spec(flag) is None):
            return None
        before = cmd.get_flag(flag) or cmd.default(flag)
        if before == value:
            continue
        cmd = cmd.with_flag(flag, value)
        diff.append(f"{flag} {before} → {value}" if before is not None else f"+ {flag} {value}")
    for flag in edit.get("add_flag") or []:
        if cmd.table is not None and cmd.subcommand and cmd.spec(flag) is None:
            return None
        if not cmd.has_flag(flag):
            cmd = cmd.with_flag(flag)
            diff.append(f"+ {flag}")
    for flag in edit.get("remove_flag") or []:
        if cmd.has_flag(flag):
            diff.append(f"- {flag} {cmd.get_flag(flag)}")
            cmd = cmd.without_flag(flag)
    for name, raw in (edit.get("set_env") or {}).items():
        value = render(str(raw), facts, captures)
        if value is None:
            return None
        if name in cmd.env:   # the command sets it itself: replace that prefix, or the shell keeps the old value
            if cmd.env[name] != value:
                cmd = cmd.with_env(name, value)
                diff.append(f"{name}={value}")
            continue
        env[name] = value
        diff.append(f"{name}={value}")
    if edit.get("set_model") is not None:
        value = render(str(edit["set_model"]), facts, captures)
        if value is None or not cmd.model:
            return None
        if value != cmd.model:
            diff.append(f"{cmd.model} → {value}")
            cmd = cmd.with_positional(0, value)
    return cmd, env, diff


def build_fix(spec: FixSpec, facts: FactSet, subject: Optional[Command],
              captures: Optional[Mapping[str, Any]] = None) -> Optional[Fix]:
    if spec.when is not None and spec.when.evaluate(facts).value is not True:
        return None
    summary = render(spec.summary.get(), facts, captures)
    if summary is None:
        return None
    fix = Fix(summary=summary, safety=spec.safety)
    if spec.command is not None:
        command = render(spec.command, facts, captures)
        if command is None:
            return None
        fix.command = command
    if spec.edit:
        if subject is None:
            flags = " ".join(f"{k} {render(str(v), facts, captures) or '?'}" for k, v in (spec.edit.get("set_flag") or {}).items())
            flags += "".join(f" {f}" for f in spec.edit.get("add_flag") or [])
            envs = " ".join(f"{k}={render(str(v), facts, captures) or '?'}" for k, v in (spec.edit.get("set_env") or {}).items())
            model = render(str(spec.edit["set_model"]), facts, captures) if spec.edit.get("set_model") else None
            fix.diff = [d for d in (f"model → {model}" if model else "", flags.strip(), envs) if d]
            return fix
        edited = apply_edit(subject, spec.edit, facts, captures)
        if edited is None:
            return None
        cmd, env, diff = edited
        if not diff:
            return None
        fix.argv, fix.env, fix.diff = list(cmd.argv), env or None, diff
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        rewritten = f"{prefix} {cmd.shell()}".strip()
        # A command plus an edit is a two-step fix: run the command (quantize...), then the rewritten launch.
        fix.command = f"{fix.command}\n{rewritten}" if fix.command else rewritten
    return fix


def _evidence(rule: Rule, outcome: RuleOutcome, facts: FactSet) -> List[Evidence]:
    out: List[Evidence] = []
    seen = set()
    for name, value in outcome.evidence + [(n, facts.value(n)) for n in rule.evidence]:
        if name in seen or value is None:
            continue
        seen.add(name)
        out.append(Evidence(text=f"{name} = {format_value(value)}", fact=name, value=value))
    return out


def build_finding(rule: Rule, facts: FactSet, subject: Optional[Command] = None,
                  evidence: Optional[List[Evidence]] = None,
                  captures: Optional[Mapping[str, Any]] = None) -> Finding:
    title = render_text(rule.title.get(), facts, captures)
    explanation = render_text(rule.explanation.get(), facts, captures)
    fixes = [f for f in (build_fix(s, facts, subject, captures) for s in rule.fixes) if f is not None]
    return Finding(rule=rule.id, name=rule.name, category=rule.category, severity=rule.severity, area=rule.area,
                   title=title, explanation=explanation, evidence=evidence or [], fixes=fixes,
                   confidence=rule.confidence)


def rank(findings: List[Finding], rules: Mapping[str, Rule]) -> List[Finding]:
    """Most important first; a finding whose rule another firing rule supersedes moves under the winner."""
    by_rule = {f.rule: f for f in findings}
    beaten_by: Dict[str, str] = {}
    for f in findings:
        for target in getattr(rules.get(f.rule), "supersedes", []):
            if target in by_rule and target != f.rule:
                beaten_by.setdefault(target, f.rule)
    kept: List[Finding] = []
    for f in findings:
        if f.rule not in beaten_by:
            kept.append(f)
            continue
        winner, hops = beaten_by[f.rule], 0
        while winner in beaten_by and hops < len(findings):
            winner, hops = beaten_by[winner], hops + 1
        by_rule[winner].also_matched.append({"rule": f.rule, "title": f.title,
                                             "why_not": tr("superseded_by", rule=beaten_by[f.rule])})

    def key(f: Finding) -> tuple:
        rule = rules.get(f.rule)
        return (f.severity.rank, -(rule.priority if rule else 0), f.sort_key, f.rule)

    return sorted(kept, key=key)


def check_report(rules: List[Rule], facts: FactSet, subject: Optional[Command] = None,
                 command: str = "check") -> Report:
    """Evaluate environment rules and build the report `check` prints."""
    report = Report(command=command)
    findings: List[Finding] = []
    by_id = {r.id: r for r in rules}
    for rule in rules:
        outcome = evaluate(rule, facts)
        if outcome.status == FIRED:
            findings.append(build_finding(rule, facts, subject, _evidence(rule, outcome, facts)))
        elif outcome.status == PASSED:
            report.passed.append(rule.id)
        elif outcome.status == UNKNOWN:
            report.unchecked.append(Unchecked(rule=rule.id, title=render_text(rule.title.get(), facts), area=rule.area,
                                              missing=sorted(outcome.missing),
                                              reasons=sorted(set(outcome.missing.values()))))
    report.findings = rank(findings, by_id)
    return report


def needs_text(unchecked: Unchecked) -> str:
    return f"{tr('needs')} {', '.join(unchecked.missing)}: {'; '.join(unchecked.reasons)}"
