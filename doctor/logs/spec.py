"""The ``log:`` section of a rule: which log lines it recognises (compiled once at load time).

Minimal form (the explain pipeline extends it)::

    log:
      any: ['regex', ...]     # the rule matches a normalised log line that one of these regexes finds

Named groups become ``match.<name>`` values usable in templates.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, List, Pattern

KEYS = {"any"}


@dataclass
class LogSpec:
    patterns: List[Pattern] = field(default_factory=list)
    captures: List[str] = field(default_factory=list)


def compile_log_spec(data: Any, where: str) -> LogSpec:
    if not isinstance(data, dict) or set(data) - KEYS or not data.get("any"):
        raise ValueError(f"{where}: expected {{any: [regex, ...]}}")
    spec = LogSpec()
    for i, raw in enumerate(data["any"]):
        try:
            rx = re.compile(raw)
        except (re.error, TypeError) as exc:
            raise ValueError(f"{where}.any[{i}]: bad regex {raw!r}: {exc}") from None
        spec.patterns.append(rx)
        spec.captures += [n for n in rx.groupindex if n not in spec.captures]
    return spec
