"""How `run` diagnoses a failed attempt: the explain pipeline on the attempt's log, with live facts."""
from __future__ import annotations

from doctor.command import Command
from doctor.launcher.ready import Outcome
from doctor.model import Report


def explain_attempt(log_path: str, planned: Command, outcome: Outcome) -> Report:
    """Findings for a failed attempt (best first), with fixes rewriting the command that was launched.

    The launched command is passed as the subject (like ``explain --cmd``): the log may not show it,
    and fixes must edit exactly what ran. Facts are live: the machine that failed is this one.
    """
    from doctor.logs.pipeline import Options, run
    from doctor.logs.reader import LogInputError
    try:
        return run(Options(path=log_path, facts_mode="live", cmd=planned.shell())).report
    except LogInputError:  # the attempt printed nothing (or only garbage): nothing to explain
        return Report(command="run")
