"""Log facts, the subject command, and their fusion with machine facts (live, snapshot, or none).

The default is this machine's live facts: `explain` usually runs right where the launch failed, and
the GPU's other processes, the installed versions and the model folder sharpen both the cause and
the numbers in the fix. ``--facts FILE`` judges a saved snapshot; ``--no-facts`` reads the log alone.
Facts printed in the log (check_env output, traceback paths) are ``log.*`` and never overwrite the
machine's own facts: rules say which one they mean.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from doctor.command import Command, command_facts, parse_shell
from doctor.facts import FactSet
from doctor.logs.facts import LOG_FACTS
from doctor.logs.structure import CommandCandidate, LogAnalysis

SUBJECT_PROGRAMS = ("lmdeploy", "streamlit", "torchrun")
STDLIB = re.compile(r"(?:/lib/python\d+\.\d+/(?!site-packages|dist-packages)|^<frozen |/site-packages/|/dist-packages/)")


@dataclass
class Subject:
    command: Command
    source: str            # "--cmd" | "log line N"
    line: Optional[int] = None


def log_facts(an: LogAnalysis) -> Dict[str, Any]:
    """The ``log.*`` facts of an analysis (see doctor/logs/facts.py)."""
    facts: Dict[str, Any] = {k: v for k, (_, v) in an.facts.items()}
    facts["log.source"] = an.source or "-"
    facts["log.lines"] = an.lines
    facts["log.failure"] = bool(an.markers)
    if an.first_failure:
        facts["log.first_failure_line"] = an.first_failure
    types: List[str] = []
    for exc in an.exceptions.items():
        if exc.short not in types:
            types.append(exc.short)
    facts["log.exception_types"] = types
    if an.http:
        facts["log.http_errors"] = [f"{h.text}" + (f" (x{h.count})" if h.count > 1 else "")
                                    for h in sorted(an.http.values(), key=lambda h: h.first)]
    if an.nccl:
        facts["log.nccl_errors"] = [text for _, text in an.nccl.items()]
    script = user_script(an)
    if script:
        facts["log.user_script"] = script
    return facts


def user_script(an: LogAnalysis) -> Optional[str]:
    for tb in an.tracebacks.items():
        for fr in tb.frames:
            if not STDLIB.search(fr.path) and not fr.path.startswith("<") and "/lmdeploy/" not in fr.path \
                    and not fr.path.endswith("/bin/lmdeploy"):
                return fr.path
    return None


def pick_command(an: LogAnalysis, version: Optional[str]) -> Optional[Tuple[Command, CommandCandidate]]:
    """The launch that failed: the last shell-prompt command before the first failure (else the last
    command line before it); lines that merely mention a command (a README, a heading) are skipped
    because they do not parse as a known program with a subcommand."""
    good = []
    for cand in an.commands.items():
        cmd = parse_shell(cand.text, version=version)
        if cmd.program in SUBJECT_PROGRAMS and (cmd.program != "lmdeploy" or cmd.subcommand) \
                or cmd.program == "python" and cmd.positionals:
            good.append((cmd, cand))
    if not good:
        return None
    first_failure = an.first_failure
    before = [g for g in good if not first_failure or g[1].line < first_failure] or good
    prompts = [g for g in before if g[1].kind == "prompt"]
    return (prompts or before)[-1]


def subject_command(an: LogAnalysis, cmd_text: Optional[str], version: Optional[str]) -> Optional[Subject]:
    if cmd_text:
        return Subject(parse_shell(cmd_text, version=version), "--cmd")
    picked = pick_command(an, version)
    if picked is None:
        return None
    cmd, cand = picked
    return Subject(cmd, f"log line {cand.line}", cand.line)


def subject_facts(subject: Optional[Subject], an: LogAnalysis) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if subject is not None:
        out["log.command"] = subject.command.shell()
        if subject.line is not None:
            out["log.command_line"] = subject.line
        if subject.command.model:
            out["log.model"] = subject.command.model
    model = an.facts.get("log.engine_config.model_name", (0, None))[1]
    if model and "log.model" not in out:
        out["log.model"] = model
    return out


class LiveFacts:
    """This machine's facts, gathered in a thread while the log is read (both take a while)."""

    def __init__(self, python: Optional[str], env: Optional[str]):
        self.python, self.env = python, env
        self.facts: Optional[FactSet] = None
        self.error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="lmdoctor-live-facts", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            from doctor.facts import ProbeContext, collect
            from doctor.facts.target import resolve
            ctx = ProbeContext(cwd=os.getcwd(), environ=dict(os.environ))
            ctx.target = resolve(self.python, self.env, ctx.environ)
            self.facts = collect(ctx, stages=[0])
        except BaseException as exc:  # reported by result(); the doctor survives a failed probe run
            self.error = exc

    def result(self, timeout: float = 15.0) -> FactSet:
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        if self.facts is None:
            return FactSet(unknown={"*": "live facts timed out"}, source="live")
        return self.facts


def machine_facts(mode: str, base: Optional[FactSet], subject: Optional[Subject]) -> FactSet:
    """Machine facts (``base``: live, snapshot or given) plus the subject command's facts, with the
    derived facts recomputed for that command (model family, fit...). Mode ``none``: command facts only."""
    from doctor.facts import ProbeContext, collect, without_stage
    from doctor.gather import derived_stages
    cmd_values = command_facts(subject.command) if subject is not None else {}
    cmd_covered = ["cmd.*", "cmd.flag.*", "cmd.env.*"]
    if mode == "none" or base is None:
        return FactSet(source="none").with_values(cmd_values, covered=cmd_covered if subject else [])
    source = base.source
    for stage in derived_stages():
        base = without_stage(base, stage)
    ctx = ProbeContext(planned=subject.command if subject else None, cwd=os.getcwd(), environ=dict(os.environ))
    if subject is not None:
        base = base.with_values(cmd_values, covered=cmd_covered)
        if mode == "live":  # the probes that look at the planned command: its model folder, its port
            base = collect(ctx, stages=[0], base=base, only=["model", "ports"])
    facts = collect(ctx, stages=derived_stages(), base=base)
    facts.source = source
    return facts


def with_log(facts: FactSet, values: Dict[str, Any]) -> FactSet:
    """Facts plus log/suggest values; every declared log.*/suggest.* name not set is known absent."""
    return facts.merged(FactSet(values, covered=list(LOG_FACTS)))
