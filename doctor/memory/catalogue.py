"""Find a model in the built-in catalogue by hub id or folder name (rules/knowledge/model-shapes.yaml).

Users plan for paths that only exist on the machine they will launch on
(``/root/models/InternVL2-26B-w4a16-4bit``) or give hub ids (``internlm/internlm2_5-7b-chat``). Both
are matched on a normalised name: lower case, split on ``- _ . /``, the words that do not change the
shape (chat, instruct, hf, meta) and the quantisation markers dropped. A dropped quantisation marker
is remembered: ``-w4a16-4bit`` / ``-awq`` mean an AWQ checkpoint.
"""
from __future__ import annotations

import functools
import os
import re
from typing import Dict, Optional, Tuple

from doctor import knowledge
from doctor.memory.shapes import ModelShape, from_catalogue_entry

NEUTRAL_WORDS = {"chat", "instruct", "hf", "meta", "it"}
AWQ_WORDS = {"awq", "w4a16", "4bit", "int4"}
GPTQ_WORDS = {"gptq"}
_SPLIT = re.compile(r"[-_./\s]+")


def normalise(name: str) -> Tuple[str, Optional[str]]:
    """(key, weight format implied by the name or None)."""
    words = [w for w in _SPLIT.split(name.lower()) if w]
    fmt: Optional[str] = None
    if any(w in AWQ_WORDS for w in words):
        fmt = "awq"
    if any(w in GPTQ_WORDS or w.startswith("gptq") for w in words):
        fmt = "gptq"
    kept = [w for w in words if w not in NEUTRAL_WORDS and w not in AWQ_WORDS and not w.startswith("gptq")]
    return "".join(kept), fmt


@functools.lru_cache(maxsize=1)
def _index() -> Dict[str, dict]:
    index: Dict[str, dict] = {}
    for entry in knowledge.table("model-shapes").get("models", []):
        names = [entry["name"], entry.get("repo", "").split("/")[-1]] + list(entry.get("aliases") or [])
        for n in names:
            if n:
                index.setdefault(normalise(n)[0], entry)
    return index


def lookup(model: str) -> Optional[Tuple[ModelShape, Optional[str]]]:
    """(shape, format implied by the name) for a hub id or path (its last part), or None when unknown."""
    name = os.path.basename(model.rstrip("/\\"))
    if not name:
        return None
    key, fmt = normalise(name)
    entry = _index().get(key)
    return (from_catalogue_entry(entry), fmt) if entry is not None else None
