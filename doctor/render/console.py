"""The rich console every human-readable output goes through.

No colour when stdout is not a terminal or ``NO_COLOR`` is set; a fixed width off-terminal so piped
output (and snapshot tests) do not depend on the caller's window; ASCII marks when the output
encoding cannot show ✓ ✗. :func:`status` is the progress line for anything slow.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional

_MARKS_UTF = {"ok": "✓", "error": "✗", "warning": "!", "info": "i", "unknown": "?"}
_MARKS_ASCII = {"ok": "ok", "error": "x", "warning": "!", "info": "i", "unknown": "?"}
STYLES = {"ok": "green", "error": "bold red", "warning": "yellow", "info": "cyan", "unknown": "magenta"}


def make_console(stderr: bool = False, width: Optional[int] = None):
    from rich.console import Console
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    no_color = bool(os.environ.get("NO_COLOR")) or not tty
    return Console(file=stream, no_color=no_color, highlight=False, soft_wrap=False, emoji=False,
                   width=width or (None if tty else 100), force_terminal=tty if tty else False,
                   color_system=None if no_color else "auto")


def print_hanging(console, markup: str, indent: int, hang: int = 2) -> None:
    """Print a markup paragraph at ``indent`` columns, continuation lines ``hang`` further in.

    Rich wraps a long line back to column 0, which breaks the outline the eye follows (mark, rule,
    title); commands are not printed with this (they stay on one line so they can be copied)."""
    from rich.text import Text as RichText
    text = RichText.from_markup(markup)
    lines = text.wrap(console, max(20, console.width - indent - hang))
    for i, line in enumerate(lines):
        line.rstrip()
        console.print(RichText(" " * (indent + (hang if i else 0))) + line, soft_wrap=True)


def marks() -> Dict[str, str]:
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower()
    return _MARKS_UTF if encoding.startswith("utf") else _MARKS_ASCII


@contextmanager
def status(message: str) -> Iterator[None]:
    """A transient spinner line on stderr while something slow runs (gathering facts, scanning envs,
    waiting for a server). Only on a terminal: on pipes, in CI and with ``TERM=dumb`` it prints
    nothing, so captured output stays exactly what the command produced."""
    if not sys.stderr.isatty() or os.environ.get("TERM") == "dumb":
        yield
        return
    with make_console(stderr=True).status(message, spinner="dots"):
        yield


class StatusLine:
    """:func:`status` started and stopped by hand, for a line that may only begin part-way (after
    explain's worker processes are forked) or be replaced (`run`: one line per attempt)."""

    def __init__(self) -> None:
        self._active: Optional[Any] = None

    def start(self, message: str) -> None:
        self.stop()
        self._active = status(message)
        self._active.__enter__()

    def stop(self) -> None:
        if self._active is not None:
            active, self._active = self._active, None
            active.__exit__(None, None, None)
