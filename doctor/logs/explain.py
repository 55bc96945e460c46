"""From an analysed log and facts to ranked findings: which rules match, which one is the cause.

Ranking (best first), after ``supersedes`` moved the beaten rules under their winner:

1. severity: an error beats a warning beats a note;
2. ``priority`` of the rule (specific rules are written with a higher priority than generic ones);
3. specificity: how many conditions held (main clause + ``also`` clauses + ``when``);
4. position: the earlier failure is the cause, later ones are its consequences.

Lines that are consequences by nature (RPCServerDeadError, BrokenProcessPool, ``<Engine> check
failed!``: ``rules/knowledge/logs.yaml``) are never a cause; they are listed under the winning
finding. When the log shows a failure that no rule explains, the report says so, lists the most
suspicious lines and asks for ``lmdoctor facts --json`` (verdict ``unexplained``, exit 5).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from doctor import exitcodes
from doctor.engine import FIRED, NOT_APPLICABLE, UNKNOWN, build_finding, evaluate, format_value, rank
from doctor.facts import FactSet
from doctor.i18n import Text
from doctor.logs.spec import Clause, LogPattern, capture_values
from doctor.logs.structure import LogAnalysis, Marker, Occ
from doctor.model import Evidence, Finding, Report, Severity, Unchecked
from doctor.ruleset import Rule

BENIGN = "benign_warning"
SHOW = 300                    # characters of a log line shown as evidence
SUSPICIOUS_MAX = 8
MARKER_ORDER = {"exception": 0, "crash": 1, "fatal": 2, "error": 3, "consequence": 9}


@dataclass
class LogMatch:
    rule: Rule
    primary: Occ
    pattern: LogPattern
    also: List[Occ] = field(default_factory=list)
    captures: Dict[str, Any] = field(default_factory=dict)
    count: int = 0


def _occurrences(clause: Clause, an: LogAnalysis) -> List[Tuple[Occ, LogPattern]]:
    out = []
    for p in clause.patterns:
        h = an.hits.get(p.id)
        if h is not None:
            out.extend((o, p) for o in h.occ.items())
    return sorted(out, key=lambda x: x[0].line)


def _near(clause: Clause, occ: Occ, primary: Occ) -> bool:
    if clause.within is None:
        return True
    if clause.within == "traceback":
        return primary.group >= 0 and occ.group == primary.group
    return abs(occ.line - primary.line) <= int(clause.within)


def match_rule(rule: Rule, an: LogAnalysis) -> Optional[LogMatch]:
    """The first occurrence of the rule's main clause for which every `also` holds and no `unless`."""
    spec = rule.log
    mains = _occurrences(spec.main, an)
    if not mains:
        return None
    alsos = [_occurrences(c, an) for c in spec.also]
    vetoes = [_occurrences(c, an) for c in spec.unless]
    for primary, pattern in mains:
        found: List[Tuple[Occ, LogPattern]] = []
        for clause, occs in zip(spec.also, alsos):
            near = [(o, p) for o, p in occs if _near(clause, o, primary)]
            if not near:
                break
            found.append(min(near, key=lambda x: abs(x[0].line - primary.line)))  # the closest corroboration
        else:
            if any(_near(c, o, primary) for c, occs in zip(spec.unless, vetoes) for o, _ in occs):
                continue
            captures: Dict[str, Any] = {}
            for occ, pat in [(primary, pattern)] + found:
                m = pat.regex.search(occ.text)
                if m is not None:
                    captures.update({k: v for k, v in capture_values(m).items() if k not in captures})
            return LogMatch(rule, primary, pattern, [o for o, _ in found], captures, an.hits[pattern.id].count)
    return None


def _show(text: str) -> str:
    first = text.split("\n", 1)[0].rstrip()
    return first if len(first) <= SHOW else first[: SHOW - 1] + "…"


def _evidence(lm: LogMatch, outcome_evidence: List[Tuple[str, Any]], rule: Rule, facts: FactSet) -> List[Evidence]:
    ev = [Evidence(text=_show(lm.primary.text), line=lm.primary.line)]
    seen = {lm.primary.line}
    for occ in lm.also:
        if occ.line not in seen:
            seen.add(occ.line)
            ev.append(Evidence(text=_show(occ.text), line=occ.line))
    ev.sort(key=lambda e: e.line or 0)
    names = set()
    for name, value in outcome_evidence + [(n, facts.value(n)) for n in rule.evidence]:
        if name in names or value is None or name.startswith("match."):
            continue
        names.add(name)
        shown = format_value(value)
        if name.endswith("_mib") and isinstance(value, (int, float)):
            shown = f"{value:g} MiB ({format_value(value, 'gib')})"
        ev.append(Evidence(text=f"{name} = {shown}", fact=name, value=value))
    return ev


@dataclass
class Diagnosis:
    findings: List[Finding]
    benign: List[Finding]
    unchecked: List[Unchecked]
    matches: Dict[str, LogMatch]


def diagnose(rules: List[Rule], an: LogAnalysis, facts: FactSet, subject: Any = None,
             show_all: bool = False) -> Diagnosis:
    """Evaluate every log rule against the analysis and the facts; findings ranked best first.

    Harmless findings (benign_warning) are kept apart; they appear in `also_matched` only with
    ``show_all``, like everywhere else."""
    fired: List[Finding] = []
    unchecked: List[Unchecked] = []
    matches: Dict[str, LogMatch] = {}
    by_id = {r.id: r for r in rules}
    command = subject.command if subject is not None else None
    for rule in rules:
        if rule.log is None:
            continue
        lm = match_rule(rule, an)
        if lm is None:
            continue
        rule_facts = facts.with_values(lm.captures) if lm.captures else facts
        outcome = evaluate(rule, rule_facts)
        if outcome.status == NOT_APPLICABLE:
            continue
        if outcome.status == UNKNOWN:
            unchecked.append(Unchecked(rule=rule.id, title=rule.title.get(), area=rule.area,
                                       missing=sorted(outcome.missing), reasons=sorted(set(outcome.missing.values()))))
            continue
        if rule.when is not None and outcome.status != FIRED:
            continue
        matches[rule.id] = lm
        finding = build_finding(rule, rule_facts, command, _evidence(lm, outcome.evidence, rule, rule_facts), lm.captures)
        specificity = 1 + len(rule.log.also) + (1 if rule.when is not None else 0)
        finding.sort_key = (-specificity, lm.primary.line)
        finding.data["occurrences"] = lm.count
        fired.append(finding)
    ranked = rank(fired, by_id)
    _explain_ranking([f for f in ranked if show_all or f.category != BENIGN or f is ranked[0]], by_id)
    if ranked:
        top = ranked[0]
        if top.rule in matches:
            consequences = _consequences(an, matches[top.rule].primary.line)
            if consequences:
                top.data["consequences"] = consequences
    benign = [f for f in ranked if f.category == BENIGN]
    findings = [f for f in ranked if f.category != BENIGN]
    return Diagnosis(findings, benign, unchecked, matches)


def _explain_ranking(ranked: List[Finding], rules: Dict[str, Rule]) -> None:
    """Tell, on the winner, why each other finding lost (the rest of `also_matched`)."""
    if len(ranked) < 2:
        return
    top = ranked[0]
    top_rule = rules[top.rule]
    for other in ranked[1:]:
        rule = rules[other.rule]
        if other.severity.rank > top.severity.rank:
            why = Text({"en": f"{other.severity.value}, not an error" if top.severity is Severity.ERROR
                        else f"{other.severity.value}, less severe",
                        "zh": f"级别为 {other.severity.value}，低于 {top.severity.value}"}).get()
        elif other.category == BENIGN:
            why = Text({"en": "harmless", "zh": "无害"}).get()
        elif rule.priority < top_rule.priority:
            why = Text({"en": f"less specific rule (priority {rule.priority} < {top_rule.priority})",
                        "zh": f"规则更笼统（优先级 {rule.priority} < {top_rule.priority}）"}).get()
        elif other.sort_key[0] > top.sort_key[0]:
            why = Text({"en": f"fewer conditions held ({-other.sort_key[0]} vs {-top.sort_key[0]})",
                        "zh": f"满足的条件更少（{-other.sort_key[0]} 对 {-top.sort_key[0]}）"}).get()
        else:
            why = Text({"en": f"later in the log (line {other.sort_key[1]} vs {top.sort_key[1]})",
                        "zh": f"在日志中更靠后（第 {other.sort_key[1]} 行，对第 {top.sort_key[1]} 行）"}).get()
        top.also_matched.append({"rule": other.rule, "title": other.title, "why_not": why})


def _consequences(an: LogAnalysis, after: int) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    seen = set()
    for mk in sorted(an.markers.items(), key=lambda m: m.line):
        if mk.kind == "consequence" and mk.line >= after and mk.line not in seen:
            seen.add(mk.line)
            out.append({"line": mk.line, "text": _show(mk.text), "why": mk.detail})
    return out[:6]


def suspicious(an: LogAnalysis) -> List[Dict[str, Any]]:
    """The lines most likely to hold an unexplained failure's cause, best first, one per line."""
    best: Dict[int, Marker] = {}
    for mk in an.markers.items():
        cur = best.get(mk.line)
        if cur is None or MARKER_ORDER.get(mk.kind, 5) < MARKER_ORDER.get(cur.kind, 5):
            best[mk.line] = mk
    ordered = sorted(best.values(), key=lambda m: (MARKER_ORDER.get(m.kind, 5), m.line))
    return [{"line": m.line, "text": _show(m.text), "kind": m.kind} for m in ordered[:SUSPICIOUS_MAX]]


class ExplainReport(Report):
    """Report of `explain`: like check's, plus the `unexplained` verdict (exit 5)."""

    failure: bool = False

    @property
    def verdict(self) -> str:
        """check's verdict, except that a failure no error explains outranks warnings and unknowns."""
        verdict = super().verdict
        return "unexplained" if self.failure and verdict != "errors" else verdict

    def exit_code(self, strict: bool = False) -> int:
        if self.verdict == "unexplained":
            return exitcodes.UNEXPLAINED
        return super().exit_code(strict)
