"""`lmdoctor check [-- PLANNED COMMAND]`: the pre-flight."""
from __future__ import annotations

import sys
from typing import Optional, Tuple

import click

from doctor.commands.common import fail_usage, input_errors, json_option, target_options

HELP_EPILOG = """\b
Examples:
  lmdoctor check
  lmdoctor check --json --strict            # for scripts: exit 0 only when fully healthy
  lmdoctor check --env icamp3_demo          # examine another conda env without activating it
  lmdoctor check -- lmdeploy serve api_server /root/models/internlm2_5-7b-chat --server-port 23333
  lmdoctor check -- streamlit run app.py --server.port 6006
  lmdoctor check --vram 8GiB --lmdeploy-version 0.5.3 -- lmdeploy chat /root/models/internlm2_5-7b-chat
  lmdoctor check --gpu A100-80G --gpu-slice 0.3 -- lmdeploy serve api_server OpenGVLab/InternVL2-26B

\b
Exit codes: 0 healthy, 1 errors, 2 usage error, 3 warnings only, 4 couldn't check.
"""


@click.command("check", epilog=HELP_EPILOG, context_settings={"ignore_unknown_options": True})
@json_option
@target_options
@click.option("--strict", is_flag=True, help="Warnings and couldn't-check also fail (exit 1).")
@click.option("--quiet", "-q", is_flag=True, help="Print only problems.")
@click.option("--lmdeploy-version", metavar="VERSION", help="Interpret the planned command with this lmdeploy version's flags.")
@click.option("--vram", metavar="SIZE", help="Plan for a GPU (or slice) with this much memory, e.g. 24GiB, 8192MiB.")
@click.option("--gpu", "gpu_card", metavar="NAME", help="Plan for this GPU card, e.g. A100-80G, H100, RTX-4090.")
@click.option("--gpu-slice", metavar="FRACTION", help="Plan for a fraction of the GPU, e.g. 0.3 for a 30% slice.")
@click.option("--backend", type=click.Choice(["turbomind", "pytorch"]), default=None,
              help="Plan for this engine (default: the command's --backend, else lmdeploy's choice).")
@click.argument("planned", nargs=-1, type=click.UNPROCESSED)
@input_errors
def command(as_json: bool, python: Optional[str], env_name: Optional[str], facts_file: Optional[str],
            strict: bool, quiet: bool, lmdeploy_version: Optional[str], vram: Optional[str], gpu_card: Optional[str],
            gpu_slice: Optional[str], backend: Optional[str], planned: Tuple[str, ...]) -> None:
    """Pre-flight: check this environment (and a planned launch) before deploying."""
    from doctor.engine import check_report
    from doctor.gather import Sources, gather
    from doctor.memory.hardware import HardwareError, plan_facts
    from doctor.ruleset import load_rules

    try:
        plan = plan_facts(vram, gpu_card, gpu_slice, backend)
    except HardwareError as exc:
        fail_usage(str(exc))
    if plan and not planned:
        click.echo("lmdoctor: note: --vram/--gpu/--gpu-slice/--backend plan a launch: give it after `--` "
                   "(lmdoctor check --vram 24GiB -- lmdeploy serve api_server MODEL)", err=True)
    facts, subject = gather(Sources(python=python, env=env_name, facts_file=facts_file,
                                    planned=list(planned) or None, lmdeploy_version=lmdeploy_version, plan=plan))
    rules = load_rules().env_rules()
    report = check_report(rules, facts, subject)
    report.extra["environment"] = {"facts_source": facts.source, "python": facts.value("py.executable"),
                                   "lmdeploy": facts.value("pkg.lmdeploy.version"), "gpus": facts.value("gpu.count")}
    if facts.value("fit.report") is not None:
        report.extra["fit"] = facts.value("fit.report")
    if as_json:
        from doctor.render import print_json
        print_json(report.to_json(strict))
    else:
        from doctor.render.check_view import render_check
        render_check(report, facts, quiet=quiet)
    sys.exit(report.exit_code(strict))
