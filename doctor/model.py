"""The result types every command produces: findings, fixes, evidence and the report envelope.

Commands return a :class:`Report`; renderers turn it into rich text or the versioned JSON document
(the contract scripts rely on, documented in the README). Nothing here knows how facts are gathered.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from doctor import __version__, exitcodes

SCHEMA_VERSION = 1


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Smaller is more important (used for ordering)."""
        return {"error": 0, "warning": 1, "info": 2}[self.value]


class Safety(str, Enum):
    """Who may apply a fix: ``run`` applies ``auto`` fixes itself and never the others unless asked."""

    AUTO = "auto"          # edits only the child's command line or environment
    ENV = "env"            # changes the user's environment or files (pip install, config files)
    ROOT = "root"          # needs root (sysctl, driver install): only ever printed
    MANUAL = "manual"      # advice a person has to act on (switch model, ask the admin)


@dataclass
class Evidence:
    """Why a finding fired: a log line (with its number) or a fact (with its value)."""

    text: str
    line: Optional[int] = None
    fact: Optional[str] = None
    value: Any = None

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"text": self.text}
        if self.line is not None:
            out["line"] = self.line
        if self.fact is not None:
            out["fact"] = self.fact
            out["value"] = self.value
        return out


@dataclass
class Fix:
    """One way out: a sentence for people and, where it is a command, the exact command."""

    summary: str
    command: Optional[str] = None
    safety: Safety = Safety.MANUAL
    argv: Optional[List[str]] = None            # the rewritten command, for `run`
    env: Optional[Dict[str, str]] = None        # environment overrides for the child, for `run`
    diff: Optional[List[str]] = None            # human-readable changes, e.g. "--cache-max-entry-count 0.8 → 0.2"

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"summary": self.summary, "safety": self.safety.value}
        if self.command is not None:
            out["command"] = self.command
        if self.argv is not None:
            out["argv"] = self.argv
        if self.env:
            out["env"] = self.env
        if self.diff:
            out["diff"] = self.diff
        return out


@dataclass
class Finding:
    """A rule that fired, rendered in the current language."""

    rule: str
    name: str
    category: str
    severity: Severity
    area: str
    title: str
    explanation: str = ""
    evidence: List[Evidence] = field(default_factory=list)
    fixes: List[Fix] = field(default_factory=list)
    confidence: str = "high"
    also_matched: List[Dict[str, str]] = field(default_factory=list)
    data: Dict[str, Any] = field(default_factory=dict)
    sort_key: tuple = field(default=(), repr=False, compare=False)

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "rule": self.rule,
            "name": self.name,
            "category": self.category,
            "severity": self.severity.value,
            "area": self.area,
            "title": self.title,
            "explanation": self.explanation,
            "confidence": self.confidence,
            "evidence": [e.to_json() for e in self.evidence],
            "fixes": [f.to_json() for f in self.fixes],
        }
        if self.also_matched:
            out["also_matched"] = self.also_matched
        out.update(self.data)
        return out


@dataclass
class Unchecked:
    """A rule that could not be evaluated because facts it needs are unknown."""

    rule: str
    title: str
    area: str
    missing: List[str]
    reasons: List[str]

    def to_json(self) -> Dict[str, Any]:
        return {"rule": self.rule, "title": self.title, "area": self.area,
                "missing": self.missing, "reasons": self.reasons}


@dataclass
class Report:
    """What a command returns; `verdict` and `exit_code` are derived, never stored."""

    command: str
    findings: List[Finding] = field(default_factory=list)
    unchecked: List[Unchecked] = field(default_factory=list)
    passed: List[str] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    @property
    def verdict(self) -> str:
        if self.count(Severity.ERROR):
            return "errors"
        if self.count(Severity.WARNING):
            return "warnings"
        if self.unchecked:
            return "unchecked"
        return "healthy"

    def exit_code(self, strict: bool = False) -> int:
        verdict = self.verdict
        if verdict == "errors":
            return exitcodes.ERRORS
        if verdict in ("warnings", "unchecked") and strict:
            return exitcodes.ERRORS
        return {"warnings": exitcodes.WARNINGS, "unchecked": exitcodes.UNCHECKED}.get(verdict, exitcodes.OK)

    def to_json(self, strict: bool = False) -> Dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "lmdoctor", "version": __version__},
            "command": self.command,
            "verdict": self.verdict,
            "exit_code": self.exit_code(strict),
            "summary": {
                "errors": self.count(Severity.ERROR),
                "warnings": self.count(Severity.WARNING),
                "info": self.count(Severity.INFO),
                "unchecked": len(self.unchecked),
                "passed": len(self.passed),
                "ignored": len(self.extra.get("ignored", [])),  # rules --ignore/--select/config left out
            },
            "findings": [f.to_json() for f in self.findings],
            "unchecked": [u.to_json() for u in self.unchecked],
            "passed": list(self.passed),
            **self.extra,
        }
