"""Rule files: schema, validation and loading (``rules/<area>/<ID>-<name>.yaml``, one rule per file).

A rule file is pure data: what must hold (``when``, optionally ``log``), what to tell the user, and
how to fix it. Validation is strict and happens at load time: unknown keys, unknown fact names,
unknown categories, malformed conditions or templates, duplicate IDs, or a file name that does not
match ``<id>-<name>.yaml`` all raise :class:`RuleError` naming the file. Schema, field by field::

    id: GPU001                      # stable, never reused: area prefix + 3 digits
    name: no-gpu-visible            # kebab-case, names the problem (not the fix)
    category: no_gpu_visible        # a slug of rules/taxonomy.yaml
    severity: error                 # error | warning | info
    confidence: high                # high | medium | low (default high)
    priority: 0                     # tie-break between rules of one severity (higher first)
    supersedes: [MEM002]            # when both fire, the listed rules show as "also matched"
    title: {en: ..., zh: ...}       # one line; may use {fact.name} placeholders
    explanation: {en: ..., zh: ...} # what happened and why
    applies: CONDITION              # optional: when false the rule is not applicable (not "passed")
    when: CONDITION                 # see doctor/conditions.py
    log: {...}                      # log rules only (see doctor/logs/spec.py); IDs 101-199
    evidence: [fact.name, ...]      # extra facts to show as evidence
    fixes:
      - summary: {en: ..., zh: ...}
        command: "pip install 'timm=={compat.timm.pin}'"   # optional, a template
        edit: {set_flag: {--cache-max-entry-count: "{suggest.kv_ratio}"}, add_flag: [...],
               remove_flag: [...], set_env: {NAME: VALUE},
               set_model: "{suggest.awq_work_dir}",
               set_flags_from: fit.suggestion_flags}   # optional: rewrite the subject command
                                    # (set_flags_from names a fact holding {flag: value}, computed by code)
                                    # (with both command and edit, the fix is the command, then the
                                    #  rewritten subject: "quantize first, then serve the result")
        safety: auto | env | root | manual
        when: CONDITION             # optional precondition of this fix
    docs: {what: {en,zh}, why: {en,zh}, confirm: {en,zh}, fix: {en,zh}}
    references: ["InternLM/lmdeploy#2381", ...]
    tests: {fires: [CASE, ...], quiet: [CASE, ...]}    # see doctor/selftest.py

Templates: ``{fact.name}`` or ``{fact.name|filter}`` with filters ``gib`` (MiB → GiB), ``join``,
``quote`` (shell quoting), ``first``, ``lines`` (one item per line), ``args`` (a list as shell-quoted,
space-separated arguments: ``pip install {model.missing_packages|args}``).
Log rules may also use their captures, ``{match.<group>}``.

Environment rules (IDs 001-099) are parsed when rules load; log rules (IDs 101-199, with ``log:``)
are parsed on first use, so ``check`` never pays for (or imports) the log machinery.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

from doctor import paths, yamlio
from doctor.conditions import Condition, ConditionError, compile_condition
from doctor.i18n import Text
from doctor.model import Safety, Severity

ID_RE = re.compile(r"^[A-Z]{2,5}\d{3}$")
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
TEMPLATE_RE = re.compile(r"\{([a-zA-Z_][\w.\-*]*)(?:\|([a-z]+))?\}")
FILTERS = ("gib", "join", "quote", "first", "lines", "args")
TOP_KEYS = {"id", "name", "category", "severity", "confidence", "priority", "supersedes", "title",
            "explanation", "applies", "when", "log", "evidence", "fixes", "docs", "references", "tests", "status"}
REQUIRED = ("id", "name", "category", "severity", "title", "explanation")
FIX_KEYS = {"summary", "command", "edit", "safety", "when"}
EDIT_KEYS = {"set_flag", "set_flags_from", "add_flag", "remove_flag", "set_env", "set_model"}
LOG_ID_RANGE = range(101, 200)
DOC_KEYS = ("what", "why", "confirm", "fix")
AREAS = ("python", "gpu", "memory", "host", "network", "command", "model", "runtime")


class RuleError(Exception):
    """A rule file is invalid; the message starts with the file path."""


@dataclass
class FixSpec:
    summary: Text
    command: Optional[str] = None
    edit: Dict[str, Any] = field(default_factory=dict)
    safety: Safety = Safety.MANUAL
    when: Optional[Condition] = None


@dataclass
class Rule:
    id: str
    name: str
    category: str
    severity: Severity
    area: str
    title: Text
    explanation: Text
    when: Optional[Condition]
    applies: Optional[Condition] = None
    log: Optional[Any] = None            # compiled by doctor.logs.spec when present
    evidence: List[str] = field(default_factory=list)
    fixes: List[FixSpec] = field(default_factory=list)
    docs: Dict[str, Text] = field(default_factory=dict)
    references: List[str] = field(default_factory=list)
    tests: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)
    priority: int = 0
    supersedes: List[str] = field(default_factory=list)
    confidence: str = "high"
    status: str = "stable"
    path: str = ""

    @property
    def is_log_rule(self) -> bool:
        return self.log is not None


def _text(value: Any, where: str, known_fact: Callable[[str], bool], extra_names: Iterable[str] = ()) -> Text:
    if isinstance(value, str):
        value = {"en": value}
    if not isinstance(value, dict) or not value.get("en"):
        raise RuleError(f"{where}: expected text or {{en: ..., zh: ...}} with at least 'en'")
    unknown_langs = set(value) - {"en", "zh"}
    if unknown_langs:
        raise RuleError(f"{where}: unknown language(s) {sorted(unknown_langs)} (use en, zh)")
    for lang_text in value.values():
        _check_template(str(lang_text), where, known_fact, extra_names)
    return Text(value)


def _check_template(text: str, where: str, known_fact: Callable[[str], bool], extra_names: Iterable[str] = ()) -> None:
    extra = tuple(extra_names)
    for name, filt in TEMPLATE_RE.findall(text):
        if filt and filt not in FILTERS:
            raise RuleError(f"{where}: unknown template filter '|{filt}' (use {', '.join(FILTERS)})")
        if name.startswith(extra) and extra:
            continue
        if not known_fact(name):
            raise RuleError(f"{where}: template uses unknown fact {{{name}}}")


def _condition(node: Any, where: str, known_fact: Callable[[str], bool]) -> Condition:
    try:
        return compile_condition(node, where, known_fact)
    except ConditionError as exc:
        raise RuleError(str(exc)) from None


def parse_rule(data: Any, path: Path, taxonomy: Dict[str, str], known_fact: Callable[[str], bool]) -> Rule:
    where = str(path)
    if not isinstance(data, dict):
        raise RuleError(f"{where}: a rule file holds one mapping")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown field(s) {sorted(unknown)}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise RuleError(f"{where}: missing field(s) {missing}")
    rid, name = str(data["id"]), str(data["name"])
    if not ID_RE.match(rid):
        raise RuleError(f"{where}: id {rid!r} must be 2-5 capitals and 3 digits (e.g. GPU001)")
    if not NAME_RE.match(name):
        raise RuleError(f"{where}: name {name!r} must be kebab-case")
    if path.name != f"{rid}-{name}.yaml":
        raise RuleError(f"{where}: file must be named {rid}-{name}.yaml")
    if data["category"] not in taxonomy:
        raise RuleError(f"{where}: category {data['category']!r} is not in rules/taxonomy.yaml")
    try:
        severity = Severity(data["severity"])
    except ValueError:
        raise RuleError(f"{where}: severity must be error, warning or info") from None
    area = path.parent.name
    if area not in AREAS:
        raise RuleError(f"{where}: rules live in rules/<area>/ with area one of {', '.join(AREAS)}")
    if "when" not in data and "log" not in data:
        raise RuleError(f"{where}: a rule needs 'when' (facts) and/or 'log' (log patterns)")
    if ("log" in data) != is_log_id(rid):
        raise RuleError(f"{where}: log rules (with 'log:') use IDs 101-199, environment rules 001-099")
    log_spec = None
    capture_names: List[str] = []
    if "log" in data:
        from doctor.logs.spec import compile_log_spec  # only log rules pay for the log machinery
        try:
            log_spec = compile_log_spec(data["log"], f"{where}: log")
        except ValueError as exc:
            raise RuleError(str(exc)) from None
        capture_names = [f"match.{c}" for c in log_spec.captures]

    def fact_or_capture(n: str) -> bool:
        return n in capture_names or known_fact(n)

    rule = Rule(
        id=rid, name=name, category=data["category"], severity=severity, area=area,
        title=_text(data["title"], f"{where}: title", fact_or_capture),
        explanation=_text(data["explanation"], f"{where}: explanation", fact_or_capture),
        when=_condition(data["when"], f"{where}: when", fact_or_capture) if "when" in data else None,
        applies=_condition(data["applies"], f"{where}: applies", known_fact) if "applies" in data else None,
        log=log_spec, path=where,
        priority=int(data.get("priority", 0)), confidence=str(data.get("confidence", "high")),
        status=str(data.get("status", "stable")),
        supersedes=[str(s) for s in data.get("supersedes", [])],
        references=[str(r) for r in data.get("references", [])],
    )
    if (id_number(rid) >= 100) != rule.is_log_rule:
        raise RuleError(f"{where}: {'log' if rule.is_log_rule else 'environment'} rules are numbered "
                        f"{'101-199' if rule.is_log_rule else '001-099'}; {rid} is not")
    if rule.confidence not in ("high", "medium", "low"):
        raise RuleError(f"{where}: confidence must be high, medium or low")
    if rule.status not in ("stable", "preview"):
        raise RuleError(f"{where}: status must be stable or preview")
    for fact in data.get("evidence", []):
        if not fact_or_capture(fact):
            raise RuleError(f"{where}: evidence names unknown fact {fact!r}")
        rule.evidence.append(fact)
    for i, fix in enumerate(data.get("fixes", []) or []):
        rule.fixes.append(_fix(fix, f"{where}: fixes[{i}]", fact_or_capture))
    docs = data.get("docs") or {}
    if set(docs) - set(DOC_KEYS):
        raise RuleError(f"{where}: docs sections are {', '.join(DOC_KEYS)}")
    rule.docs = {k: _text(v, f"{where}: docs.{k}", fact_or_capture) for k, v in docs.items()}
    tests = data.get("tests") or {}
    if set(tests) - {"fires", "quiet"}:
        raise RuleError(f"{where}: tests has only 'fires' and 'quiet' lists")
    rule.tests = {k: list(v or []) for k, v in tests.items()}
    return rule


def _fix(data: Any, where: str, known_fact: Callable[[str], bool]) -> FixSpec:
    if not isinstance(data, dict) or "summary" not in data:
        raise RuleError(f"{where}: a fix is a mapping with at least 'summary'")
    unknown = set(data) - FIX_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown field(s) {sorted(unknown)}")
    edit = data.get("edit") or {}
    if set(edit) - EDIT_KEYS:
        raise RuleError(f"{where}: edit supports {', '.join(sorted(EDIT_KEYS))}")
    for key in ("set_flag", "set_env"):
        for flag, value in (edit.get(key) or {}).items():
            _check_template(str(value), f"{where}.edit.{key}", known_fact)
    if "set_model" in edit:
        _check_template(str(edit["set_model"]), f"{where}.edit.set_model", known_fact)
    if "set_flags_from" in edit and not known_fact(str(edit["set_flags_from"])):
        raise RuleError(f"{where}.edit.set_flags_from: unknown fact {edit['set_flags_from']!r}")
    if data.get("command") is not None:
        _check_template(str(data["command"]), f"{where}.command", known_fact)
    default_safety = "auto" if edit else "manual"
    try:
        safety = Safety(data.get("safety", default_safety))
    except ValueError:
        raise RuleError(f"{where}: safety must be auto, env, root or manual") from None
    if safety is Safety.AUTO and not edit:
        raise RuleError(f"{where}: only fixes that edit the command (edit:) can be 'auto'")
    return FixSpec(summary=_text(data["summary"], f"{where}.summary", known_fact),
                   command=data.get("command"), edit=edit, safety=safety,
                   when=_condition(data["when"], f"{where}.when", known_fact) if "when" in data else None)


@functools.lru_cache(maxsize=1)
def taxonomy() -> Dict[str, str]:
    data = yamlio.load(paths.data_file("taxonomy.yaml")) or {}
    return dict(data.get("categories") or {})


class RuleSet:
    """The rules; log rule files are parsed on first use (``rules``, ``log_rules()``, ``get()``)."""

    def __init__(self, rules: List[Rule], pending: Optional[List[Path]] = None,
                 parse: Optional[Callable[[Path], Rule]] = None):
        self._env = rules
        self._pending = list(pending or [])
        self._parse = parse
        self._all: Optional[List[Rule]] = None if self._pending else list(rules)
        self._by_id: Optional[Dict[str, Rule]] = None
        self._by_name: Optional[Dict[str, Rule]] = None

    @property
    def rules(self) -> List[Rule]:
        if self._all is None:
            assert self._parse is not None
            parsed = [self._parse(p) for p in self._pending]
            _check_unique_and_links(self._env + parsed)
            self._all = sorted(self._env + parsed, key=lambda r: r.path)
        return self._all

    @property
    def by_id(self) -> Dict[str, Rule]:
        if self._by_id is None:
            self._by_id = {r.id: r for r in self.rules}
        return self._by_id

    @property
    def by_name(self) -> Dict[str, Rule]:
        if self._by_name is None:
            self._by_name = {r.name: r for r in self.rules}
        return self._by_name

    def get(self, key: str) -> Optional[Rule]:
        return self.by_id.get(key.upper()) or self.by_name.get(key)

    def env_rules(self) -> List[Rule]:
        """Environment rules only (does not parse log rules: `check` stays fast)."""
        return [r for r in self._env if not r.is_log_rule]

    def log_rules(self) -> List[Rule]:
        return [r for r in self.rules if r.is_log_rule]


def is_log_id(rule_id: str) -> bool:
    digits = rule_id[-3:]
    return digits.isdigit() and int(digits) in LOG_ID_RANGE


def rule_files(root: Optional[Path] = None) -> List[Path]:
    root = root or paths.rules_dir()
    return sorted(p for area in AREAS for p in (root / area).glob("*.yaml"))


def id_number(rule_id: str) -> int:
    """`GPU012` → 12. Environment rules are numbered 001-099, log (explain) rules 101-199."""
    return int(rule_id[-3:])


def _check_unique_and_links(rules: List[Rule], links: bool = True) -> None:
    """IDs and names are unique; `supersedes` names existing rules (``links``: all rules are known)."""
    seen: Dict[str, str] = {}
    for rule in rules:
        for key in (rule.id, rule.name):
            if key in seen:
                raise RuleError(f"{rule.path}: {key} is already used by {seen[key]}")
            seen[key] = rule.path
    for rule in rules if links else []:
        for target in rule.supersedes:
            if target not in seen:
                raise RuleError(f"{rule.path}: supersedes unknown rule {target}")


@functools.lru_cache(maxsize=4)
def load_rules(root: Optional[str] = None, kind: Optional[str] = None) -> RuleSet:
    """Load and validate every rule; raises RuleError on the first problem (fail loudly).

    Files whose ID is in the log range (101-199) are validated when the log rules are first used;
    ``kind="env"`` leaves them out entirely (all `check` needs).
    """
    from doctor.facts import catalog, known_fact
    base = Path(root) if root else paths.rules_dir()
    files = rule_files(base)
    if kind == "env":
        files = [p for p in files if ID_RE.match(p.name.split("-", 1)[0]) and id_number(p.name.split("-", 1)[0]) < 100]
    cat = catalog()
    tax = taxonomy()
    # Index the catalog by first segment: validating ~1000 fact references against every pattern
    # was a measurable part of `check`'s start-up.
    by_head: Dict[str, List[str]] = {}
    for pattern in cat:
        by_head.setdefault(pattern.split(".", 1)[0], []).append(pattern)

    def candidates(name: str) -> List[str]:
        head = name.split(".", 1)[0]
        return list(cat) if head == "*" else by_head.get(head, []) + by_head.get("*", [])

    known = functools.lru_cache(maxsize=None)(lambda n: known_fact(n, candidates(n)))
    env: List[Rule] = []
    pending: List[Path] = []
    for path in files:
        if is_log_id(path.name.split("-", 1)[0]):
            pending.append(path)
            continue
        env.append(parse_rule(yamlio.load(path), path, tax, known))
    _check_unique_and_links(env, links=not pending and kind is None)
    return RuleSet(env, pending, lambda p: parse_rule(yamlio.load(p), p, tax, known))
