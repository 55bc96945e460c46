"""`lmdoctor completion bash|zsh|fish`: print the shell completion script (click's own mechanism)."""
from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_LMDOCTOR_COMPLETE"

HELP_EPILOG = """\b
Examples:
  eval "$(lmdoctor completion bash)"                 # try it in this shell
  lmdoctor completion bash >> ~/.bashrc              # every new bash
  lmdoctor completion zsh > ~/.zfunc/_lmdoctor       # zsh (with ~/.zfunc in fpath)
  _LMDOCTOR_COMPLETE=bash_source lmdoctor            # the same script, straight from click
\b
Then `lmdoctor ch<TAB>` completes `check`, `lmdoctor check --fa<TAB>` completes `--facts`.
"""


@click.command("completion", epilog=HELP_EPILOG)
@click.argument("shell", type=click.Choice(SHELLS))
def command(shell: str) -> None:
    """Print the completion script of SHELL (bash, zsh or fish) for lmdoctor."""
    from click.shell_completion import get_completion_class

    from doctor.cli import cli
    cls = get_completion_class(shell)
    click.echo(cls(cli, {}, "lmdoctor", COMPLETE_VAR).source())
