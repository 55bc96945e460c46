"""Every pattern of every log rule, indexed by the literal it needs, so a line costs a few ``in`` tests.

A :class:`Matcher` is built once per run from the rules (and the consequence patterns of
``rules/knowledge/logs.yaml``). For a new distinct line it answers: which patterns match for sure
(``static``, cached with the line) and which must be re-run on each occurrence because their result
depends on digits (``dynamic``: ``code = 6`` vs ``code = 4`` look the same once digits are masked).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Set, Tuple

from doctor import paths, yamlio
from doctor.i18n import Text
from doctor.logs.spec import MASK, SCOPES, LogPattern, compile_pattern


@dataclass
class _Index:
    """Patterns of one scope grouped by literal; case-insensitive literals are tested on lowered text."""

    exact: Dict[str, List[int]] = field(default_factory=dict)
    folded: Dict[str, List[int]] = field(default_factory=dict)


@dataclass
class Consequence:
    pattern: LogPattern
    what: str


class Matcher:
    def __init__(self) -> None:
        self.patterns: List[LogPattern] = []
        self.owner: List[str] = []            # rule ID or "consequence"
        self._index: Dict[str, _Index] = {s: _Index() for s in SCOPES}
        self.consequence_ids: Dict[int, str] = {}
        self.not_failure_ids: Set[int] = set()

    def add(self, pattern: LogPattern, owner: str) -> int:
        pattern.id = len(self.patterns)
        self.patterns.append(pattern)
        self.owner.append(owner)
        idx = self._index[pattern.scope]
        table = idx.folded if pattern.icase else idx.exact
        for lit in pattern.literals:
            table.setdefault(lit, []).append(pattern.id)
        return pattern.id

    def add_rules(self, rules: Iterable) -> None:
        for rule in rules:
            if rule.log is not None:
                for p in rule.log.all_patterns():
                    self.add(p, rule.id)

    def add_consequences(self, items: Iterable[Consequence], not_failures: Iterable[Consequence] = ()) -> None:
        for c in items:
            self.consequence_ids[self.add(c.pattern, "consequence")] = c.what
        for c in not_failures:
            self.not_failure_ids.add(self.add(c.pattern, "not-failure"))

    def candidates(self, scope: str, text: str) -> List[int]:
        """Pattern ids of ``scope`` whose required literal occurs in ``text`` (digits masked)."""
        idx = self._index[scope]
        masked = text.translate(MASK)
        out: List[int] = []
        for lit, ids in idx.exact.items():
            if lit in masked:
                out.extend(ids)
        if idx.folded:
            lowered = masked.lower()
            for lit, ids in idx.folded.items():
                if lit in lowered:
                    out.extend(ids)
        return sorted(set(out)) if len(out) > 1 else out

    def classify(self, scope: str, text: str, level: str) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
        """(static hits, dynamic candidates) of a new distinct text."""
        static: List[int] = []
        dynamic: List[int] = []
        for pid in self.candidates(scope, text):
            p = self.patterns[pid]
            if p.levels is not None and level not in p.levels:
                continue
            if p.digit_sensitive:
                dynamic.append(pid)
            elif p.regex.search(text) is not None:
                static.append(pid)
        return tuple(static), tuple(dynamic)

    def search(self, scope: str, text: str, level: str = "") -> List[int]:
        """Pattern ids of ``scope`` that match ``text`` now (records matched once: exceptions, HTTP)."""
        out = []
        for pid in self.candidates(scope, text):
            p = self.patterns[pid]
            if (p.levels is None or level in p.levels) and p.regex.search(text) is not None:
                out.append(pid)
        return out


@functools.lru_cache(maxsize=2)
def _knowledge(root: str) -> dict:
    return yamlio.load(paths.data_file("knowledge", "logs.yaml")) or {}


def knowledge() -> dict:
    """rules/knowledge/logs.yaml (noise prefixes, consequences, lines that are not failures)."""
    return _knowledge(str(paths.rules_dir()))


def consequences(section: str = "consequences") -> List[Consequence]:
    """Patterns of a section of rules/knowledge/logs.yaml (``consequences`` or ``not_failures``)."""
    out = []
    for i, item in enumerate(knowledge().get(section) or []):
        where = f"{paths.data_file('knowledge', 'logs.yaml')}: {section}[{i}]"
        what = Text(item.get("what") or {"en": ""}).get()
        out.append(Consequence(compile_pattern(item["match"], "line", None, where), what))
    return out


def noise_prefixes() -> List[str]:
    return [str(item["prefix"]) for item in knowledge().get("noise") or []]


def build(rules: Iterable) -> Matcher:
    """The matcher of a rule set, with the consequence patterns of rules/knowledge/logs.yaml."""
    m = Matcher()
    m.add_rules(rules)
    m.add_consequences(consequences(), consequences("not_failures"))
    return m
