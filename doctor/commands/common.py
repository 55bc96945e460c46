"""Options and error handling shared by the subcommands."""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable, List, NoReturn, Optional, Sequence, Tuple

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


def quiet_option(fn: Callable) -> Callable:
    """--quiet means the same everywhere: only problems (errors, warnings, couldn't check) on stdout,
    nothing at all when healthy, no chatter on stderr."""
    return click.option("--quiet", "-q", is_flag=True,
                        help="Print only problems (errors, warnings, couldn't check); nothing when healthy.")(fn)


def redact_option(fn: Callable) -> Callable:
    """--no-redact: output that may be pasted somewhere is redacted by default (doctor/redact.py)."""
    return click.option("--no-redact", is_flag=True,
                        help="Keep secrets, home directories and user names in the output (do not share it).")(fn)


def lang_option(fn: Callable) -> Callable:
    """--lang on every subcommand too (`lmdoctor rules show GPU001 --lang zh`), same as the global one."""
    def set_language(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> None:
        if value:
            from doctor.i18n import set_lang
            set_lang(value)
    return click.option("--lang", type=click.Choice(["en", "zh"]), expose_value=False, is_eager=True,
                        callback=set_language, help="Language of the output (default: LMDOCTOR_LANG or the locale).")(fn)


def complete_rules(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """Shell completion of rule IDs and names (`lmdoctor rules show GP<TAB>`, `--ignore HO<TAB>`)."""
    from click.shell_completion import CompletionItem
    from doctor.ruleset import load_rules
    return [CompletionItem(r.id, help=r.title.get()) for r in load_rules().rules
            if r.id.startswith(incomplete.upper()) or r.name.startswith(incomplete)]


def selection_options(fn: Callable) -> Callable:
    """--select / --ignore: which rules run (also from [tool.lmdoctor] and ~/.config/lmdoctor/config.toml)."""
    fn = click.option("--ignore", "ignore", multiple=True, metavar="RULE", shell_complete=complete_rules,
                      help="Do not run these rules: ID (HOST003), ID prefix (HOST) or name; repeatable, "
                           "comma-separated. Adds to `ignore` of the config files.")(fn)
    fn = click.option("--select", "select", multiple=True, metavar="RULE", shell_complete=complete_rules,
                      help="Run only these rules (ID, ID prefix or name); overrides `select` of the config files.")(fn)
    return fn


def select_rules(rules: Sequence[Any], select: Sequence[str], ignore: Sequence[str], quiet: bool = False,
                 known: Optional[Sequence[Any]] = None) -> Tuple[List[Any], List[dict]]:
    """Apply the selection (doctor/config.py) to ``rules``: (rules to run, the JSON `ignored` list).

    A --select/--ignore value that matches no rule is a usage error (a typo would otherwise pass
    silently); in a config file it is only a warning, since the file may target another version.
    ``known`` is every rule of the catalogue (a config may name log rules that `check` never runs).
    """
    from doctor.config import ignored_json, load_selection
    from doctor.i18n import tr
    selection = load_selection(select, ignore)
    for entry in selection.unmatched(list(known if known is not None else rules)):
        if entry.source.startswith("--"):
            fail_usage(tr("err_option_matches_nothing", option=entry.source, pattern=entry.pattern))
        if not quiet:
            click.echo(f"lmdoctor: {tr('warning_word')}: "
                       + tr("warn_config_matches_nothing", source=entry.source, pattern=entry.pattern), err=True)
    kept, ignored = selection.split(rules)
    return kept, ignored_json(ignored)


def input_errors(fn: Callable) -> Callable:
    """Turn known bad-input exceptions into one line + exit 2."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from doctor.config import ConfigError
        from doctor.facts.snapshot import SnapshotError
        from doctor.facts.target import TargetError
        from doctor.ruleset import RuleError
        from doctor.yamlio import DataError
        try:
            return fn(*args, **kwargs)
        except (SnapshotError, TargetError, ConfigError) as exc:
            fail_usage(str(exc))
        except (RuleError, DataError) as exc:
            from doctor.i18n import tr
            fail_usage(tr("err_invalid_rule_data", error=exc))
    return wrapper
