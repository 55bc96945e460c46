"""The log fixture corpus: real (or carefully reproduced) logs with their expected verdicts.

Layout: ``fixtures/logs/<category>/<slug>.log`` next to ``<slug>.yaml`` (the folder is the expected
category, ``healthy`` for logs without a failure). The metadata file::

    source: real | issue | reproduced   # a real run / a public issue (cite it) / a message shape rebuilt from a source
    origin: "..."                       # where it came from or how it was produced (what ran, version, machine)
    references: ["InternLM/lmdeploy#2381"]
    lmdeploy: "0.18.0"                  # version that produced it, when known
    log: other-name.log                 # optional; default <slug>.log (a GPU-lab record's log is
                                        # referenced, not copied: ../../lab/failures/<id>.log)
    cmd: "lmdeploy serve api_server …"  # optional: explain --cmd
    facts: {snapshot: h100, set: {...}} # optional: machine facts (a real snapshot + changes); default none
    expect:
      category: oom_kv_cache | none     # category of the top error/warning finding; none: no error/warning
      rule: MEM103                      # optional: its rule
      exit: 1                           # optional: explain's exit code
      says: ["cannot help"]             # optional: substrings of the top finding (title, explanation, fixes)
      fix_command: "--server-port 23334"  # optional: substring of one of its fix commands
      notes: [openai_model_name_mismatch] # optional: categories of info-level findings
      benign: [RUN103]                  # optional: rules shown as harmless with --all
      facts: {log.python_version: "3.12"} # optional: facts read from the log
    variants:                           # optional: the same log with other facts / cmd
      - {facts: {snapshot: h100-ballast-8gib-free}, expect: {category: oom_other_process}}

The corpus test (tests/test_explain_corpus.py) asserts every case; ``tools/explain_accuracy.py``
prints accuracy per category.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from doctor import yamlio

META_KEYS = {"source", "origin", "references", "lmdeploy", "log", "cmd", "facts", "expect", "variants", "note"}
EXPECT_KEYS = {"category", "rule", "exit", "says", "fix_command", "notes", "benign", "facts"}
VARIANT_KEYS = {"facts", "cmd", "expect", "note"}
SOURCES = ("real", "issue", "reproduced")


@dataclass
class Case:
    id: str
    log: Path
    meta: Path
    source: str
    expect: Dict[str, Any]
    facts: Optional[Dict[str, Any]] = None
    cmd: Optional[str] = None
    note: str = ""


@dataclass
class Outcome:
    case: Case
    category: str                  # actual top error/warning category, or "none"
    rule: Optional[str]
    exit: int
    problems: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def corpus_dir() -> Path:
    from doctor.selftest import fixtures_dir
    return fixtures_dir() / "logs"


def load_cases(root: Optional[Path] = None) -> List[Case]:
    """Every case of the corpus (a fixture and each of its variants); raises ValueError on bad metadata."""
    root = root or corpus_dir()
    cases: List[Case] = []
    for meta in sorted(root.glob("*/*.yaml")):
        data = yamlio.load(meta) or {}
        where = str(meta)
        unknown = set(data) - META_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
        if data.get("source") not in SOURCES or not data.get("origin"):
            raise ValueError(f"{where}: needs source ({' | '.join(SOURCES)}) and origin")
        log = Path(os.path.normpath(meta.parent / (data.get("log") or meta.stem + ".log")))
        if not log.is_file():
            raise ValueError(f"{where}: log file {log.name} not found")
        base_id = f"{meta.parent.name}/{meta.stem}"
        entries = [(base_id, data)] + [(f"{base_id}[{i + 1}]", v) for i, v in enumerate(data.get("variants") or [])]
        for cid, entry in entries:
            keys = set(entry) - (META_KEYS if entry is data else VARIANT_KEYS)
            if keys:
                raise ValueError(f"{where}: unknown key(s) {sorted(keys)} in {cid}")
            expect = entry.get("expect") or {}
            if "category" not in expect or set(expect) - EXPECT_KEYS:
                raise ValueError(f"{where}: expect needs category and only has {', '.join(sorted(EXPECT_KEYS))}")
            cases.append(Case(cid, log, meta, data["source"], expect,
                              facts=entry.get("facts", data.get("facts") if entry is data else None),
                              cmd=entry.get("cmd", data.get("cmd")), note=str(entry.get("note", ""))))
    return cases


def case_facts(spec: Optional[Dict[str, Any]]):
    """Machine facts of a case: a real snapshot with changes (see doctor/selftest.py), or None."""
    if not spec:
        return None
    from doctor.selftest import case_facts as build
    facts, _ = build(dict(spec))
    return facts


def run_case(case: Case, rules: Optional[list] = None) -> Outcome:
    from doctor.logs.pipeline import Options, run
    facts = case_facts(case.facts)
    with_all = run(Options(path=str(case.log), data=case.log.read_bytes(), facts_mode="given" if facts else "none",
                           facts=facts, cmd=case.cmd, show_all=True, rules=rules, workers=1))
    report = with_all.report
    problems = check(case.expect, with_all, [f for f in report.findings if f.category != "benign_warning"])
    top = next((f for f in report.findings if f.severity.value in ("error", "warning")), None)
    return Outcome(case, top.category if top else "none", top.rule if top else None, report.exit_code(), problems)


def check(expect: Dict[str, Any], result: Any, findings: List[Any]) -> List[str]:
    """Differences between what a case expects and what explain said (empty = as expected)."""
    problems: List[str] = []
    report = result.report
    serious = [f for f in findings if f.severity.value in ("error", "warning")]
    top = serious[0] if serious else None
    got = top.category if top else "none"
    if got != expect["category"]:
        problems.append(f"top category {got} ({top.rule if top else '-'}), expected {expect['category']}")
    if "rule" in expect and (top.rule if top else None) != expect["rule"]:
        problems.append(f"top rule {top.rule if top else None}, expected {expect['rule']}")
    if "exit" in expect and report.exit_code() != expect["exit"]:
        problems.append(f"exit {report.exit_code()}, expected {expect['exit']}")
    if top is not None:
        text = "\n".join([top.title, top.explanation] + [f.summary for f in top.fixes]
                         + [f.command or "" for f in top.fixes] + [e.text for e in top.evidence])
        for s in expect.get("says") or []:
            if s not in text:
                problems.append(f"top finding does not say {s!r}")
        if expect.get("fix_command") and not any(expect["fix_command"] in (f.command or "") for f in top.fixes):
            problems.append(f"no fix command contains {expect['fix_command']!r}: {[f.command for f in top.fixes]}")
    elif expect.get("says") or expect.get("fix_command"):
        problems.append("no top finding to check says/fix_command against")
    notes = sorted({f.category for f in findings if f.severity.value == "info"})
    if "notes" in expect and notes != sorted(expect["notes"]):
        problems.append(f"notes {notes}, expected {sorted(expect['notes'])}")
    benign = sorted(f.rule for f in report.findings if f.category == "benign_warning")
    if "benign" in expect and benign != sorted(expect["benign"]):
        problems.append(f"harmless {benign}, expected {sorted(expect['benign'])}")
    for name, value in (expect.get("facts") or {}).items():
        if result.log_facts.get(name) != value:
            problems.append(f"{name} = {result.log_facts.get(name)!r}, expected {value!r}")
    return problems
