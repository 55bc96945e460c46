"""`lmdoctor envs [--for -- COMMAND | --model MODEL]`: find the environment on this machine that will work."""
from __future__ import annotations

import os
import sys
from typing import Optional, Tuple

import click

from doctor.i18n import tr
from doctor.commands.common import fail_usage, input_errors, json_option, lang_option, quiet_option

HELP_EPILOG = """\b
Examples:
  lmdoctor envs                                    every env here, judged for lmdeploy in general
  lmdoctor envs --for -- lmdeploy serve gradio /share/new_models/OpenGVLab/InternVL2-2B
  lmdoctor envs --model /root/models/internlm2_5-7b-chat --path /root/share/pre_envs
  lmdoctor envs --for -- lmdeploy serve gradio /share/new_models/Shanghai_AI_Laboratory/internlm-xcomposer2-vl-1_8b
                                                   the gradio VLM demo that crashed in `demo`: finds icamp3_demo
  lmdoctor envs --json --for -- lmdeploy serve api_server OpenGVLab/InternVL2-2B

\b
Exit codes: 0 a ready env exists, 3 only envs with warnings, 1 none suitable (or none found),
2 usage error.
"""


@click.command("envs", epilog=HELP_EPILOG, context_settings={"ignore_unknown_options": True})
@json_option
@click.option("--for", "for_job", is_flag=True, help="Judge the envs for the command given after `--`.")
@click.option("--model", metavar="MODEL", help="Judge the envs for serving this model (folder or hub id).")
@click.option("--path", "paths", metavar="DIR", multiple=True,
              help="Also look here: an env, or a folder of envs such as /root/share/pre_envs (repeatable).")
@click.option("--depth", type=click.IntRange(0, 6), default=2, show_default=True,
              help="How many folder levels below each --path to search.")
@click.option("--no-discover", is_flag=True, help="Look only in --path folders, not in the usual places.")
@click.option("--facts", "facts_file", metavar="FILE",
              help="Take the GPU and driver facts from a saved snapshot (`lmdoctor facts --json`).")
@click.option("--verbose", "-v", is_flag=True, help="List every reason and problem of every env.")
@quiet_option
@lang_option
@click.argument("planned", nargs=-1, type=click.UNPROCESSED)
@input_errors
def command(as_json: bool, for_job: bool, model: Optional[str], paths: Tuple[str, ...], depth: int,
            no_discover: bool, facts_file: Optional[str], verbose: bool, quiet: bool, planned: Tuple[str, ...]) -> None:
    """Find the Python environment on this machine that will run a job (without activating any)."""
    from doctor.envs.job import Job
    from doctor.envs.score import live_machine_facts, machine_only
    from doctor.envs.survey import survey

    if for_job and not planned:
        fail_usage(tr("envs_for_needs_command"))
    for p in paths:
        if not os.path.isdir(p):
            fail_usage(tr("envs_no_such_path", path=p))
    if no_discover and not paths:
        fail_usage(tr("envs_no_discover_needs_path"))
    job = Job(argv=list(planned) or None, model=model)
    environ, cwd = dict(os.environ), os.getcwd()
    if facts_file:
        from doctor.facts import snapshot
        machine = machine_only(snapshot.load(facts_file))
        if model or planned:  # the model folder is read here, whatever the snapshot saw
            machine = machine.merged(live_machine_facts(job, environ, cwd, probes=("model",)))
    else:
        machine = live_machine_facts(job, environ, cwd)
    from doctor.render.console import status
    with status(tr("status_scanning_envs")):
        result = survey(job, machine, environ, cwd, paths=paths, defaults=not no_discover, depth=depth)
    if as_json:
        from doctor.render import print_json
        print_json(result.to_json())
    else:
        from doctor.render.envs_view import render_envs
        render_envs(result, verbose=verbose, quiet=quiet)
    sys.exit(result.exit_code)
