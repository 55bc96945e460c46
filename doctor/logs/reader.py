"""Reading a log as a stream of byte blocks made of whole lines, in constant memory, from any input.

Why bytes and blocks: a multi-GB server log is mostly noise, so the reader hands the analyzer big
blocks (4 MiB) that C-level scanners (``re.finditer``, ``bytes.count``) chew through, and Python only
touches the few lines that matter. Nothing here decodes text; invalid UTF-8 and NUL bytes pass
through untouched (the analyzer decodes with replacement).

A line longer than :data:`LINE_CAP` without a newline (a 50 MB JSON dump, an endless ``\\r``
progress bar) is not kept whole: its head and tail are kept and the middle is replaced by
``[... N bytes cut ...]``, so memory stays bounded whatever the input.

Unreadable inputs raise :class:`LogInputError` with one clear sentence: missing file, directory,
permission denied, closed stdin, empty input, binary data, or a single overlong line with no
newline at all (that is not a log).
"""
from __future__ import annotations

import gzip
import io
import os
import sys
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Optional, Tuple

BLOCK = 4 << 20            # bytes read per block
LINE_CAP = 64 << 10        # longest line kept whole; longer lines keep head and tail
HEAD = 48 << 10
TAIL = 8 << 10
SAMPLE = 64 << 10          # bytes examined to tell text from binary
_TEXT_BYTES = bytes(b for b in range(256) if b >= 32 and b != 127) + b"\t\n\r\x1b\x08\x0c"   # deleted when counting controls


class LogInputError(Exception):
    """The input cannot be read as a log; the message is one sentence for the user (exit 2)."""


@dataclass
class ReadStats:
    bytes: int = 0
    cut_lines: int = 0          # lines longer than LINE_CAP (kept as head + tail)
    longest_cut: int = 0        # length of the longest such line, bytes
    gzip: bool = False


def open_log(path: Optional[str], stdin: Optional[BinaryIO] = None) -> Tuple[BinaryIO, str]:
    """Open a log file, ``-``/None for stdin; transparently gunzips. Raises LogInputError."""
    if path in (None, "-"):
        stream = stdin if stdin is not None else _stdin()
        name = "-"
    else:
        if os.path.isdir(path):
            raise LogInputError(f"{path} is a directory, not a log file")
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed by the caller
        except FileNotFoundError:
            raise LogInputError(f"{path}: no such file") from None
        except PermissionError:
            raise LogInputError(f"{path}: permission denied") from None
        except OSError as exc:
            raise LogInputError(f"{path}: cannot open ({exc.strerror or exc})") from None
        name = path
    try:
        head = _peek(stream, 2)
    except OSError as exc:
        raise LogInputError(f"cannot read {'stdin' if name == '-' else name}: {exc.strerror or exc}") from None
    if head == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    return stream, name


def _stdin() -> BinaryIO:
    stdin = sys.stdin
    if stdin is None or getattr(stdin, "closed", False):
        raise LogInputError("stdin is closed; pipe a log in (`... 2>&1 | lmdoctor explain`) or give a file")
    try:
        if stdin.isatty():
            raise LogInputError("no log given: pipe a log in (`... 2>&1 | lmdoctor explain`) or name a file "
                                "(`lmdoctor explain server.log`)")
        stdin.fileno()
    except (ValueError, OSError):
        raise LogInputError("stdin is closed; pipe a log in (`... 2>&1 | lmdoctor explain`) or give a file") from None
    buffer = getattr(stdin, "buffer", stdin)
    if not isinstance(buffer, io.BufferedReader):
        buffer = io.BufferedReader(buffer)  # type: ignore[arg-type]
    return buffer  # type: ignore[return-value]


def _peek(stream: BinaryIO, n: int) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is not None:
        return peek(n)[:n]
    pos = stream.tell()
    data = stream.read(n)
    stream.seek(pos)
    return data


def looks_binary(sample: bytes) -> bool:
    """True for data that is not text: many NUL/control bytes or mostly invalid UTF-8."""
    if not sample:
        return False
    controls = len(sample.translate(None, _TEXT_BYTES))
    bad = sample.decode("utf-8", "replace").count("\ufffd")
    return (controls + bad) / len(sample) > 0.10


Piece = Tuple[bytes, int, int]


def iter_blocks(stream: BinaryIO, stats: ReadStats, limit: Optional[int] = None,
                block: int = BLOCK, check: bool = True) -> Iterator[Piece]:
    """Pieces ``(data, start, end)`` where ``data[start:end]`` is whole lines, in order.

    The bytes are not copied: a big block is handed over with bounds; only a line that straddles
    two reads is joined (a small copy). ``limit`` stops after that many bytes (a worker's share of
    a file). With ``check`` (the start of the input) empty and binary inputs raise LogInputError.
    """
    carry = b""
    cutting = False           # inside an overlong line: dropping its middle
    cut_head = b""
    cut_tail = b""
    cut_len = 0
    first = check
    remaining = limit
    while True:
        size = block if remaining is None else min(block, remaining)
        data = stream.read(size) if size > 0 else b""
        if remaining is not None:
            remaining -= len(data)
        if first:
            first = False
            if not data:
                raise LogInputError("the log is empty")
            if looks_binary(data[:SAMPLE]):
                raise LogInputError("the input is binary data, not a text log")
        if not data:
            break
        stats.bytes += len(data)
        start = 0
        if cutting:
            nl = data.find(b"\n")
            if nl < 0:
                cut_len += len(data)
                cut_tail = (cut_tail + data[-TAIL:])[-TAIL:]
                continue
            cut_len += nl
            cut_tail = (cut_tail + data[max(0, nl - TAIL):nl])[-TAIL:]
            line = _cut_line(cut_head, cut_tail, cut_len, stats)
            yield line, 0, len(line)
            cutting = False
            start = nl + 1
        elif carry:
            nl = data.find(b"\n")
            if nl < 0:
                carry += data
                if len(carry) > LINE_CAP:
                    cutting, cut_head, cut_tail, cut_len, carry = True, carry[:HEAD], carry[-TAIL:], len(carry), b""
                continue
            line = carry + data[: nl + 1]
            carry = b""
            yield line, 0, len(line)
            start = nl + 1
        last = data.rfind(b"\n", start)
        if last < 0:
            carry = data[start:]
        else:
            carry = data[last + 1:]
            if last + 1 > start:
                yield data, start, last + 1
        if len(carry) > LINE_CAP:
            cutting, cut_head, cut_tail, cut_len, carry = True, carry[:HEAD], carry[-TAIL:], len(carry), b""
    if cutting:
        if stats.cut_lines == 0 and stats.bytes == cut_len and check and limit is None:
            raise LogInputError(f"the input is a single {_size(cut_len)} line without a newline; that is not a log "
                                f"(lmdoctor keeps at most {_size(LINE_CAP)} of a line)")
        line = _cut_line(cut_head, cut_tail, cut_len, stats)
        yield line, 0, len(line)
    elif carry:
        yield carry, 0, len(carry)


def _cut_line(head: bytes, tail: bytes, length: int, stats: ReadStats) -> bytes:
    stats.cut_lines += 1
    stats.longest_cut = max(stats.longest_cut, length)
    return head + b" [... %d bytes cut ...] " % (length - len(head) - len(tail)) + tail + b"\n"


def _size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MB"
    return f"{n / 1024:.0f} KB"
