"""How `run` diagnoses a failed attempt: the explain pipeline on the attempt's log, with live facts."""
from __future__ import annotations

from doctor.command import Command
from doctor.launcher.ready import Outcome
from doctor.model import Report


def explain_attempt(log_path: str, planned: Command, outcome: Outcome) -> Report:
    """Findings for a failed attempt (best first); the planned command is the subject of the fixes."""
    try:
        from doctor.explain_api import explain_file  # provided by the explain pipeline
    except ImportError:
        return Report(command="run")
    return explain_file(log_path, subject=planned)
