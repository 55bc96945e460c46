"""The shareable report: one Markdown document for an issue or a chat group, secrets redacted.

Built-in parts: the verdict, the environment facts (compact table), the planned command, the
`check` result. Other commands add parts through :data:`sections`, a registry like the command
table of ``doctor/cli.py``: one line ``name: "module:function"``, imported only when a report is
made. ``explain`` plugs in with::

    sections = {"explain": "doctor.commands.explain:report_section"}

A section function takes a :class:`SectionContext` and returns a :class:`Section` (or None when it
has nothing to add, e.g. no log was given). It gets the raw, unredacted inputs (it needs them to
diagnose) plus ``ctx.redactor``; whatever it returns is redacted again here, so a section cannot
leak a secret even if it forgets. A section that raises becomes a one-line note, never a crash.

When a log is given and no "explain" section diagnosed it, the report says so and includes the
log's last :data:`TAIL_LINES` lines (redacted); when one did, the tail is still there, folded.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from doctor import __version__
from doctor.command import Command
from doctor.facts import FactSet
from doctor.i18n import tr
from doctor.model import Report
from doctor.redact import Redactor

# name -> "module:function"; report order. Add one line to plug a command into `lmdoctor report`.
sections: Dict[str, str] = {
    "explain": "doctor.commands.explain:report_section",
}

TAIL_LINES = 40
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass
class SectionContext:
    facts: FactSet                  # what check saw (unredacted)
    check: Report                   # the check result
    planned: Optional[Command]      # the planned command after `--`, if any
    log_text: Optional[str]         # the whole log, if one was given (unredacted)
    log_name: Optional[str]         # its name as the user gave it ("-" for stdin)
    redactor: Redactor              # use it on anything you quote that did not come from a rule
    select: Sequence[str] = ()      # --select / --ignore of the command line (config files are read
    ignore: Sequence[str] = ()      # by doctor.config itself), for sections that run rules


@dataclass
class Section:
    title: str                      # heading text, already in the current language
    body: str                       # Markdown
    diagnoses_log: bool = False     # True when it explains the log (the raw tail is then folded)


def register(name: str, target: str) -> None:
    """Add a section at run time (``target`` is "module:function"); same as a line in :data:`sections`."""
    sections[name] = target


def _resolve(target: str) -> Callable[[SectionContext], Optional[Section]]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def run_sections(ctx: SectionContext) -> List[Section]:
    """Every registered section in order; a missing module or a failing section is a note."""
    out: List[Section] = []
    for name, target in sections.items():
        try:
            result = _resolve(target)(ctx)
        except Exception as exc:  # the report must survive a broken plug-in
            out.append(Section(name, tr("report_section_failed", name=name, error=f"{type(exc).__name__}: {exc}")))
            continue
        if result is not None:
            out.append(result)
    return out


def clean_log(text: str) -> List[str]:
    """Log lines as a person saw them: ANSI colours removed, progress bars (\\r) reduced to their last state."""
    return [_ANSI.sub("", line.rsplit("\r", 1)[-1] if "\r" in line.rstrip("\r") else line.rstrip("\r"))
            for line in text.splitlines()]


def log_tail(ctx: SectionContext, folded: bool) -> str:
    from doctor.render.markdown import details, fenced
    lines = clean_log(ctx.log_text or "")
    tail = lines[-TAIL_LINES:]
    intro = tr("report_log_tail", n=len(tail), total=len(lines), name=ctx.log_name or "-")
    block = fenced(ctx.redactor.text("\n".join(tail)))
    return details(intro, block) if folded else f"{intro}\n\n{block}"


def build(ctx: SectionContext) -> str:
    """The whole Markdown document (redacted unless ``ctx.redactor`` is disabled)."""
    from doctor.render.check_view import summary_counts
    from doctor.render.markdown import (check_markdown, environment_rows, fenced, join_sections, section,
                                        shell_line, table, verdict_line)
    r = ctx.redactor
    r.learn(ctx.facts.values)
    if ctx.planned is not None:
        r.learn(list(ctx.planned.argv))
    if ctx.log_text:
        r.learn(ctx.log_text)
    doc = r.data(ctx.check.to_json())
    facts = FactSet(r.data(ctx.facts.values), ctx.facts.covered, ctx.facts.unknown, source=r.text(ctx.facts.source))
    parts: List[Optional[str]] = [
        f"## {tr('report_title')}\n",
        verdict_line(doc, summary_counts(ctx.check)) + "\n",
        section(tr("report_environment"), table(environment_rows(facts))),
    ]
    if ctx.planned is not None:
        parts.append(section(tr("report_planned"), fenced(shell_line(r.argv(ctx.planned.argv)), "shell")))
    parts.append(section(tr("report_check"), check_markdown(doc)))
    extra = run_sections(ctx)
    for s in extra:
        parts.append(section(r.text(s.title), r.text(s.body)))
    if ctx.log_text is not None:
        diagnosed = any(s.diagnoses_log for s in extra)
        note = "" if "explain" in sections else f"> {tr('report_no_explain')}\n\n"
        parts.append(section(tr("report_log"), note + log_tail(ctx, folded=diagnosed)))
    footer = tr("report_redacted") if r.enabled else tr("report_not_redacted")
    parts.append(f"---\n<sub>{tr('report_generated', version=__version__, redaction=footer)}</sub>")
    return r.text(join_sections(parts))
