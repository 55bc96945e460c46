"""Conditions in rules: structured YAML mappings, evaluated with three-valued (Kleene) logic.

Grammar (validated when rules load; no ``eval``, no expression strings)::

    node := {all: [node, ...]} | {any: [node, ...]} | {not: node} | leaf
    leaf := {fact: NAME, OP: OPERAND [, over: any|all]}

    OP       eq ne lt le gt ge   compare (numbers numerically, version-like strings by PEP 440)
             in not_in           OPERAND is a list
             matches             OPERAND is a regex searched in the text of the value
             version             OPERAND is a PEP 440 specifier set (">=0.5,<0.6")
             contains            the (list) value contains OPERAND
             nonempty            OPERAND true/false: the list/str value is (not) empty
             exists              OPERAND true/false: the fact is known present / known absent
    OPERAND  a literal, or {fact: OTHER, times: k, plus: c} to compare with another fact

A leaf on an unknown fact is *unknown*; ``all`` is false if any part is false, else unknown if any
part is unknown; ``any`` is true if any part is true, else unknown if any part is unknown. NAME may
use ``*`` for one segment (``gpu.*.cc``): ``over: any`` (default) or ``all`` combines the matches.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from doctor.facts import ABSENT, FactSet, Unknown

COMPARE_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
OPS = COMPARE_OPS + ("in", "not_in", "matches", "version", "contains", "nonempty", "exists")


class ConditionError(ValueError):
    """A malformed condition; the message says where (``when.all[2]``) and what is wrong."""


@dataclass
class Outcome:
    value: Optional[bool]
    evidence: List[Tuple[str, Any]] = field(default_factory=list)
    missing: Dict[str, str] = field(default_factory=dict)


def _as_version(value: Any) -> Optional[Version]:
    if isinstance(value, str) and value[:1].isdigit():
        try:
            return Version(value.split("+")[0])
        except InvalidVersion:
            return None
    return None


def compare(op: str, left: Any, right: Any) -> bool:
    """Compare two known values; numbers numerically, version-like strings as versions."""
    if isinstance(left, bool) or isinstance(right, bool):
        if op == "eq":
            return left == right
        if op == "ne":
            return left != right
        return False
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        a, b = left, right
    else:
        va, vb = _as_version(left), _as_version(right)
        if va is not None and vb is not None:
            a, b = va, vb
        elif op in ("eq", "ne"):
            a, b = str(left), str(right)
        else:
            return False
    return {"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]


class Condition:
    def evaluate(self, facts: FactSet) -> Outcome:  # pragma: no cover - interface
        raise NotImplementedError

    def fact_names(self) -> List[str]:  # pragma: no cover - interface
        raise NotImplementedError


class _All(Condition):
    def __init__(self, parts: List[Condition]):
        self.parts = parts

    def evaluate(self, facts: FactSet) -> Outcome:
        out = Outcome(True)
        for part in self.parts:
            res = part.evaluate(facts)
            if res.value is False:
                return Outcome(False)
            out.evidence += res.evidence
            if res.value is None:
                out.value = None
                out.missing.update(res.missing)
        return out

    def fact_names(self) -> List[str]:
        return [n for p in self.parts for n in p.fact_names()]


class _Any(Condition):
    def __init__(self, parts: List[Condition]):
        self.parts = parts

    def evaluate(self, facts: FactSet) -> Outcome:
        out = Outcome(False)
        for part in self.parts:
            res = part.evaluate(facts)
            if res.value is True:
                return Outcome(True, res.evidence)
            if res.value is None:
                out.value = None
                out.missing.update(res.missing)
        return out

    def fact_names(self) -> List[str]:
        return [n for p in self.parts for n in p.fact_names()]


class _Not(Condition):
    def __init__(self, inner: Condition):
        self.inner = inner

    def evaluate(self, facts: FactSet) -> Outcome:
        res = self.inner.evaluate(facts)
        if res.value is None:
            return res
        return Outcome(not res.value, res.evidence if not res.value else [])

    def fact_names(self) -> List[str]:
        return self.inner.fact_names()


class _Leaf(Condition):
    def __init__(self, fact: str, op: str, operand: Any, over: str):
        self.fact, self.op, self.operand, self.over = fact, op, operand, over
        self._test = self._build_test()

    def fact_names(self) -> List[str]:
        names = [self.fact]
        if isinstance(self.operand, dict):
            names.append(self.operand["fact"])
        return names

    def _build_test(self) -> Callable[[Any, Any], bool]:
        op, operand = self.op, self.operand
        if op in COMPARE_OPS:
            return lambda value, ref: compare(op, value, ref)
        if op == "in":
            return lambda value, ref: any(compare("eq", value, o) for o in operand)
        if op == "not_in":
            return lambda value, ref: not any(compare("eq", value, o) for o in operand)
        if op == "matches":
            rx = re.compile(operand)
            return lambda value, ref: rx.search(" ".join(map(str, value)) if isinstance(value, list) else str(value)) is not None
        if op == "version":
            spec = SpecifierSet(operand)
            return lambda value, ref: (_as_version(str(value)) is not None and
                                       spec.contains(_as_version(str(value)), prereleases=True))
        if op == "contains":
            return lambda value, ref: isinstance(value, (list, tuple, str)) and operand in value
        if op == "nonempty":
            return lambda value, ref: bool(value) == bool(operand)
        if op == "exists":  # decided in _one (it is the only operator that looks at ABSENT)
            return lambda value, ref: (value is not ABSENT) == bool(operand)
        raise ConditionError(f"unknown operator {op}")  # pragma: no cover - validated earlier

    def _reference(self, facts: FactSet) -> Tuple[Any, Optional[str]]:
        if not isinstance(self.operand, dict):
            return self.operand, None
        ref = facts.get(self.operand["fact"])
        if isinstance(ref, Unknown):
            return None, ref.reason
        if ref is ABSENT:
            return ABSENT, None
        if isinstance(ref, (int, float)) and not isinstance(ref, bool):
            ref = ref * self.operand.get("times", 1) + self.operand.get("plus", 0)
        return ref, None

    def _one(self, name: str, value: Any, ref: Any) -> Optional[bool]:
        if self.op == "exists":
            return (value is not ABSENT) == bool(self.operand)
        if value is ABSENT or ref is ABSENT:
            return False
        return self._test(value, ref)

    def evaluate(self, facts: FactSet) -> Outcome:
        ref, ref_missing = self._reference(facts)
        if ref_missing is not None:
            return Outcome(None, missing={self.operand["fact"]: ref_missing})
        ref_evidence = [(self.operand["fact"], ref)] if isinstance(self.operand, dict) else []
        if "*" not in self.fact:
            value = facts.get(self.fact)
            if isinstance(value, Unknown):
                return Outcome(None, missing={self.fact: value.reason})
            result = self._one(self.fact, value, ref)
            shown = None if value is ABSENT else value
            return Outcome(result, [(self.fact, shown)] + ref_evidence if result else [])
        matches = facts.expand(self.fact)
        incomplete = facts.pattern_unknown(self.fact)
        hits = [(k, v) for k, v in matches.items() if self._one(k, v, ref)]
        if self.over == "any":
            if hits:
                return Outcome(True, hits + ref_evidence)
            if incomplete:
                return Outcome(None, missing={self.fact: incomplete})
            return Outcome(False)
        if incomplete:
            if len(hits) < len(matches):
                return Outcome(False)
            return Outcome(None, missing={self.fact: incomplete})
        return Outcome(len(hits) == len(matches), hits + ref_evidence if len(hits) == len(matches) else [])


def compile_condition(node: Any, where: str, known_fact: Callable[[str], bool]) -> Condition:
    """Validate and compile a condition node; raises ConditionError naming the offending path."""
    if not isinstance(node, Mapping):
        raise ConditionError(f"{where}: expected a mapping, got {type(node).__name__}")
    keys = set(node)
    for combinator, cls in (("all", _All), ("any", _Any)):
        if combinator in keys:
            if keys != {combinator}:
                raise ConditionError(f"{where}: '{combinator}' cannot be mixed with {sorted(keys - {combinator})}")
            parts = node[combinator]
            if not isinstance(parts, list) or not parts:
                raise ConditionError(f"{where}.{combinator}: expected a non-empty list")
            return cls([compile_condition(p, f"{where}.{combinator}[{i}]", known_fact) for i, p in enumerate(parts)])
    if "not" in keys:
        if keys != {"not"}:
            raise ConditionError(f"{where}: 'not' cannot be mixed with other keys")
        return _Not(compile_condition(node["not"], f"{where}.not", known_fact))
    if "fact" not in keys:
        raise ConditionError(f"{where}: expected one of all/any/not/fact, got {sorted(keys)}")
    fact = node["fact"]
    if not isinstance(fact, str) or not known_fact(fact):
        raise ConditionError(f"{where}: unknown fact name {fact!r} (see `lmdoctor facts --catalog`)")
    ops = [k for k in keys if k not in ("fact", "over")]
    if len(ops) != 1 or ops[0] not in OPS:
        raise ConditionError(f"{where}: expected exactly one operator of {', '.join(OPS)}; got {sorted(ops)}")
    op = ops[0]
    operand = node[op]
    over = node.get("over", "any")
    if over not in ("any", "all"):
        raise ConditionError(f"{where}: over must be 'any' or 'all'")
    if "over" in node and "*" not in fact:
        raise ConditionError(f"{where}: 'over' only applies to wildcard fact names")
    if isinstance(operand, Mapping):
        extra = set(operand) - {"fact", "times", "plus"}
        if "fact" not in operand or extra or op not in COMPARE_OPS:
            raise ConditionError(f"{where}: a reference operand is {{fact: NAME, times?: k, plus?: c}} "
                                 f"and works with {', '.join(COMPARE_OPS)}")
        if not known_fact(operand["fact"]):
            raise ConditionError(f"{where}: unknown fact name {operand['fact']!r}")
    if op in ("in", "not_in") and not isinstance(operand, list):
        raise ConditionError(f"{where}: '{op}' needs a list")
    if op == "matches":
        try:
            re.compile(operand)
        except (re.error, TypeError) as exc:
            raise ConditionError(f"{where}: bad regex {operand!r}: {exc}") from None
    if op == "version":
        try:
            SpecifierSet(str(operand))
        except InvalidSpecifier:
            raise ConditionError(f"{where}: bad version specifier {operand!r}") from None
    if op in ("exists", "nonempty") and not isinstance(operand, bool):
        raise ConditionError(f"{where}: '{op}' takes true or false")
    return _Leaf(fact, op, operand, over)
