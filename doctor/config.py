"""Which rules run: ``--select`` / ``--ignore``, ``[tool.lmdoctor]`` in a project, a user config file.

A known, accepted warning (a shared host where inotify cannot be raised, a port you know is taken)
should be silenced once instead of failing every script. Sources, most important first:

1. the command line: ``--select PATTERN`` / ``--ignore PATTERN`` (repeatable or comma-separated);
2. the project: ``[tool.lmdoctor]`` of the nearest ``pyproject.toml`` that has one, from the current
   directory upwards;
3. the user: ``$XDG_CONFIG_HOME/lmdoctor/config.toml`` (default ``~/.config/lmdoctor/config.toml``),
   with the same keys at the top level.

A pattern is a rule ID (``HOST003``), an ID prefix (``HOST``, ``GPU0``) or a rule name
(``inotify-watch-limit``). ``select`` is taken from the most important source that sets it (default:
every rule); ``ignore`` adds up over all sources. A rule runs when it is selected and not ignored,
where the more specific pattern wins (an exact ID or name beats a prefix, a longer prefix beats a
shorter one); between equally specific ones the more important source wins, and within one source
ignore wins. So ``--select HOST003`` runs HOST003 even when a config file ignores ``HOST`` or
``HOST003``, while ``--select HOST`` does not bring back a ``HOST003`` the project ignores. Rules that do not run are reported as ``ignored`` (JSON) and counted in the
summary, never silently dropped. Commands call :func:`load_selection` and :meth:`Selection.split`.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

KEYS = {
    "select": "rules to run (IDs, ID prefixes or names); default every rule",
    "ignore": "rules never to run (IDs, ID prefixes or names)",
}
_PREFIX_RE = re.compile(r"^[A-Za-z]{2,5}\d{0,3}$")
PATTERN_RE = re.compile(r"^(?:[A-Za-z]{2,5}\d{0,3}|[a-z0-9]+(?:-[a-z0-9]+)*)$")
EXACT = 1000  # strength of an exact ID or name match; a prefix match is as strong as it is long
_SECTION_RE = re.compile(r"^\s*\[\s*tool\s*\.\s*lmdoctor\s*\]", re.M)


class ConfigError(Exception):
    """A config file or a --select/--ignore value is unusable; the message is one line."""


@dataclass(frozen=True)
class Entry:
    pattern: str
    source: str    # "--ignore", "--select", or the config file path
    rank: int = 0  # 0 command line, 1 project, 2 user: breaks ties between select and ignore

    def strength(self, rule: Any) -> int:
        """0 when the pattern does not match the rule, else how specific the match is."""
        p = self.pattern
        if p.upper() == rule.id or p == rule.name:
            return EXACT
        if _PREFIX_RE.match(p) and rule.id.startswith(p.upper()):
            return len(p)
        return 0


@dataclass
class Selection:
    select: Optional[List[Entry]] = None      # None: every rule is selected
    ignore: List[Entry] = field(default_factory=list)

    def reason(self, rule: Any) -> Optional[Entry]:
        """The entry that keeps ``rule`` from running, or None when it runs."""
        best_ignore = max(self.ignore, key=lambda e: (e.strength(rule), -e.rank), default=None)
        if self.select is None:
            best_select = None
        else:
            best_select = max(self.select, key=lambda e: (e.strength(rule), -e.rank))
            if best_select.strength(rule) == 0:
                return Entry("", best_select.source, best_select.rank)  # not selected
        if best_ignore is None or best_ignore.strength(rule) == 0:
            return None
        if best_select is None:
            return best_ignore
        ignore_key = (best_ignore.strength(rule), -best_ignore.rank)
        return best_ignore if ignore_key >= (best_select.strength(rule), -best_select.rank) else None

    def split(self, rules: Iterable[Any]) -> Tuple[List[Any], List[Tuple[Any, Entry]]]:
        """(rules that run, [(rule, why not)]) in the given order."""
        kept, ignored = [], []
        for rule in rules:
            why = self.reason(rule)
            if why is None:
                kept.append(rule)
            else:
                ignored.append((rule, why))
        return kept, ignored

    def unmatched(self, rules: Sequence[Any]) -> List[Entry]:
        """Entries that match no rule at all (a typo, or a rule of another lmdoctor version)."""
        return [e for e in (self.select or []) + self.ignore if not any(e.strength(r) for r in rules)]


def ignored_json(ignored: Sequence[Tuple[Any, Entry]]) -> List[Dict[str, str]]:
    """The ``ignored`` list of the JSON document: each rule that did not run, and why."""
    return [{"rule": rule.id, "title": rule.title.get(), "area": rule.area,
             "by": entry.pattern or "not selected", "source": entry.source} for rule, entry in ignored]


# -- loading ----------------------------------------------------------------------------------
def _toml_load(path: Path) -> Dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.9/3.10 only
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _entries(table: Mapping[str, Any], where: str, source: str, rank: int) -> Dict[str, List[Entry]]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table of settings")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})")
    out: Dict[str, List[Entry]] = {}
    for key, value in table.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: '{key}' must be a list of strings, e.g. {key} = [\"HOST003\"]")
        out[key] = [_entry(v, f"{where}: {key}", source, rank) for v in value]
    return out


def _entry(pattern: str, where: str, source: str, rank: int = 0) -> Entry:
    pattern = pattern.strip()
    if not PATTERN_RE.match(pattern):
        raise ConfigError(f"{where}: {pattern!r} is not a rule ID (HOST003), ID prefix (HOST) or rule name")
    return Entry(pattern, source, rank)


def user_config_path(environ: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return Path(base) / "lmdoctor" / "config.toml"


def project_config_path(cwd: Optional[str] = None) -> Optional[Path]:
    """The nearest pyproject.toml (from ``cwd`` upwards) with a ``[tool.lmdoctor]`` table.

    Files are only parsed when their text has the table header, so an unrelated (or broken)
    pyproject.toml further up never slows down or breaks lmdoctor.
    """
    here = Path(cwd or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        try:
            text = candidate.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if _SECTION_RE.search(text):
            return candidate
    return None


def load_selection(select: Sequence[str] = (), ignore: Sequence[str] = (), cwd: Optional[str] = None,
                   environ: Optional[Mapping[str, str]] = None) -> Selection:
    """Combine the command line, the project and the user config (raises :class:`ConfigError`)."""
    layers: List[Dict[str, List[Entry]]] = []  # most important first
    cli: Dict[str, List[Entry]] = {}
    for key, values in (("select", select), ("ignore", ignore)):
        items = [p for v in values for p in v.split(",") if p.strip()]
        if items:
            cli[key] = [_entry(p, f"--{key}", f"--{key}") for p in items]
    layers.append(cli)
    sel = Selection()
    project = project_config_path(cwd)
    if project is not None:
        table = _toml_load(project).get("tool", {}).get("lmdoctor", {})
        layers.append(_entries(table, f"{project}: [tool.lmdoctor]", str(project), 1))
    user = user_config_path(environ)
    if user.is_file():
        layers.append(_entries(_toml_load(user), str(user), str(user), 2))
    for layer in layers:
        if sel.select is None and layer.get("select"):  # an empty list leaves select unset
            sel.select = layer["select"]
        sel.ignore.extend(layer.get("ignore", []))
    return sel
