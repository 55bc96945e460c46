"""The `lmdoctor` command group. Subcommands load lazily so `check` never pays for `explain`'s imports."""
from __future__ import annotations

import importlib
import os
import sys
from typing import List, Optional

import click

from doctor import __version__, exitcodes

COMMANDS = {
    "check": "doctor.commands.check:command",
    "envs": "doctor.commands.envs:command",
    "facts": "doctor.commands.facts:command",
    "explain": "doctor.commands.explain:command",
    "rules": "doctor.commands.rules:group",
    "report": "doctor.commands.report:command",
    "completion": "doctor.commands.completion:command",
    "run": "doctor.commands.run:command",
}

EPILOG = """\b
Examples:
  lmdoctor check                                   # pre-flight of this machine
  lmdoctor check -- lmdeploy chat /root/models/internlm2_5-7b-chat
  lmdoctor check --env icamp3_demo                 # another conda env, without activating it
  lmdoctor report chat.log -- lmdeploy chat /root/models/internlm2_5-7b-chat
                                                   # Markdown for an issue, secrets redacted
  lmdoctor facts --json > facts.json               # snapshot to attach to a bug report
  lmdoctor rules show GPU001 --lang zh             # a rule's page, in Chinese
  eval "$(lmdoctor completion bash)"               # tab completion
\b
Exit codes: 0 healthy, 1 errors, 2 usage/input error, 3 warnings only,
4 couldn't check, 5 unexplained failure (explain), 6 not fixable (run), 70 internal error.
"""


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lmdoctor")
@click.option("--lang", type=click.Choice(["en", "zh"]), default=None,
              help="Language of the output (default: from LMDOCTOR_LANG or the locale).")
def cli(lang: Optional[str]) -> None:
    """lmdoctor: environment doctor and crash diagnoser for LMDeploy."""
    from doctor.i18n import set_lang
    set_lang(lang)


def main(argv: Optional[List[str]] = None) -> None:
    """Console entry point: click handles usage errors (exit 2); anything unexpected is exit 70."""
    try:
        cli.main(args=argv, prog_name="lmdoctor", standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.stderr.write("lmdoctor: interrupted\n")
        sys.exit(130)
    except Exception as exc:  # a bug in lmdoctor must still end in one clear line
        if os.environ.get("LMDOCTOR_DEBUG"):
            raise
        sys.stderr.write(f"lmdoctor: internal error: {type(exc).__name__}: {exc}\n"
                         "  (this is a bug in lmdoctor; rerun with LMDOCTOR_DEBUG=1 for the traceback and report it)\n")
        sys.exit(exitcodes.INTERNAL)
