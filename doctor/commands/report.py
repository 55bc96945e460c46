"""`lmdoctor report [LOG] [-- PLANNED COMMAND]`: one Markdown document to paste into an issue or a chat group."""
from __future__ import annotations

import sys
from typing import Any, List, Optional, Tuple

import click

from doctor.commands.common import (fail_usage, input_errors, lang_option, quiet_option, selection_options,
                                    target_options)

HELP_EPILOG = """\b
Examples:
  # the internlm2_5-7b-chat out-of-memory crash on an 8 GiB slice, ready to paste into an issue
  lmdeploy chat /root/models/internlm2_5-7b-chat 2>&1 | tee chat.log
  lmdoctor report chat.log -- lmdeploy chat /root/models/internlm2_5-7b-chat
\b
  # the InternVL2-26B AWQ server on a 24 GiB slice (the API key is redacted)
  lmdoctor report -o report.md -- lmdeploy serve api_server /root/models/InternVL2-26B-w4a16-4bit \\
      --model-format awq --quant-policy 4 --cache-max-entry-count 0.1 --api-keys sk-...
\b
  # the gradio VLM demo that dies with "Aborted (core dumped)": report on the env that crashed
  lmdoctor report --env demo gradio.log -- lmdeploy serve gradio \\
      /share/new_models/Shanghai_AI_Laboratory/internlm-xcomposer2-vl-1_8b --cache-max-entry-count 0.1
\b
  lmdoctor --lang zh report streamlit.log    # in Chinese, for the chat group (inotify limit)
  lmdoctor report --facts facts.json         # from a saved snapshot
\b
Secrets (API keys, tokens, passwords in URLs, proxy credentials, private keys), home directories,
user and host names are redacted unless --no-redact is given. Exit codes: 0 report written,
2 usage error or unreadable input.
"""
PLANNED_KEY = "lmdoctor.planned"


class SplitAtDoubleDash(click.Command):
    """What follows ``--`` is the planned command, never the LOG argument."""

    def parse_args(self, ctx: click.Context, args: List[str]) -> List[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta[PLANNED_KEY] = args[cut + 1:]
            args = args[:cut]
        return super().parse_args(ctx, args)


@click.command("report", cls=SplitAtDoubleDash, epilog=HELP_EPILOG)
@click.argument("log", required=False, metavar="[LOG]")
@target_options
@click.option("--output", "-o", "output", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option("--no-redact", is_flag=True, help="Keep secrets, home directories and user names (do not share the result).")
@click.option("--lmdeploy-version", metavar="VERSION", help="Interpret the planned command with this lmdeploy version's flags.")
@selection_options
@quiet_option
@lang_option
@input_errors
def command(log: Optional[str], python: Optional[str], env_name: Optional[str], facts_file: Optional[str],
            output: Optional[str], no_redact: bool, lmdeploy_version: Optional[str], select: Tuple[str, ...],
            ignore: Tuple[str, ...], quiet: bool) -> None:
    """Markdown report (facts, check result, planned command, log diagnosis) to paste into an issue."""
    from doctor import exitcodes
    from doctor.commands.check import evaluate
    from doctor.gather import Sources
    from doctor.i18n import tr
    from doctor.redact import Redactor
    from doctor.report import SectionContext, build

    planned = click.get_current_context().meta.get(PLANNED_KEY) or None
    log_text = read_log(log) if log else None
    check, facts, subject = evaluate(Sources(python=python, env=env_name, facts_file=facts_file, planned=planned,
                                             lmdeploy_version=lmdeploy_version), select, ignore, quiet,
                                    kind=None)
    ctx = SectionContext(facts=facts, check=check, planned=subject, log_text=log_text, log_name=log,
                         redactor=Redactor(enabled=not no_redact), select=select, ignore=ignore)
    document = build(ctx)
    if output:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(document)
        except OSError as exc:
            fail_usage(tr("err_cannot_write", path=output, error=exc.strerror or exc))
        if not quiet:
            click.echo(f"lmdoctor: {tr('report_written', path=output)}", err=True)
    else:
        _write_stdout(document)
    sys.exit(exitcodes.OK)


def read_log(path: str) -> str:
    """The whole log (``-`` is stdin); bytes that are not UTF-8 are replaced, never fatal."""
    from doctor.i18n import tr
    try:
        if path == "-":
            data: Any = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        fail_usage(tr("err_cannot_read_log", path=path, error=exc.strerror or exc))
    return data.decode("utf-8", "replace")


def _write_stdout(text: str) -> None:
    """UTF-8 whatever the locale says (a Chinese report must not die on an ASCII terminal)."""
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.flush()
