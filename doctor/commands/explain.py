"""`lmdoctor explain [LOG|-]`: name the root cause of a failed LMDeploy log, with evidence and fixes."""
from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Tuple

import click

from doctor.i18n import tr

from doctor.commands.common import (fail_usage, input_errors, json_option, lang_option, quiet_option,
                                    redact_option, selection_options, target_options)

HELP_EPILOG = """\b
Examples:
  # the seed crash: internlm2_5-7b-chat on a small A100 slice, TurboMind out of memory loading weights
  lmdeploy chat /root/models/internlm2_5-7b-chat 2>&1 | tee chat.log
  lmdoctor explain chat.log                    # MEM101: cause, evidence lines, the AWQ command that fits
  lmdoctor explain chat.log --lang zh          # the same, in Chinese
\b
  # api_server on a port another server holds (23333): NET101 and the command with a free port
  lmdoctor explain server.log --facts facts.json   # judge with a saved snapshot (`lmdoctor facts --json`)
  lmdeploy serve api_server /root/models/internlm2_5-7b-chat 2>&1 | lmdoctor explain -
\b
  lmdoctor explain chat.log --json             # the JSON document for scripts (secrets redacted)
  lmdoctor explain chat.log --quiet            # only problems; nothing for a log without a failure
  lmdoctor explain chat.log --ignore MEM102    # an accepted finding silenced
  lmdoctor explain chat.log --all              # also list harmless warnings (and say they are harmless)
  lmdoctor explain chat.log --no-facts         # the log alone
  lmdoctor explain run.log --cmd "lmdeploy chat /root/models/internlm2_5-7b-chat"

\b
Exit codes: 0 the log shows no failure, 1 root cause found, 2 unreadable input or usage error,
3 warnings only, 4 couldn't check, 5 a failure no rule explains (attach `lmdoctor facts --json`).
"""


@click.command("explain", epilog=HELP_EPILOG)
@click.argument("log", required=False, metavar="[LOG|-]")
@json_option
@target_options
@click.option("--no-facts", is_flag=True, help="Read the log alone, without this machine's facts.")
@click.option("--cmd", "cmd", metavar="CMD", help="The launch command, when the log does not show it.")
@click.option("--all", "show_all", is_flag=True, help="Also show harmless warnings (marked as harmless).")
@quiet_option
@selection_options
@redact_option
@lang_option
@click.option("--workers", type=click.IntRange(1, 64), default=None, hidden=True,
              help="Worker processes for big files (default: automatic; 1 = none).")
@input_errors
def command(log: Optional[str], as_json: bool, python: Optional[str], env_name: Optional[str],
            facts_file: Optional[str], no_facts: bool, cmd: Optional[str], show_all: bool, quiet: bool,
            select: Tuple[str, ...], ignore: Tuple[str, ...], no_redact: bool, workers: Optional[int]) -> None:
    """Explain a failed LMDeploy log: the root cause, the lines that prove it, and the fix."""
    from doctor.logs.pipeline import Options, run
    from doctor.logs.reader import LogInputError
    from doctor.redact import Redactor
    from doctor.render.console import StatusLine
    if no_facts and (facts_file or python or env_name):
        fail_usage(tr("explain_no_facts_conflict"))
    rules, ignored = log_rules(select, ignore, quiet)
    mode = "none" if no_facts else ("file" if facts_file else "live")
    progress = StatusLine()
    try:
        result = run(Options(path=log, facts_mode=mode, facts_file=facts_file, cmd=cmd, python=python,
                             env=env_name, show_all=show_all, workers=workers, rules=rules,
                             after_fork=lambda: progress.start(tr("status_reading_log"))))
    except LogInputError as exc:
        fail_usage(str(exc))
    finally:
        progress.stop()
    doc = document(result, ignored, Redactor(enabled=not no_redact))
    if as_json:
        from doctor.render import print_json
        print_json(doc)
    else:
        from doctor.render.explain_view import render_explain
        render_explain(doc, quiet=quiet)
    sys.exit(doc["exit_code"])


def log_rules(select: Tuple[str, ...] = (), ignore: Tuple[str, ...] = (), quiet: bool = False) -> Tuple[list, List[dict]]:
    """The log rules left by --select/--ignore and the config files, and the JSON `ignored` list."""
    from doctor.commands.common import select_rules
    from doctor.ruleset import load_rules
    catalogue = load_rules()
    return select_rules(catalogue.log_rules(), select, ignore, quiet, known=catalogue.rules)


def document(result: Any, ignored: List[dict], redactor: Any) -> Dict[str, Any]:
    """The explain JSON document, redacted: what --json prints and what the text view renders."""
    report = result.report
    report.extra["ignored"] = ignored
    return redactor.data(report.to_json())


def report_section(ctx: Any) -> Optional[Any]:
    """`lmdoctor report LOG`: the log diagnosed with the facts `check` saw (redacted by report.build)."""
    if ctx.log_text is None:
        return None
    from doctor.logs.pipeline import Options, run
    from doctor.render.markdown import explain_markdown
    from doctor.report import Section
    rules, ignored = log_rules(ctx.select, ctx.ignore, quiet=True)
    result = run(Options(path=ctx.log_name or "-", data=ctx.log_text.encode("utf-8"), facts_mode="given",
                         facts=ctx.facts, cmd=ctx.planned.shell() if ctx.planned is not None else None,
                         rules=rules))
    return Section(tr("report_explain"), explain_markdown(document(result, ignored, ctx.redactor)),
                   diagnoses_log=True)
