"""`lmdoctor check [-- PLANNED COMMAND]`: the pre-flight."""
from __future__ import annotations

import sys
from typing import Optional, Sequence, Tuple

import click

from doctor.commands.common import (fail_usage, input_errors, json_option, lang_option, quiet_option, select_rules,
                                    selection_options, target_options)

HELP_EPILOG = """\b
Examples:
  lmdoctor check                                  # pre-flight of this machine
\b
  # internlm2_5-7b-chat on an 8 GiB slice: does it fit before TurboMind runs out of memory?
  lmdoctor check -- lmdeploy chat /root/models/internlm2_5-7b-chat
\b
  # InternVL2-26B quantized to AWQ on a 24 GiB slice (30% of an A100), as the tutorial serves it
  lmdoctor check -- lmdeploy serve api_server /root/models/InternVL2-26B-w4a16-4bit \\
      --model-format awq --quant-policy 4 --cache-max-entry-count 0.1 --server-port 23333 --tp 1
\b
  # the gradio VLM demo dies with "Aborted (core dumped)" in env demo; the preset env works
  lmdoctor check --env icamp3_demo -- lmdeploy serve gradio \\
      /share/new_models/Shanghai_AI_Laboratory/internlm-xcomposer2-vl-1_8b --cache-max-entry-count 0.1
\b
  # the Streamlit demo on a shared container (inotify watch limit, no root)
  lmdoctor check -- streamlit run /root/demo/Tutorial/tools/streamlit_demo.py \\
      --server.address 127.0.0.1 --server.port 6006
\b
  lmdoctor check --json --strict                  # scripts: exit 0 only when fully healthy
  lmdoctor check --quiet --ignore GPU001          # only problems; an accepted finding silenced
  lmdoctor check --facts facts.json --lang zh     # judge a saved snapshot, in Chinese
\b
  # plan for other hardware or another lmdeploy from a laptop
  lmdoctor check --vram 8GiB --lmdeploy-version 0.5.3 -- lmdeploy chat /root/models/internlm2_5-7b-chat
  lmdoctor check --gpu A100-80G --gpu-slice 0.3 -- lmdeploy serve api_server OpenGVLab/InternVL2-26B
\b
Exit codes: 0 healthy, 1 errors, 2 usage error, 3 warnings only, 4 couldn't check.
"""


@click.command("check", epilog=HELP_EPILOG, context_settings={"ignore_unknown_options": True})
@json_option
@target_options
@click.option("--strict", is_flag=True, help="Warnings and couldn't-check also fail (exit 1).")
@quiet_option
@selection_options
@lang_option
@click.option("--lmdeploy-version", metavar="VERSION", help="Interpret the planned command with this lmdeploy version's flags.")
@click.option("--vram", metavar="SIZE", help="Plan for a GPU (or slice) with this much memory, e.g. 24GiB, 8192MiB.")
@click.option("--gpu", "gpu_card", metavar="NAME", help="Plan for this GPU card, e.g. A100-80G, H100, RTX-4090.")
@click.option("--gpu-slice", metavar="FRACTION", help="Plan for a fraction of the GPU, e.g. 0.3 for a 30% slice.")
@click.option("--backend", type=click.Choice(["turbomind", "pytorch"]), default=None,
              help="Plan for this engine (default: the command's --backend, else lmdeploy's choice).")
@click.argument("planned", nargs=-1, type=click.UNPROCESSED)
@input_errors
def command(as_json: bool, python: Optional[str], env_name: Optional[str], facts_file: Optional[str],
            strict: bool, quiet: bool, select: Tuple[str, ...], ignore: Tuple[str, ...],
            lmdeploy_version: Optional[str], vram: Optional[str], gpu_card: Optional[str],
            gpu_slice: Optional[str], backend: Optional[str], planned: Tuple[str, ...]) -> None:
    """Pre-flight: check this environment (and a planned launch) before deploying."""
    from doctor.gather import Sources
    from doctor.memory.hardware import HardwareError, plan_facts

    try:
        plan = plan_facts(vram, gpu_card, gpu_slice, backend)
    except HardwareError as exc:
        fail_usage(str(exc))
    if plan and not planned:
        click.echo("lmdoctor: " + tr("check_plan_needs_command"), err=True)
    report, facts, _ = evaluate(Sources(python=python, env=env_name, facts_file=facts_file, plan=plan,
                                        planned=list(planned) or None, lmdeploy_version=lmdeploy_version),
                                select, ignore, quiet)
    if as_json:
        from doctor.render import print_json
        print_json(report.to_json(strict))
    else:
        from doctor.render.check_view import render_check
        render_check(report, facts, quiet=quiet)
    sys.exit(report.exit_code(strict))


def evaluate(sources, select: Sequence[str] = (), ignore: Sequence[str] = (), quiet: bool = False,
             kind: Optional[str] = "env"):
    """What `check` computes — (Report, FactSet, planned Command or None) — shared with `report`.

    The rule selection is applied first so a bad --select/--ignore fails before any probing.
    ``kind=None`` (report) loads the log rules too, so --ignore may name them for its explain part.
    """
    from doctor.gather import gather_in_background

    # Observing the machine waits on subprocesses (the examined interpreter) and the file system,
    # while importing the engine and loading the rules is pure Python, so the two overlap.
    observed = gather_in_background(sources)
    from doctor.engine import check_report
    from doctor.i18n import tr
    from doctor.render.console import status
    from doctor.ruleset import load_rules

    catalogue = load_rules(kind=kind)
    rules, ignored = select_rules(catalogue.env_rules(), select, ignore, quiet, known=catalogue.rules)
    with status(tr("status_gathering")):
        facts, subject = observed()
    report = check_report(rules, facts, subject)
    report.extra["ignored"] = ignored
    report.extra["environment"] = {"facts_source": facts.source, "python": facts.value("py.executable"),
                                   "lmdeploy": facts.value("pkg.lmdeploy.version"), "gpus": facts.value("gpu.count")}
    if facts.value("fit.report") is not None:
        report.extra["fit"] = facts.value("fit.report")
    return report, facts, subject
