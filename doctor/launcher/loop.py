"""The relaunch loop: launch, and on failure diagnose, apply the best automatic fix, launch again.

Fix safety decides what may happen without asking (see ``doctor.model.Safety``): edits of the
child's command line or environment are applied automatically; anything that changes the user's
environment or files runs only with ``--allow-env-changes``; root-only and manual fixes are only
printed. The loop stops when a launch is verified, when the same fix would be tried twice, when
the cause has no automatic fix, or when the attempt or time budget is spent.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Dict, IO, List, Optional, Tuple

from doctor.command import Command, parse
from doctor.launcher.process import Child
from doctor.launcher.ready import Outcome, Watcher, spec_for, wait_outcome
from doctor.model import Finding, Fix, Report, Safety

# A diagnoser reads the log of a failed attempt and returns findings (best first).
Diagnoser = Callable[[str, Command, Outcome], Report]

VERIFIED, NOT_VERIFIED, NOT_FIXABLE = "verified", "not_verified", "not_fixable"


@dataclass
class Options:
    attempts: int = 3
    timeout_s: Optional[float] = None        # per attempt; None = by program
    budget_s: float = 1800.0                 # all attempts together
    verify_only: bool = False
    allow_env_changes: bool = False
    chat_check: bool = True
    log_dir: str = "."
    echo: Optional[IO[str]] = None           # where the child's output is mirrored live
    say: Callable[[str], None] = lambda _msg: None   # lmdoctor's own progress lines
    # the status line while an attempt is waited for: (attempt number, program) -> context manager
    waiting: Callable[[int, str], ContextManager[Any]] = lambda _number, _program: nullcontext()


@dataclass
class Attempt:
    number: int
    argv: List[str]
    env: Dict[str, str]
    log: str
    outcome: Optional[Outcome] = None
    finding: Optional[Finding] = None
    fix: Optional[Fix] = None
    note: str = ""
    pids: List[int] = field(default_factory=list)

    @property
    def command(self) -> str:
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return f"{prefix} {' '.join(shlex.quote(a) for a in self.argv)}".strip()

    def to_json(self) -> dict:
        out: dict = {"attempt": self.number, "argv": self.argv, "env": self.env, "command": self.command,
                     "log": self.log, "outcome": self.outcome.to_json() if self.outcome else None}
        if self.finding is not None:
            out["finding"] = {"rule": self.finding.rule, "category": self.finding.category,
                              "severity": self.finding.severity.value, "title": self.finding.title}
        if self.fix is not None:
            out["fix"] = self.fix.to_json()
        if self.note:
            out["note"] = self.note
        out["pids"] = self.pids
        return out


@dataclass
class Transcript:
    attempts: List[Attempt] = field(default_factory=list)
    verdict: str = NOT_VERIFIED
    reason: str = ""
    manual_fixes: List[Fix] = field(default_factory=list)
    findings: List[Finding] = field(default_factory=list)
    child: Optional[Child] = None            # the verified, still running server (foreground mode)

    @property
    def final_command(self) -> Optional[str]:
        return self.attempts[-1].command if self.attempts else None


def pick_fix(finding: Finding, tried: List[Tuple[tuple, tuple]], allow_env: bool) -> Tuple[Optional[Fix], str]:
    """The first fix of the top finding that may be applied and was not tried; else why none."""
    reasons = []
    for fix in finding.fixes:
        if fix.safety is Safety.AUTO and fix.argv:
            key = (tuple(fix.argv), tuple(sorted((fix.env or {}).items())))
            if key in tried:
                reasons.append(f"'{fix.summary}' was already tried")
                continue
            return fix, ""
        if fix.safety is Safety.ENV and fix.command:
            if allow_env:
                return fix, ""
            reasons.append(f"'{fix.summary}' changes your environment (allow with --allow-env-changes)")
        elif fix.safety is Safety.ROOT:
            reasons.append(f"'{fix.summary}' needs root (printed, never run)")
        else:
            reasons.append(f"'{fix.summary}' needs a person")
    return None, "; ".join(reasons) or "no fix was proposed"


def _run_env_fix(fix: Fix, say: Callable[[str], None], timeout_s: float) -> bool:
    """Run an environment-changing fix command (only reached with --allow-env-changes)."""
    say(f"running (allowed by --allow-env-changes): {fix.command}")
    try:
        proc = subprocess.run(fix.command, shell=True, timeout=timeout_s)  # noqa: S602 - user-approved command
        return proc.returncode == 0
    except subprocess.TimeoutExpired:
        return False


def run_loop(cmd: Command, env: Dict[str, str], diagnose: Optional[Diagnoser], opts: Options,
             stop_flag: List[bool]) -> Transcript:
    """Launch until verified or out of options; the verified child is left running unless verify_only."""
    transcript = Transcript()
    tried: List[Tuple[tuple, tuple]] = []
    deadline = time.monotonic() + opts.budget_s
    current_argv, current_env = list(cmd.argv), dict(env)
    for number in range(1, opts.attempts + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            transcript.reason = f"time budget of {opts.budget_s:g}s spent"
            break
        tried.append((tuple(current_argv), tuple(sorted(current_env.items()))))
        planned = parse(current_argv, version=cmd.version)
        spec = spec_for(planned, chat_check=opts.chat_check)
        timeout = min(opts.timeout_s or (900.0 if planned.program == "lmdeploy" else 120.0), remaining)
        log = os.path.join(opts.log_dir, f"attempt-{number}.log")
        attempt = Attempt(number, current_argv, {k: v for k, v in current_env.items() if os.environ.get(k) != v}, log)
        transcript.attempts.append(attempt)
        opts.say(f"attempt {number}/{opts.attempts}: {attempt.command}")
        watcher = Watcher(spec)
        child = Child(current_argv, {**os.environ, **current_env}, log, echo=opts.echo, on_line=watcher.on_line)
        try:
            child.start()
        except OSError as exc:
            attempt.outcome = Outcome("exited", 0.0, code=127, detail=f"cannot start: {exc.strerror or exc}")
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"{exc}\n")
        else:
            with opts.waiting(number, planned.program or current_argv[0]):
                attempt.outcome = wait_outcome(child, spec, watcher, timeout, stop_flag)
            attempt.pids = sorted(child.known_pids)
        outcome = attempt.outcome
        opts.say(f"attempt {number}: {outcome.kind}" + (f" ({outcome.ready_by or outcome.detail})"
                                                        if outcome.ready_by or outcome.detail else "")
                 + (f", exit code {outcome.code}" if outcome.code is not None else ""))
        if outcome.ok:
            transcript.verdict = VERIFIED
            if opts.verify_only or outcome.kind == "exited":
                child.kill_tree()
            else:
                transcript.child = child
            return transcript
        child.kill_tree()
        if outcome.kind == "interrupted":
            transcript.reason = "stopped by the user"
            return transcript
        if diagnose is None:
            transcript.reason = "no diagnosis available"
            break
        report = diagnose(log, planned, outcome)
        transcript.findings = report.findings
        if not report.findings:
            transcript.reason = "the failure is not explained by any rule (see the log)"
            break
        top = report.findings[0]
        attempt.finding = top
        fix, why_not = pick_fix(top, tried, opts.allow_env_changes)
        if fix is None:
            transcript.verdict = NOT_FIXABLE
            transcript.reason = f"{top.rule} {top.title}: {why_not}"
            transcript.manual_fixes = list(top.fixes)
            return transcript
        attempt.fix = fix
        if fix.safety is Safety.ENV:
            if not _run_env_fix(fix, opts.say, remaining):
                transcript.reason = f"the fix command failed: {fix.command}"
                break
            continue
        opts.say("fix: " + fix.summary + "".join(f"\n      {d}" for d in fix.diff or []))
        current_argv = list(fix.argv or current_argv)
        current_env = {**current_env, **(fix.env or {})}
    else:
        transcript.reason = transcript.reason or f"still failing after {opts.attempts} attempts"
    return transcript


def serve_foreground(child: Child, stop_flag: List[bool]) -> int:
    """Keep the verified server in the foreground until it exits or the user stops it."""
    while True:
        code = child.poll()
        if code is not None:
            child.wait_output()
            return code if code >= 0 else 128 - code
        if stop_flag[0]:
            child.kill_tree()
            return 128 + signal.SIGINT
        time.sleep(0.2)
