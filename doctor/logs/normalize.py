"""Turning a raw log line (bytes) into what rules look at: cleaned text, level, logger, process.

Cleaning: NUL bytes dropped, ANSI colour/cursor sequences removed, ``\\r`` progress redraws reduced
to what a terminal would end up showing (a tqdm bar that redraws 50 times becomes its last state;
text before a ``\\r`` that is not a progress bar is kept as its own segment).

Prefixes stripped (they are repeated on every line and carry no cause), keeping level and logger:

* ``2026-11-22 03:01:49,394 - lmdeploy - WARNING - file.py:47 - msg`` (lmdeploy's logger)
* ``2026-11-22T03:01:49.394Z msg`` / ``2026-11-22 03:01:49 ERROR msg`` (docker, generic timestamps)
* ``INFO:     msg`` (uvicorn), ``WARNING:root:msg`` (Python's default logging format)
* ``[TM][WARNING] msg``, ``[TM][FATAL][<timestamp>][file.cc:12] msg`` (TurboMind, 0.14+ form too; the
  ``[file.cc:12]`` part stays in the text because rules tell allocation sites apart by it)
* ``[rank0]: msg``, ``(RayWorkerWrapper pid=123) msg`` (process tags; kept as the process key so
  interleaved tracebacks of several processes are followed separately)

Everything works on bytes so that lines can be de-duplicated before they are decoded.
"""
from __future__ import annotations

import re
from typing import Callable, Dict, List, Optional, Tuple

ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
PROGRESS = re.compile(rb"\d+%\||\d+(?:\.\d+)?(?:it/s|s/it)\]")
MASK = bytes.maketrans(b"0123456789", b"0000000000")

LEVELS: Dict[bytes, str] = {
    b"TRACE": "debug", b"DEBUG": "debug", b"INFO": "info", b"NOTICE": "info", b"WARNING": "warning",
    b"WARN": "warning", b"ERROR": "error", b"CRITICAL": "fatal", b"FATAL": "fatal",
}
LEVEL_TAG = {"": b"-", "debug": b"d", "info": b"i", "warning": b"w", "error": b"e", "fatal": b"f"}

# (level, logger, proc, rest): what one prefix step yields; None = no prefix here.
Step = Optional[Tuple[str, str, str, int]]

_TS = re.compile(
    rb"(?:\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    rb"(?: - ([\w.\-]+) - ([A-Z]+) - (?:[\w.\-]+:\d+ - )?| \[?([A-Z]{4,8})\]?:? +| +)")
_LEVEL_WORD = re.compile(rb"(INFO|WARNING|WARN|ERROR|DEBUG|CRITICAL|FATAL|TRACE):(?: +|([\w.\-]+):)")
_TM = re.compile(rb"\[TM\]\[([A-Z]+)\](?:\[[\d\-:. T]+\])? ?")   # level and timestamp; [file:line] stays
_RANK = re.compile(rb"\[((?:rank|default)\d+)\]: ?")
_BRACKET_TS = re.compile(rb"\[\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?\] *(?:([A-Z]{4,8}):? +)?")
_RAY = re.compile(rb"\(((?:\w+ )?pid=\d+(?:, ip=[\d.]+)?)\) ")


def _ts(line: bytes) -> Step:
    m = _TS.match(line)
    if m is None:
        return None
    if m.group(2):
        return LEVELS.get(m.group(2), ""), m.group(1).decode("ascii", "replace"), "", m.end()
    return LEVELS.get(m.group(3) or b"", ""), "", "", m.end()


def _level_word(line: bytes) -> Step:
    m = _LEVEL_WORD.match(line)
    if m is None:
        return None
    logger = m.group(2).decode("ascii", "replace") if m.group(2) else "uvicorn"
    return LEVELS[m.group(1)], logger, "", m.end()


def _bracket(line: bytes) -> Step:
    m = _TM.match(line)
    if m is not None:
        return LEVELS.get(m.group(1), ""), "TM", "", m.end()
    m = _RANK.match(line)
    if m is not None:
        return "", "", m.group(1).decode("ascii"), m.end()
    m = _BRACKET_TS.match(line)
    if m is not None:
        return LEVELS.get(m.group(1) or b"", ""), "", "", m.end()
    return None


def _ray(line: bytes) -> Step:
    m = _RAY.match(line)
    if m is None:
        return None
    return "", "", m.group(1).decode("ascii"), m.end()


_BY_FIRST: Dict[int, Callable[[bytes], Step]] = {}
for _c in b"0123456789":
    _BY_FIRST[_c] = _ts
for _c in b"IWEDCFT":
    _BY_FIRST[_c] = _level_word
_BY_FIRST[ord("[")] = _bracket
_BY_FIRST[ord("(")] = _ray


def strip_prefix(line: bytes) -> Tuple[str, str, str, bytes]:
    """(level, logger, proc, message) with up to three stacked prefixes removed."""
    level = logger = proc = ""
    for _ in range(3):
        if not line:
            break
        fn = _BY_FIRST.get(line[0])
        if fn is None:
            break
        step = fn(line)
        if step is None:
            break
        lv, lg, pr, end = step
        level = lv or level
        logger = lg or logger
        proc = pr or proc
        line = line[end:]
    return level, logger, proc, line


def clean(raw: bytes) -> List[bytes]:
    """Segments a terminal would show for one physical line (NUL, ANSI and redraws removed)."""
    if b"\x00" in raw:
        raw = raw.replace(b"\x00", b"")
    if b"\x1b" in raw:
        raw = ANSI.sub(b"", raw)
    if b"\r" not in raw:
        return [raw]
    segs = [s for s in raw.split(b"\r") if s.strip()]
    if not segs:
        return []
    last = len(segs) - 1
    return [s for i, s in enumerate(segs) if i == last or not PROGRESS.search(s)]


def decode(data: bytes) -> str:
    return data.decode("utf-8", "replace").rstrip()
