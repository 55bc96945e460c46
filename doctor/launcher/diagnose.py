"""How `run` diagnoses a failed attempt: the explain pipeline on the attempt's log."""
from __future__ import annotations

from typing import Callable, List, Optional

from doctor.command import Command
from doctor.launcher.ready import Outcome
from doctor.model import Report

Diagnoser = Callable[[str, Command, Outcome], Report]


def explainer(facts_file: Optional[str] = None, rules: Optional[List] = None) -> Diagnoser:
    """A diagnoser with run's options: ``facts_file`` (--facts) instead of live facts, ``rules`` the log
    rules left by --select/--ignore and the config files (None: every log rule)."""
    def explain_attempt(log_path: str, planned: Command, outcome: Outcome) -> Report:
        """Findings for a failed attempt (best first), with fixes rewriting the command that was launched.

        The launched command is passed as the subject (like ``explain --cmd``): the log may not show
        it, and fixes must edit exactly what ran. Facts are live unless --facts: the machine that
        failed is this one.
        """
        from doctor.logs.pipeline import Options, run
        from doctor.logs.reader import LogInputError
        try:
            return run(Options(path=log_path, facts_mode="file" if facts_file else "live", facts_file=facts_file,
                               cmd=planned.shell(), rules=rules)).report
        except LogInputError:  # the attempt printed nothing (or only garbage): nothing to explain
            return Report(command="run")
    return explain_attempt
