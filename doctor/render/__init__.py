"""Renderers: rich text for people (stdout), versioned JSON for scripts (stdout); chatter goes to stderr."""
from __future__ import annotations

import json
import sys
from typing import Any


def print_json(doc: Any) -> None:
    """Write a JSON document to stdout (UTF-8, stable key order as built)."""
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")
