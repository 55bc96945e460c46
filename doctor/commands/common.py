"""Options and error handling shared by the subcommands."""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable, NoReturn

import click

from doctor import exitcodes


def fail_usage(message: str) -> NoReturn:
    """One clear line on stderr and the usage-error exit code (never a traceback)."""
    click.echo(f"lmdoctor: error: {message}", err=True)
    sys.exit(exitcodes.USAGE)


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print the versioned JSON document on stdout.")(fn)


def target_options(fn: Callable) -> Callable:
    """--python / --env / --facts: which environment (or saved snapshot) to examine."""
    fn = click.option("--facts", "facts_file", metavar="FILE",
                      help="Evaluate a saved snapshot (`lmdoctor facts --json`) instead of this machine.")(fn)
    fn = click.option("--env", "env_name", metavar="NAME",
                      help="Examine the conda env NAME (read from disk, not activated).")(fn)
    fn = click.option("--python", "python", metavar="PATH",
                      help="Examine the environment of this Python interpreter (not activated).")(fn)
    return fn


def input_errors(fn: Callable) -> Callable:
    """Turn known bad-input exceptions into one line + exit 2."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from doctor.facts.snapshot import SnapshotError
        from doctor.facts.target import TargetError
        from doctor.ruleset import RuleError
        from doctor.yamlio import DataError
        try:
            return fn(*args, **kwargs)
        except (SnapshotError, TargetError) as exc:
            fail_usage(str(exc))
        except (RuleError, DataError) as exc:
            fail_usage(f"invalid rule data: {exc}")
    return wrapper
