"""Flag tables of the programs lmdoctor understands, by version (``rules/programs/<program>.yaml``).

A planned command can only be judged with the flag set of the version that will run it: lmdeploy
removed subcommands (``serve gradio`` in 0.10.0), added flags (``--dtype`` in 0.6.1), narrowed
choices (``--calib-dataset`` in 0.12.0) and turned ``--search-scale`` from ``type=bool`` into a
switch (0.6.3). ``rules/programs/lmdeploy.yaml`` is generated from every release's own argparse
code by ``tools/extract_lmdeploy_cli.py``; small tables such as ``streamlit.yaml`` are written by
hand from the program's documentation.

Table format (one file per program)::

    program: lmdeploy
    generated_from: ["0.5.0", "0.5.1", ...]   # versions whose sources built the table
    abbreviations: true                       # argparse accepts unique prefixes (click does not)
    flexible_flags: {since: "0.9.2"}          # optional: --foo_bar means --foo-bar, --opt.key V builds JSON
    root_flags: {--version: [{nargs: 0, action: version}]}
    subcommands:
      "serve api_server":
        since: "0.5.0"         # first version that has it (inclusive); omitted = every known version
        until: "0.10.0"        # first version without it (exclusive); omitted = still present
        positionals: [{name: model_path, nargs: 1}]     # plain names are accepted too
        flags:
          --server-port:
            - {nargs: 1, type: int, default: 23333}
          --search-scale:
            - {until: "0.6.3", nargs: 1, type: bool, default: false}
            - {since: "0.6.3", nargs: 0, action: store_true, default: false}
          --quant-policy:
            - {since: "0.14.0", nargs: 1, type: custom, accepts: {int8: 8, "8": 8, ...}, default: 0}

``nargs`` is 0 (switch), an integer, "?", "+" or "*". ``type`` is int | float | bool | json | custom
(absent = a string); a ``custom`` type lists every input it ``accepts`` and what it turns into.
``choices`` lists allowed values (after ``type`` conversion, as argparse compares them). ``action``
is given when it is not a plain store (``store_true``, ``store_false``, ``version``...). A flag has
one or more variants with disjoint version ranges, ordered oldest first; a variant's range is
inside its subcommand's. Versions compare with PEP 440 rules; an unknown version means the newest.
"""
from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from packaging.version import InvalidVersion, Version

from doctor import paths, yamlio

NARGS_WORDS = ("?", "+", "*")
TYPES = ("int", "float", "bool", "json", "custom")


@dataclass(frozen=True)
class FlagSpec:
    flag: str
    nargs: Any = 1
    type: Optional[str] = None
    default: Any = None
    choices: Optional[tuple] = None
    since: Optional[str] = None
    until: Optional[str] = None
    action: Optional[str] = None
    accepts: Optional[Tuple[Tuple[str, Any], ...]] = None

    @property
    def is_switch(self) -> bool:
        return self.nargs == 0

    def convert(self, text: str) -> Tuple[bool, Any]:
        """Apply the flag's ``type`` as argparse would: (ok, converted value)."""
        if self.accepts is not None:
            table = dict(self.accepts)
            key = text.lower() if text.lower() in table else text
            return (key in table, table.get(key))
        try:
            if self.type == "int":
                return True, int(text)
            if self.type == "float":
                return True, float(text)
            if self.type == "bool":
                return True, bool(text)      # argparse's type=bool: every non-empty string is True
            if self.type == "json":
                return True, json.loads(text)
        except ValueError:
            return False, None
        return True, text

    def problem(self, text: str) -> Optional[str]:
        """argparse's complaint about one value (``invalid choice: 'ptb' ...``), or None when accepted."""
        ok, value = self.convert(text)
        if not ok:
            if self.accepts is not None:
                names = [k for k, _ in self.accepts if not k.lstrip("-").isdigit()]
                nums = sorted({v for _, v in self.accepts if isinstance(v, int) and not isinstance(v, bool)})
                allowed = ", ".join(names + [str(n) for n in nums])
                return f"{self.flag}: invalid value {text!r} (accepted: {allowed})"
            return f"{self.flag}: invalid {self.type} value: {text!r}"
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            return f"{self.flag}: invalid choice: {text!r} (choose from {allowed})"
        return None


def parse_version(text: Optional[str]) -> Optional[Version]:
    if not text:
        return None
    try:
        return Version(str(text).split("+")[0])
    except InvalidVersion:
        return None


def in_range(version: Optional[str], since: Optional[str], until: Optional[str]) -> bool:
    """Whether ``version`` lies in [since, until); an unknown version means 'the newest'."""
    v = parse_version(version)
    if v is None:
        return until is None
    if since and v < Version(str(since)):
        return False
    if until and v >= Version(str(until)):
        return False
    return True


def _spec(flag: str, raw: Dict[str, Any]) -> FlagSpec:
    choices = raw.get("choices")
    accepts = raw.get("accepts")
    return FlagSpec(flag=flag, nargs=raw.get("nargs", 1), type=raw.get("type"), default=raw.get("default"),
                    choices=tuple(choices) if choices is not None else None,
                    since=_str(raw.get("since")), until=_str(raw.get("until")), action=raw.get("action"),
                    accepts=tuple((str(k), v) for k, v in accepts.items()) if accepts else None)


def _str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


class ProgramTable:
    """One program's table: subcommands and flags with the version ranges they exist in."""

    def __init__(self, data: Dict[str, Any], source: str):
        self.name = data.get("program", "")
        self.source = source
        self.generated_from: List[str] = [str(v) for v in data.get("generated_from", [])]
        self._subs: Dict[str, Dict[str, Any]] = data.get("subcommands") or {}
        self._root: Dict[str, List[Dict[str, Any]]] = data.get("root_flags") or {}
        self._flexible: Optional[Dict[str, Any]] = data.get("flexible_flags")
        self._abbreviations = bool(data.get("abbreviations", True))   # argparse allows them, click does not
        # Longest names first so that "serve api_server" wins over a hypothetical "serve".
        self._names = sorted(self._subs, key=lambda s: -len(s.split()))
        self._groups = {n.split()[0] for n in self._subs if len(n.split()) > 1}

    # -- subcommands ---------------------------------------------------------------------------
    def match_subcommand(self, rest: Sequence[str]) -> str:
        """The subcommand the words after the program name select ('' when none).

        A word after a group (``serve gradio``) is kept even when the table lacks it, so that
        "removed in" / "unknown subcommand" can still name what was asked for.
        """
        words = list(rest[:3])
        for name in self._names:
            parts = name.split()
            if words[: len(parts)] == parts:
                return name
        if not words or words[0].startswith("-"):
            return ""
        if words[0] in self._groups:
            if len(words) >= 2 and not words[1].startswith("-"):
                return " ".join(words[:2])
            return words[0]
        return words[0]

    def _sub(self, sub: str) -> Dict[str, Any]:
        return self._subs.get(sub) or {}

    def knows_subcommand(self, sub: str) -> bool:
        """Whether any version in the table has it."""
        return sub in self._subs

    def is_group(self, sub: str) -> bool:
        return sub in self._groups

    def has_subcommand(self, sub: str, version: Optional[str]) -> bool:
        spec = self._subs.get(sub)
        return spec is not None and in_range(version, _str(spec.get("since")), _str(spec.get("until")))

    def subcommand_until(self, sub: str) -> Optional[str]:
        return _str(self._sub(sub).get("until"))

    def subcommand_since(self, sub: str) -> Optional[str]:
        return _str(self._sub(sub).get("since"))

    def subcommands(self, version: Optional[str]) -> List[str]:
        return [s for s in self._subs if self.has_subcommand(s, version)]

    def suggest_subcommand(self, sub: str, version: Optional[str]) -> Optional[str]:
        """The closest subcommand of that version to a mistyped one (``serve api-server``)."""
        close = difflib.get_close_matches(sub, self.subcommands(version), n=1, cutoff=0.75)
        return close[0] if close else None

    def positionals(self, sub: str, version: Optional[str]) -> List[Dict[str, Any]]:
        """Positional arguments of the subcommand in that version: [{name, nargs, ...}]."""
        raw = self._sub(sub).get("positionals") or []
        if raw and isinstance(raw[0], dict) and "args" in raw[0]:   # ranged form: [{since, until, args}]
            raw = next((r["args"] for r in raw if in_range(version, _str(r.get("since")), _str(r.get("until")))), [])
        return [{"name": p, "nargs": 1} if isinstance(p, str) else dict(p) for p in raw]

    # -- flags -----------------------------------------------------------------------------------
    def flags(self, sub: str, version: Optional[str]) -> Dict[str, FlagSpec]:
        return _flags_for(self, sub, str(version) if version else "")

    def flag(self, sub: str, flag: str, version: Optional[str]) -> Optional[FlagSpec]:
        return self.flags(sub, version).get(flag)

    def variants(self, sub: str, flag: str) -> List[FlagSpec]:
        raw = (self._sub(sub).get("flags") or {}) if sub else self._root
        return [_spec(flag, v) for v in raw.get(flag, [])]

    def any_variant(self, sub: str, flag: str, version: Optional[str]) -> Optional[FlagSpec]:
        """The flag as that version defines it, else as the nearest version that has it.

        Used to read a flag the version lacks (``--eager-mode`` on 0.5.1) with its real arity, so
        that the rest of the command still parses as the user meant it.
        """
        exact = self.flag(sub, flag, version)
        if exact is not None:
            return exact
        variants = self.variants(sub, flag)
        if not variants:
            return None
        v = parse_version(version)
        if v is None:
            return variants[-1]
        later = [s for s in variants if s.since and Version(s.since) > v]
        return later[0] if later else variants[-1]

    def flexible(self, version: Optional[str]) -> bool:
        """Whether the version's parser rewrites ``--foo_bar`` → ``--foo-bar`` and ``--opt.key``."""
        if not self._flexible:
            return False
        return in_range(version, _str(self._flexible.get("since")), _str(self._flexible.get("until")))

    def resolve_flag(self, sub: str, written: str, version: Optional[str]) -> str:
        """The flag argparse would match for what was written: exact, flexible spelling, or a unique prefix."""
        known = self.flags(sub, version)
        if written in known:
            return written
        name = written
        if self.flexible(version) and written.startswith("--"):
            base = written[2:].split(".", 1)[0]
            name = "--" + base.replace("_", "-")
            if name in known:
                return name
        if name.startswith("--") and self._abbreviations:   # argparse's allow_abbrev: a unique prefix selects the flag
            hits = [f for f in known if f.startswith(name) and f.startswith("--")]
            if len(hits) == 1:
                return hits[0]
        return name

    def flag_history(self, sub: str, flag: str, version: Optional[str] = None) -> Optional[str]:
        """Why a flag is missing in ``version``: '--dtype: added in 0.6.1' / '--cap: removed in 0.6.0'.

        Also says when the flag belongs to other subcommands only, or suggests a close spelling.
        """
        variants = self.variants(sub, flag)
        if not variants:
            elsewhere = [s for s in self._subs if s != sub and flag in (self._sub(s).get("flags") or {})]
            if elsewhere:
                return f"{flag}: not a flag of `{sub}` in any version (it belongs to {', '.join(sorted(elsewhere)[:3])})"
            close = difflib.get_close_matches(flag, list(self.flags(sub, version)), n=1, cutoff=0.8)
            if close:
                return f"{flag}: unknown in every version; did you mean {close[0]}?"
            return None
        v = parse_version(version)
        sinces = [Version(s.since) for s in variants if s.since]
        untils = [Version(s.until) for s in variants if s.until]
        first_since = None if any(not s.since for s in variants) else min(sinces)
        last_until = None if any(not s.until for s in variants) else max(untils)
        if v is None:
            if last_until is not None:
                return f"{flag}: removed in {last_until}"
            return f"{flag}: added in {first_since}" if first_since is not None else None
        if first_since is not None and v < first_since:
            return f"{flag}: added in {first_since}"
        if last_until is not None and v >= last_until:
            return f"{flag}: removed in {last_until}"
        ranges = ", ".join(f"{s.since or 'first'}..{s.until or 'latest'}" for s in variants)
        return f"{flag}: not available in {version} (exists in {ranges})"

    def invalid_choices(self, cmd: Any) -> List[str]:
        """Values argparse would reject for that version (choices, accepted names, type conversion)."""
        out = []
        known = self.flags(cmd.subcommand, cmd.version)
        flexible = self.flexible(cmd.version)
        for tok in cmd.tokens:
            spec = known.get(tok.flag)
            if spec is None or spec.is_switch or (flexible and "." in tok.written.lstrip("-")):
                continue   # `--hf-overrides.key value` is assembled into JSON by lmdeploy itself
            for text in tok.values:
                problem = spec.problem(text)
                if problem:
                    out.append(problem)
        return out


@functools.lru_cache(maxsize=512)
def _flags_for(table: ProgramTable, sub: str, version: str) -> Dict[str, FlagSpec]:
    out: Dict[str, FlagSpec] = {}
    raw_flags = (table._sub(sub).get("flags") or {}) if sub else table._root
    for flag, variants in raw_flags.items():
        for raw in variants:
            if in_range(version or None, _str(raw.get("since")), _str(raw.get("until"))):
                out[flag] = _spec(flag, raw)
                break
    return out


def validate(table: ProgramTable) -> List[str]:
    """Integrity problems of a table (tests assert there are none): ranges, nargs, types, choices."""
    problems: List[str] = []

    def check_range(where: str, since: Optional[str], until: Optional[str]) -> None:
        for label, value in (("since", since), ("until", until)):
            if value is not None and parse_version(value) is None:
                problems.append(f"{where}: {label} {value!r} is not a version")
        if since and until and parse_version(since) and parse_version(until) and \
                parse_version(since) >= parse_version(until):
            problems.append(f"{where}: since {since} is not before until {until}")

    def check_variants(where: str, variants: Any, sub_since: Optional[str], sub_until: Optional[str]) -> None:
        if not isinstance(variants, list) or not variants:
            problems.append(f"{where}: needs a non-empty list of variants")
            return
        prev_until: Optional[Version] = None
        for i, raw in enumerate(variants):
            w = f"{where}[{i}]"
            spec = _spec(where.rsplit(" ", 1)[-1], raw)
            check_range(w, spec.since, spec.until)
            lo = parse_version(spec.since or sub_since) or Version("0")
            if i > 0 and (prev_until is None or lo < prev_until):
                problems.append(f"{w}: overlaps or is out of order with the variant before it")
            prev_until = parse_version(spec.until or sub_until) if (spec.until or sub_until) else None
            if i < len(variants) - 1 and prev_until is None:
                problems.append(f"{w}: open-ended variant is not the last one")
            nargs = spec.nargs
            if not (isinstance(nargs, int) and nargs >= 0 or nargs in NARGS_WORDS):
                problems.append(f"{w}: invalid nargs {nargs!r}")
            if spec.type is not None and spec.type not in TYPES:
                problems.append(f"{w}: unknown type {spec.type!r}")
            if spec.type == "custom" and not spec.accepts:
                problems.append(f"{w}: a custom type needs `accepts`")
            if spec.is_switch and (spec.type or spec.choices):
                problems.append(f"{w}: a switch (nargs 0) has no type or choices")
            if spec.action in ("store_true", "store_false") and not spec.is_switch:
                problems.append(f"{w}: {spec.action} must have nargs 0")
            if spec.choices is not None and spec.default is not None and spec.default not in spec.choices \
                    and spec.nargs in (1, "?"):
                problems.append(f"{w}: default {spec.default!r} is not among its choices")
            for key in ("since", "until"):
                value = getattr(spec, key)
                if value and sub_since and parse_version(value) < parse_version(sub_since):
                    problems.append(f"{w}: {key} {value} lies before the subcommand exists ({sub_since})")
                if value and sub_until and parse_version(value) > parse_version(sub_until):
                    problems.append(f"{w}: {key} {value} lies after the subcommand is gone ({sub_until})")

    for flag, variants in table._root.items():
        check_variants(f"root {flag}", variants, None, None)
    for sub, entry in table._subs.items():
        since, until = _str(entry.get("since")), _str(entry.get("until"))
        check_range(f"subcommand {sub!r}", since, until)
        if not isinstance(entry.get("positionals", []), list):
            problems.append(f"subcommand {sub!r}: positionals must be a list")
        for flag, variants in (entry.get("flags") or {}).items():
            if not str(flag).startswith("-"):
                problems.append(f"subcommand {sub!r}: flag {flag!r} does not start with '-'")
            check_variants(f"{sub} {flag}", variants, since, until)
    return problems


@functools.lru_cache(maxsize=16)
def load_program(program: str) -> Optional[ProgramTable]:
    path = paths.data_file("programs", f"{program}.yaml")
    if not path.is_file():
        return None
    return ProgramTable(yamlio.load(path) or {}, str(path))
