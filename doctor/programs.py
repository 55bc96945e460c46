"""Flag tables of the programs lmdoctor understands, by version (``rules/programs/<program>.yaml``).

Table format (one file per program)::

    program: lmdeploy
    generated_from: ["0.5.0", "0.5.1", ...]   # versions whose sources built the table (informational)
    subcommands:
      "serve api_server":
        since: "0.5.0"         # first version that has it (inclusive); omitted = every known version
        until: "0.10.0"        # first version without it (exclusive); omitted = still present
        positionals: [model_path]
        flags:
          --server-port:
            - {nargs: 1, type: int, default: 23333}
          --search-scale:
            - {until: "0.7.0", nargs: 1, type: bool, default: false}
            - {since: "0.7.0", nargs: 0, default: false}

``nargs`` is 0 (switch), 1, "?", "+" or "*". A flag has one or more variants with disjoint version
ranges; ``choices`` lists allowed values. Versions compare with PEP 440 rules.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from packaging.version import InvalidVersion, Version

from doctor import paths, yamlio


@dataclass(frozen=True)
class FlagSpec:
    flag: str
    nargs: Any = 1
    type: Optional[str] = None
    default: Any = None
    choices: Optional[tuple] = None
    since: Optional[str] = None
    until: Optional[str] = None


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
    if since and v < Version(since):
        return False
    if until and v >= Version(until):
        return False
    return True


class ProgramTable:
    def __init__(self, data: Dict[str, Any], source: str):
        self.name = data.get("program", "")
        self.source = source
        self.generated_from: List[str] = [str(v) for v in data.get("generated_from", [])]
        self._subs: Dict[str, Dict[str, Any]] = data.get("subcommands") or {}
        # Longest names first so that "serve api_server" wins over a hypothetical "serve".
        self._names = sorted(self._subs, key=lambda s: -len(s.split()))

    def match_subcommand(self, rest: Sequence[str]) -> str:
        words = [w for w in rest[:3]]
        for name in self._names:
            parts = name.split()
            if words[: len(parts)] == parts:
                return name
        # An unknown sub-subcommand ("serve gradio" in a table without it) still names what was asked.
        if len(words) >= 2 and any(n.split()[0] == words[0] and len(n.split()) == 2 for n in self._names):
            return " ".join(words[:2])
        return words[0] if words and not words[0].startswith("-") and any(n.split()[0] == words[0] for n in self._names) else ""

    def _sub(self, sub: str) -> Dict[str, Any]:
        return self._subs.get(sub) or {}

    def has_subcommand(self, sub: str, version: Optional[str]) -> bool:
        spec = self._subs.get(sub)
        return spec is not None and in_range(version, spec.get("since"), spec.get("until"))

    def subcommand_until(self, sub: str) -> Optional[str]:
        return self._sub(sub).get("until")

    def subcommand_since(self, sub: str) -> Optional[str]:
        return self._sub(sub).get("since")

    def subcommands(self, version: Optional[str]) -> List[str]:
        return [s for s in self._subs if self.has_subcommand(s, version)]

    def flags(self, sub: str, version: Optional[str]) -> Dict[str, FlagSpec]:
        return _flags_for(self, sub, str(version) if version else "")

    def flag(self, sub: str, flag: str, version: Optional[str]) -> Optional[FlagSpec]:
        return self.flags(sub, version).get(flag)

    def variants(self, sub: str, flag: str) -> List[FlagSpec]:
        return [_spec(flag, v) for v in (self._sub(sub).get("flags") or {}).get(flag, [])]

    def flag_history(self, sub: str, flag: str) -> Optional[str]:
        """'--dtype: added in 0.6.1' / '--foo: removed in 0.10.0' for a flag missing in some version."""
        variants = self.variants(sub, flag)
        if not variants:
            return None
        sinces = [v.since for v in variants if v.since]
        untils = [v.until for v in variants if v.until]
        if untils and all(v.until for v in variants):
            return f"{flag}: removed in {max(untils, key=Version)}"
        if sinces and all(v.since for v in variants):
            return f"{flag}: added in {min(sinces, key=Version)}"
        return None

    def invalid_choices(self, cmd: Any) -> List[str]:
        out = []
        known = self.flags(cmd.subcommand, cmd.version)
        for tok in cmd.tokens:
            spec = known.get(tok.flag)
            if spec and spec.choices and tok.values and tok.values[0] not in spec.choices:
                out.append(f"{tok.flag} {tok.values[0]} (choose from {', '.join(map(str, spec.choices))})")
        return out


def _spec(flag: str, raw: Dict[str, Any]) -> FlagSpec:
    choices = raw.get("choices")
    return FlagSpec(flag=flag, nargs=raw.get("nargs", 1), type=raw.get("type"), default=raw.get("default"),
                    choices=tuple(choices) if choices else None, since=raw.get("since"), until=raw.get("until"))


@functools.lru_cache(maxsize=256)
def _flags_for(table: ProgramTable, sub: str, version: str) -> Dict[str, FlagSpec]:
    out: Dict[str, FlagSpec] = {}
    for flag, variants in (table._sub(sub).get("flags") or {}).items():
        for raw in variants:
            if in_range(version or None, raw.get("since"), raw.get("until")):
                out[flag] = _spec(flag, raw)
                break
    return out


@functools.lru_cache(maxsize=16)
def load_program(program: str) -> Optional[ProgramTable]:
    path = paths.data_file("programs", f"{program}.yaml")
    if not path.is_file():
        return None
    return ProgramTable(yamlio.load(path) or {}, str(path))
