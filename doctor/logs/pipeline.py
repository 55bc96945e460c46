"""The explain pipeline end to end: read the log, gather facts, diagnose, build the report.

Used by ``lmdoctor explain`` and, in-process, by the rule self-tests and the fixture corpus (which
hand in bytes and a ready FactSet instead of a path and live probes).
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from doctor.facts import FactSet
from doctor.logs import fusion, suggest
from doctor.logs.analyze import analyze_path, analyze_stream
from doctor.logs.explain import Diagnosis, ExplainReport, diagnose, suspicious
from doctor.logs.matcher import Matcher, build
from doctor.logs.structure import LogAnalysis
from doctor.ruleset import Rule


@dataclass
class Options:
    path: Optional[str] = None            # file, or None/"-" for stdin
    data: Optional[bytes] = None          # in-memory log (tests); wins over path
    facts_mode: str = "live"              # live | file | none | given
    facts_file: Optional[str] = None
    facts: Optional[FactSet] = None       # facts_mode "given": a FactSet built by the caller (e.g. a test case)
    cmd: Optional[str] = None             # --cmd: the launch command when the log lacks it
    python: Optional[str] = None
    env: Optional[str] = None
    show_all: bool = False
    workers: Optional[int] = None         # None: automatic; 1: never fork
    rules: Optional[List[Rule]] = None
    after_fork: Optional[Callable[[], None]] = None   # runs once no worker will be forked (progress line)


@dataclass
class Result:
    report: ExplainReport
    analysis: LogAnalysis
    facts: FactSet
    diagnosis: Diagnosis
    subject: Optional[fusion.Subject]
    log_facts: Dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


_MATCHER: List[Tuple[Tuple[Rule, ...], Matcher]] = []


def matcher_for(rules: List[Rule]) -> Matcher:
    """The matcher of these rule objects (kept for the next run: self-tests run many logs)."""
    key = tuple(rules)
    for cached, matcher in _MATCHER:
        if len(cached) == len(key) and all(a is b for a, b in zip(cached, key)):
            return matcher
    _MATCHER[:] = [(key, build(rules))]
    return _MATCHER[0][1]


def run(opts: Options) -> Result:
    """Raises LogInputError (unreadable input), SnapshotError/TargetError (bad --facts/--python)."""
    t0 = time.perf_counter()
    if opts.rules is None:
        from doctor.ruleset import load_rules
        rules = load_rules().log_rules()
    else:
        rules = opts.rules
    matcher = matcher_for(rules)
    base: Optional[FactSet] = None
    if opts.facts_mode == "file":  # a bad snapshot fails before a long log is read
        from doctor.facts import snapshot as snapshot_io
        base = snapshot_io.load(opts.facts_file)
    elif opts.facts_mode == "given":
        base = opts.facts or FactSet(source="given")
    if opts.data is not None:
        analysis = analyze_stream(io.BytesIO(opts.data), matcher, source=opts.path or "-")
        live = None
    else:
        started: List[fusion.LiveFacts] = []

        def start_live() -> None:  # after any fork: forking a process that has threads is unsafe
            if opts.after_fork is not None:
                opts.after_fork()
            if opts.facts_mode == "live":
                started.append(fusion.LiveFacts(opts.python, opts.env))

        analysis = analyze_path(opts.path, matcher, workers=opts.workers, after_fork=start_live)
        live = started[0] if started else None
    log = fusion.log_facts(analysis)
    if live is not None:
        base = live.result()
    version = log.get("log.lmdeploy_version") or (base.value("pkg.lmdeploy.version") if base is not None else None)
    subject = fusion.subject_command(analysis, opts.cmd, version)
    log.update(fusion.subject_facts(subject, analysis))
    facts = fusion.machine_facts(opts.facts_mode, base, subject)
    values = dict(log)
    values.update(suggest.compute(log, facts, subject, live=opts.facts_mode == "live"))
    facts = fusion.with_log(facts, values)
    diagnosis = diagnose(rules, analysis, facts, subject, show_all=opts.show_all)
    report = _report(opts, analysis, facts, diagnosis, subject, log)
    return Result(report, analysis, facts, diagnosis, subject, log, time.perf_counter() - t0)


def _report(opts: Options, an: LogAnalysis, facts: FactSet, dx: Diagnosis, subject: Optional[fusion.Subject],
            log: Dict[str, Any]) -> ExplainReport:
    report = ExplainReport(command="explain")
    report.findings = list(dx.findings) + (list(dx.benign) if opts.show_all else [])
    report.unchecked = list(dx.unchecked)
    report.failure = bool(log.get("log.failure"))
    report.extra["log"] = {
        "source": an.source or "-", "lines": an.lines, "bytes": an.bytes, "processed_lines": an.processed,
        "distinct_lines": an.distinct, "cut_lines": an.cut_lines, "workers": an.workers,
    }
    report.extra["log_facts"] = {k: v for k, v in sorted(log.items())
                                 if k not in ("log.source", "log.lines") and v not in (None, [], "")}
    report.extra["subject"] = None if subject is None else {
        "command": subject.command.shell(), "source": subject.source, "line": subject.line,
        "lmdeploy_version": subject.command.version,
    }
    report.extra["facts_source"] = facts.source if opts.facts_mode != "none" else "none"
    if not opts.show_all and dx.benign:
        report.extra["hidden"] = {"benign": len(dx.benign), "rules": [f.rule for f in dx.benign]}
    if report.verdict == "unexplained":
        report.extra["unexplained"] = {
            "suspicious": suspicious(an),
            "attach": "lmdoctor facts --json",
        }
    return report
