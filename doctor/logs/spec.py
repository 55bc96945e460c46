"""The ``log:`` section of a rule: which log lines it recognises (compiled once, at load time).

A log rule fires when its main clause matches the log, every ``also`` clause matches too, no
``unless`` clause matches, and its ``when`` facts (if any) hold. Format::

    log:
      any: [PATTERN, ...]       # main clause: one of these must match (required)
      scope: line               # where the main clause's plain patterns look (default line)
      level: [error, fatal]     # optional: only lines logged at one of these levels
      also:                     # corroboration: each clause must match as well (AND)
        - {any: [PATTERN, ...], scope: frame, within: traceback}
      unless:                   # veto: the rule does not fire when one of these matches
        - {any: [PATTERN, ...], within: 20}

    PATTERN := 'regex'  |  {re: 'regex', scope: SCOPE, level: [LEVEL, ...]}

Patterns are Python regexes, *searched* in the text of a record (use ``^`` to anchor). Named groups
(``(?P<port>\\d+)``) become ``{match.port}`` in titles, explanations and fixes, and can be tested in
``when`` (numbers are compared as numbers).

Scopes (what a pattern is matched against):

* ``line``: every log line, after ANSI colours, ``\\r`` progress redraws, timestamps and logger
  prefixes (``2026-11-22 03:01:49,394 - lmdeploy - WARNING - file.py:47 -``, uvicorn ``INFO:     ``,
  ``[TM][WARNING]``, ``[TM][FATAL][ts][file:line]``, ``[rank0]:``) are stripped. The level and
  logger of the prefix are kept apart (``level:`` filters on them).
* ``tm``: only TurboMind lines (``[TM][...]`` prefix), text after the prefix.
* ``exception``: a Python exception: ``Type: message``, the message with its continuation lines
  (so multi-line messages match), from tracebacks and from logged ``SomeError: ...`` lines.
* ``frame``: traceback frames as printed: ``File "/x/lmdeploy/turbomind/turbomind.py", line 163, in _create_weight_func``.
* ``http``: HTTP requests that failed, as ``METHOD PATH STATUS REASON`` (``POST /v1/chat/completions 404 Not Found``).

``within`` (also/unless only) ties a clause to the main match: ``traceback`` = in the same
traceback (or chained exception group), N = within N lines of it; default anywhere in the log.

Speed: every pattern must contain a literal of at least 3 characters that any match has to
contain (``out of memory`` in ``CUDA.*out of memory``); lmdoctor derives it and only runs the
regex on lines that contain it. The rule loader rejects patterns without one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Optional, Pattern, Tuple, Union

try:  # Python 3.11+
    import re._parser as _sre  # type: ignore[import-not-found]
    from re._constants import (ANY, AT, BRANCH, CATEGORY, CATEGORY_DIGIT, GROUPREF, IN, LITERAL,  # type: ignore
                               MAX_REPEAT, MIN_REPEAT, NEGATE, NOT_LITERAL, RANGE, SUBPATTERN)
except ImportError:  # Python 3.9 / 3.10
    import sre_parse as _sre  # type: ignore[no-redef]
    from sre_constants import (ANY, AT, BRANCH, CATEGORY, CATEGORY_DIGIT, GROUPREF, IN, LITERAL,  # type: ignore
                               MAX_REPEAT, MIN_REPEAT, NEGATE, NOT_LITERAL, RANGE, SUBPATTERN)

KEYS = {"any", "scope", "level", "also", "unless"}
CLAUSE_KEYS = {"any", "scope", "level", "within"}
PATTERN_KEYS = {"re", "scope", "level"}
SCOPES = ("line", "tm", "exception", "frame", "http")
LEVELS = ("debug", "info", "warning", "error", "fatal")
MIN_LITERAL = 3
DIGITS = "0123456789"
MASK = str.maketrans(DIGITS, "0" * 10)


@dataclass
class LogPattern:
    """One regex with what the fast path needs to skip lines that cannot match.

    The regex is parsed (validated) at load time but compiled on first use: most patterns never
    meet a line that contains their literal, and compiling hundreds of regexes would dominate the
    start-up of `explain`.
    """

    source: str
    scope: str
    levels: Optional[FrozenSet[str]]
    literals: Tuple[str, ...]        # digit-masked; a match contains one of them
    icase: bool
    digit_sensitive: bool             # the outcome depends on digit values (``code = 6``, ``[45]\\d\\d``)
    groups: Tuple[str, ...] = ()      # named groups (captures)
    id: int = -1                      # assigned when a Matcher registers the pattern
    _compiled: Optional[Pattern] = field(default=None, repr=False, compare=False)

    @property
    def regex(self) -> Pattern:
        if self._compiled is None:
            self._compiled = re.compile(self.source)
        return self._compiled


@dataclass
class Clause:
    patterns: List[LogPattern]
    within: Union[None, str, int] = None


@dataclass
class LogSpec:
    main: Clause
    also: List[Clause] = field(default_factory=list)
    unless: List[Clause] = field(default_factory=list)
    captures: List[str] = field(default_factory=list)

    @property
    def patterns(self) -> List[Pattern]:
        """The main clause's regexes (kept for code written against the minimal form)."""
        return [p.regex for p in self.main.patterns]

    def all_patterns(self) -> List[LogPattern]:
        return [p for c in [self.main, *self.also, *self.unless] for p in c.patterns]


# -- literal extraction (the prefilter) ---------------------------------------------------------
def _required(seq: Any) -> List[Tuple[str, ...]]:
    """Candidate sets of literals; for each set, every match contains at least one of its literals."""
    cands: List[Tuple[str, ...]] = []
    run: List[str] = []

    def flush() -> None:
        if run:
            cands.append(("".join(run),))
            run.clear()

    for op, av in seq:
        if op is LITERAL:
            run.append(chr(av))
        elif op is SUBPATTERN:
            inner = av[-1]
            if all(o is LITERAL for o, _ in inner):
                run.extend(chr(a) for _, a in inner)
            else:
                flush()
                cands += _required(inner)
        elif op is BRANCH:
            flush()
            alts = [_best(_required(branch)) for branch in av[1]]
            if all(a is not None for a in alts):
                cands.append(tuple(x for a in alts for x in a))  # type: ignore[union-attr]
        elif op in (MAX_REPEAT, MIN_REPEAT) and av[0] >= 1:
            flush()
            cands += _required(av[2])
        else:
            flush()
    flush()
    return cands


def _best(cands: List[Tuple[str, ...]]) -> Optional[Tuple[str, ...]]:
    good = [c for c in cands if c and min(len(x.strip()) for x in c) >= MIN_LITERAL]
    if not good:
        return None
    return max(good, key=lambda c: (min(len(x) for x in c), -len(c)))


def _digit_sensitive(seq: Any) -> bool:
    """Whether masking digits (all → 0) could change whether/how the regex matches."""
    for op, av in seq:
        if op in (LITERAL, NOT_LITERAL) and chr(av) in DIGITS:
            return True
        if op is GROUPREF:
            return True
        if op is IN:
            negate = any(o is NEGATE for o, _ in av)
            digits_in = set()
            for o, a in av:
                if o is LITERAL and chr(a) in DIGITS:
                    digits_in.add(chr(a))
                elif o is RANGE:
                    digits_in |= {d for d in DIGITS if a[0] <= ord(d) <= a[1]}
                elif o is CATEGORY and a is CATEGORY_DIGIT:
                    digits_in |= set(DIGITS)
            if digits_in and (digits_in != set(DIGITS) or negate and len(digits_in) < 10):
                return True
        elif op is SUBPATTERN:
            if _digit_sensitive(av[-1]):
                return True
        elif op is BRANCH:
            if any(_digit_sensitive(b) for b in av[1]):
                return True
        elif op in (MAX_REPEAT, MIN_REPEAT):
            if _digit_sensitive(av[2]):
                return True
        elif op in (ANY, AT, CATEGORY):
            continue
    return False


def compile_pattern(raw: Any, scope: str, levels: Optional[FrozenSet[str]], where: str) -> LogPattern:
    if isinstance(raw, dict):
        unknown = set(raw) - PATTERN_KEYS
        if unknown or "re" not in raw:
            raise ValueError(f"{where}: a pattern is a regex string or {{re: regex, scope?, level?}}")
        scope = _scope(raw.get("scope", scope), where)
        levels = _levels(raw["level"], where) if "level" in raw else levels
        raw = raw["re"]
    if not isinstance(raw, str) or not raw:
        raise ValueError(f"{where}: a pattern must be a non-empty regex string")
    try:
        tree = _sre.parse(raw)
    except (re.error, TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise ValueError(f"{where}: bad regex {raw!r}: {exc}") from None
    icase = bool(tree.state.flags & re.IGNORECASE)
    best = _best(_required(list(tree)))
    if best is None:
        raise ValueError(f"{where}: regex {raw!r} has no literal of {MIN_LITERAL}+ characters that every match "
                         "contains; lmdoctor needs one to skip lines quickly (e.g. write 'out of memory', not '.*memory')")
    literals = tuple(sorted({(x.lower() if icase else x).translate(MASK) for x in best}))
    return LogPattern(source=raw, scope=scope, levels=levels, literals=literals, icase=icase,
                      digit_sensitive=_digit_sensitive(list(tree)), groups=tuple(tree.state.groupdict))


def _scope(value: Any, where: str) -> str:
    if value not in SCOPES:
        raise ValueError(f"{where}: scope must be one of {', '.join(SCOPES)}, not {value!r}")
    return str(value)


def _levels(value: Any, where: str) -> FrozenSet[str]:
    items = value if isinstance(value, list) else [value]
    bad = [v for v in items if v not in LEVELS]
    if bad or not items:
        raise ValueError(f"{where}: level must list some of {', '.join(LEVELS)}")
    return frozenset(items)


def _clause(data: Any, where: str, allow_within: bool) -> Clause:
    if isinstance(data, (str, list)):
        data = {"any": data if isinstance(data, list) else [data]}
    if not isinstance(data, dict) or not data.get("any") or not isinstance(data["any"], list):
        raise ValueError(f"{where}: expected {{any: [regex, ...], scope?, level?{', within?' if allow_within else ''}}}")
    keys = CLAUSE_KEYS if allow_within else KEYS
    unknown = set(data) - keys
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {', '.join(sorted(keys))})")
    scope = _scope(data.get("scope", "line"), where)
    levels = _levels(data["level"], where) if "level" in data else None
    patterns = [compile_pattern(raw, scope, levels, f"{where}.any[{i}]") for i, raw in enumerate(data["any"])]
    within = data.get("within")
    if within is not None and within != "traceback" and not (isinstance(within, int) and within >= 0):
        raise ValueError(f"{where}: within is 'traceback' or a number of lines")
    return Clause(patterns, within)


def compile_log_spec(data: Any, where: str) -> LogSpec:
    """Validate and compile a rule's ``log:`` section; raises ValueError naming the offending path."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with at least any: [regex, ...]")
    unknown = set(data) - KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {', '.join(sorted(KEYS))})")
    main = _clause({k: v for k, v in data.items() if k in ("any", "scope", "level")}, where, allow_within=False)
    spec = LogSpec(main=main)
    for key in ("also", "unless"):
        items = data.get(key) or []
        if not isinstance(items, list):
            raise ValueError(f"{where}.{key}: expected a list of clauses")
        getattr(spec, key).extend(_clause(c, f"{where}.{key}[{i}]", allow_within=True) for i, c in enumerate(items))
    for p in spec.all_patterns():
        spec.captures += [n for n in p.groups if n not in spec.captures]
    return spec


def number_or_text(value: Optional[str]) -> Union[None, int, float, str]:
    """Captured text as a number when it is one (so `when` compares 5.5 < 12 numerically)."""
    if value is None:
        return None
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return value


def capture_values(m: "re.Match") -> Dict[str, Any]:
    return {f"match.{k}": number_or_text(v) for k, v in m.groupdict().items() if v is not None}
