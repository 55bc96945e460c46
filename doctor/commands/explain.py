"""`lmdoctor explain [LOG|-]`: name the root cause of a failed LMDeploy log, with evidence and fixes."""
from __future__ import annotations

import sys
from typing import Optional

import click

from doctor.i18n import tr

from doctor.commands.common import fail_usage, input_errors, json_option, target_options

HELP_EPILOG = """\b
Examples:
  lmdeploy serve api_server /root/models/internlm2_5-7b-chat 2>&1 | tee server.log | lmdoctor explain
  lmdoctor explain server.log                  # cause, evidence lines, fixes (facts of this machine)
  lmdoctor explain server.log --json           # the JSON document for scripts
  lmdoctor explain server.log --all            # also list harmless warnings (and say they are harmless)
  lmdoctor explain bug.log --facts facts.json  # judge with a saved snapshot (`lmdoctor facts --json`)
  lmdoctor explain bug.log --no-facts          # the log alone
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
@click.option("--workers", type=click.IntRange(1, 64), default=None, hidden=True,
              help="Worker processes for big files (default: automatic; 1 = none).")
@input_errors
def command(log: Optional[str], as_json: bool, python: Optional[str], env_name: Optional[str],
            facts_file: Optional[str], no_facts: bool, cmd: Optional[str], show_all: bool,
            workers: Optional[int]) -> None:
    """Explain a failed LMDeploy log: the root cause, the lines that prove it, and the fix."""
    from doctor.logs.pipeline import Options, run
    from doctor.logs.reader import LogInputError
    if no_facts and (facts_file or python or env_name):
        fail_usage(tr("explain_no_facts_conflict"))
    mode = "none" if no_facts else ("file" if facts_file else "live")
    try:
        result = run(Options(path=log, facts_mode=mode, facts_file=facts_file, cmd=cmd, python=python,
                             env=env_name, show_all=show_all, workers=workers))
    except LogInputError as exc:
        fail_usage(str(exc))
    report = result.report
    if as_json:
        from doctor.render import print_json
        print_json(report.to_json())
    else:
        from doctor.render.explain_view import render_explain
        render_explain(result, show_all=show_all)
    sys.exit(report.exit_code())
