"""The whole pipeline: discover → scan → judge → rank, and its JSON document.

Used by ``lmdoctor envs`` and by the ``envs`` probe inside ``check``; both give the same answer for
the same machine and job.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from doctor import exitcodes
from doctor.envs.discover import Problem, discover
from doctor.envs.scan import Env, scan_env
from doctor.envs.job import Job
from doctor.envs.score import Verdict, best, judge, rank
from doctor.facts import FactSet

PACKAGE_COLUMNS = ("lmdeploy", "torch", "transformers", "timm")


@dataclass
class Survey:
    job: Job
    verdicts: List[Verdict]                      # ranked, best first
    problems: List[Problem] = field(default_factory=list)
    scan_ms: float = 0.0                         # discovery + reading every env from disk
    total_ms: float = 0.0                        # ... + judging them
    facts_source: str = "live"

    @property
    def best(self) -> Optional[Verdict]:
        return best(self.verdicts)

    @property
    def verdict(self) -> str:
        b = self.best
        return "none_suitable" if b is None else b.verdict

    @property
    def exit_code(self) -> int:
        return {"ready": exitcodes.OK, "warnings": exitcodes.WARNINGS}.get(self.verdict, exitcodes.ERRORS)

    def to_json(self) -> Dict[str, Any]:
        from doctor import __version__
        from doctor.model import SCHEMA_VERSION
        counts = {k: sum(1 for v in self.verdicts if v.verdict == k) for k in ("ready", "warnings", "unsuitable", "broken")}
        b = self.best
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "lmdoctor", "version": __version__},
            "command": "envs",
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "job": {"argv": self.job.argv, "model": self.job.model, "text": self.job.describe()},
            "facts_source": self.facts_source,
            "summary": dict(counts, scanned=len(self.verdicts), scan_ms=round(self.scan_ms, 1),
                            total_ms=round(self.total_ms, 1)),
            "envs": [env_json(v) for v in self.verdicts],
            "best": None if b is None else {"name": b.env.name, "path": b.env.prefix, "verdict": b.verdict,
                                            "activate": b.activate, "run": b.run, "python": b.env.python,
                                            "current": b.env.active or b.env.is_self},
            "problems": [p.to_json() for p in self.problems],
        }


def env_json(v: Verdict) -> Dict[str, Any]:
    e: Env = v.env
    return {
        "name": e.name, "kind": e.kind, "path": e.prefix, "python": e.python, "python_version": e.python_version,
        "packages": {p: e.package(p) for p in PACKAGE_COLUMNS + ("einops", "gradio")},
        "verdict": v.verdict, "reason": v.main_reason, "reasons": [r.to_json() for r in v.reasons],
        "problems": [p.to_json() for p in e.problems], "activate": v.activate, "run": v.run,
        "active": e.active, "lmdoctor": e.is_self, "sources": e.sources, "scan_ms": round(e.scan_ms, 2),
    }


def survey(job: Job, machine: FactSet, environ: Mapping[str, str], cwd: str, paths: Sequence[str] = (),
           defaults: bool = True, depth: int = 2, exclude: Optional[str] = None,
           rules: Optional[Sequence[Any]] = None) -> Survey:
    """Find, read, judge and rank every env; ``exclude`` leaves out one prefix (the env being checked)."""
    t0 = time.perf_counter()
    found = discover(environ, cwd, paths, defaults=defaults, depth=depth)
    skip = os.path.realpath(exclude) if exclude else None
    envs = [scan_env(c, environ, cwd) for c in found.candidates.values() if os.path.realpath(c.prefix) != skip]
    scan_ms = (time.perf_counter() - t0) * 1000
    if rules is None:
        from doctor.ruleset import load_rules
        rules = load_rules().env_rules()
    verdicts = rank([judge(e, machine, job, rules, cwd, environ) for e in envs])
    return Survey(job, verdicts, found.problems, scan_ms, (time.perf_counter() - t0) * 1000, machine.source)
