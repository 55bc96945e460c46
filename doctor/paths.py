"""Where the data lives: the top-level ``rules/`` folder of a checkout, or ``doctor/_rules`` in a wheel."""
from __future__ import annotations

import functools
import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def rules_dir() -> Path:
    """The rules folder; ``LMDOCTOR_RULES`` overrides it (used by tests that plant broken rules)."""
    override = os.environ.get("LMDOCTOR_RULES")
    if override:
        return Path(override)
    installed = _PACKAGE / "_rules"
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / "rules"


def data_file(*parts: str) -> Path:
    return rules_dir().joinpath(*parts)
