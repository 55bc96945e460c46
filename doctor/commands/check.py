"""`lmdoctor check [-- PLANNED COMMAND]`: the pre-flight."""
from __future__ import annotations

import sys
from typing import Optional, Tuple

import click

from doctor.commands.common import input_errors, json_option, target_options

HELP_EPILOG = """\b
Examples:
  lmdoctor check
  lmdoctor check --json --strict            # for scripts: exit 0 only when fully healthy
  lmdoctor check --env icamp3_demo          # examine another conda env without activating it
  lmdoctor check -- lmdeploy serve api_server /root/models/internlm2_5-7b-chat --server-port 23333
  lmdoctor check -- streamlit run app.py --server.port 6006

\b
Exit codes: 0 healthy, 1 errors, 2 usage error, 3 warnings only, 4 couldn't check.
"""


@click.command("check", epilog=HELP_EPILOG, context_settings={"ignore_unknown_options": True})
@json_option
@target_options
@click.option("--strict", is_flag=True, help="Warnings and couldn't-check also fail (exit 1).")
@click.option("--quiet", "-q", is_flag=True, help="Print only problems.")
@click.option("--lmdeploy-version", metavar="VERSION", help="Interpret the planned command with this lmdeploy version's flags.")
@click.argument("planned", nargs=-1, type=click.UNPROCESSED)
@input_errors
def command(as_json: bool, python: Optional[str], env_name: Optional[str], facts_file: Optional[str],
            strict: bool, quiet: bool, lmdeploy_version: Optional[str], planned: Tuple[str, ...]) -> None:
    """Pre-flight: check this environment (and a planned launch) before deploying."""
    from doctor.gather import Sources, gather_in_background

    # Observing the machine waits on subprocesses (the examined interpreter) and the file system,
    # while importing the engine and loading the rules is pure Python, so the two overlap.
    observed = gather_in_background(Sources(python=python, env=env_name, facts_file=facts_file,
                                            planned=list(planned) or None, lmdeploy_version=lmdeploy_version))
    from doctor.engine import check_report
    from doctor.ruleset import load_rules
    rules = load_rules(kind="env").env_rules()
    facts, subject = observed()
    report = check_report(rules, facts, subject)
    report.extra["environment"] = {"facts_source": facts.source, "python": facts.value("py.executable"),
                                   "lmdeploy": facts.value("pkg.lmdeploy.version"), "gpus": facts.value("gpu.count")}
    if as_json:
        from doctor.render import print_json
        print_json(report.to_json(strict))
    else:
        from doctor.render.check_view import render_check
        render_check(report, facts, quiet=quiet)
    sys.exit(report.exit_code(strict))
