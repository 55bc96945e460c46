"""One pass over a log: skip noise in C, classify each distinct line once, follow structure.

How it stays fast on multi-GB server logs (bench/explain_speed.py measures it):

1. Blocks of whole lines (4 MiB, never copied) are scanned with one regex, ``\\n(?!NOISE)``, whose
   literal ``\\n`` prefix lets the regex engine run from line start to line start in C; lines that
   start with known noise (uvicorn 2xx/3xx access lines, periodic stats: ``rules/knowledge/logs.yaml``)
   never reach Python. Line numbers are counted with ``bytes.count`` only up to lines that matter.
2. The other lines are looked up by their digits-masked bytes (timestamps, ids and counters mask
   to the same key) in a bounded cache of :class:`Entry`: what the line is (kind, rule patterns that
   match, facts to extract). A warning repeated 100 000 times is decoded and matched once; a quiet
   line costs a dict lookup.
3. Only lines that carry something (a rule hit, a structural role, a fact), and every line while a
   traceback is open, take the slow path (:meth:`Analyzer._occurrence`).
4. Big regular files are cut at noise lines into byte ranges; forked workers analyse them and the
   results are shifted to absolute line numbers and merged (:meth:`LogAnalysis.merge`).
"""
from __future__ import annotations

import os
import pickle
import re
import sys
from itertools import chain
from operator import methodcaller
from typing import BinaryIO, Callable, Dict, List, Optional, Tuple

from doctor.logs import normalize, structure
from doctor.logs.matcher import Matcher, noise_prefixes
from doctor.logs.reader import BLOCK, ReadStats, iter_blocks
from doctor.logs.structure import (BLANK, CHAIN, EXC_LOOSE, EXC_STRICT, FRAME, INDENTED, PLAIN, PROC_HEADER,
                                   TB_START, CommandCandidate, Exc, Frame, Hit, HttpError, LogAnalysis, Marker, Occ,
                                   Traceback, line_kind)

MAX_TEXT = 16 << 10          # bytes of one line that rules see (head + tail of longer lines)
CACHE_MAX = 40000            # distinct normalised lines remembered
CONT_MAX = 40                # continuation lines kept in an exception message
HTTP_MAX = 500               # distinct (method, path, status) of failed requests kept apart
PARALLEL_MIN = 48 << 20      # files at least this big are split across worker processes
WORKER_SHARE = 24 << 20      # about this many bytes per worker

# Entry flags (what the slow path must do for a line).
F_FAIL, F_CRASH, F_OOM, F_CONFIG, F_ENV, F_SERVE, F_BIND, F_FALLBACK, F_CMD, F_NCCL = (1 << i for i in range(10))
_END = methodcaller("end")
QUIET_KINDS = (PLAIN, BLANK, INDENTED, EXC_LOOSE, FRAME)   # matter only inside a traceback (when busy)
COMPOSITE = -1               # a line with \r redraws, ANSI codes or NULs: its cleaned segments have their own entries


def _cut(raw: bytes) -> bytes:
    """What rules see of a very long line: its head and tail."""
    if len(raw) <= MAX_TEXT:
        return raw
    return raw[: MAX_TEXT - 4200] + b" [...] " + raw[-4096:]


class Entry:
    """What a distinct line is (digits masked, so timestamps and counters do not make lines distinct).

    Masking keeps lengths, so the logger prefix has the same length ``cut`` in every occurrence.
    """

    __slots__ = ("kind", "static", "dynamic", "flags", "text", "quiet", "cut", "level", "logger", "proc", "http")

    def __init__(self, kind: int, static: Tuple[int, ...], dynamic: Tuple[int, ...], flags: int, text: str,
                 cut: int, level: str, logger: str, proc: bool):
        self.kind, self.static, self.dynamic, self.flags, self.text = kind, static, dynamic, flags, text
        self.cut, self.level, self.logger, self.proc = cut, level, logger, proc
        self.http: Optional[Tuple[str, str]] = None       # (method, path) of an access line with an error status
        self.quiet = kind in QUIET_KINDS and not static and not dynamic and not flags


class _Proc:
    """Traceback state of one process (lines tagged ``[rank0]:`` etc. are followed separately)."""

    __slots__ = ("tb", "exc", "cont", "header", "chain", "last_tb", "chain_index")

    def __init__(self) -> None:
        self.tb: Optional[Traceback] = None
        self.exc: Optional[Exc] = None
        self.cont = 0
        self.header: Optional[Tuple[int, str]] = None
        self.chain: Optional[str] = None
        self.last_tb: Optional[Traceback] = None
        self.chain_index = 0


def noise_regex(prefixes: List[str]) -> Tuple["re.Pattern[bytes]", "re.Pattern[bytes]"]:
    """(scanner finding the newline before each interesting line, matcher for a block's first line)."""
    alt = b"|".join(p.encode() for p in prefixes) or b"(?!)"
    return re.compile(b"\n(?!" + alt + b")"), re.compile(b"(?:" + alt + b")")


class Analyzer:
    def __init__(self, matcher: Matcher, source: str = "", id_base: int = 0):
        self.m = matcher
        self.scan, self.noise_first = noise_regex(noise_prefixes())
        self.cache: Dict[bytes, Entry] = {}
        self.res = LogAnalysis(source=source)
        self.procs: Dict[str, _Proc] = {}
        self.busy = 0               # processes inside a traceback/exception message
        self.cmd_pending: Optional[CommandCandidate] = None
        self.next_tb = id_base
        self.echo = False           # the current line is source code printed under a traceback frame

    # -- the hot loop -----------------------------------------------------------------------
    def feed(self, block: bytes, start: int = 0, end: Optional[int] = None) -> None:
        """Analyse the whole lines ``block[start:end]`` (they continue where the previous piece ended)."""
        n = len(block) if end is None else end
        count = block.count
        find = block.find
        get = self.cache.get
        mask = normalize.MASK
        base = self.res.lines
        cpos = start        # block[start:cpos] holds cl newlines (counted lazily, only up to lines that matter)
        cl = 0
        processed = 0
        idle = not self.busy and self.cmd_pending is None
        first = [] if self.noise_first.match(block, start) else [start]
        for s in chain(first, map(_END, self.scan.finditer(block, start, n))):
            if s >= n:
                break
            e = find(b"\n", s, n)
            if e < 0:
                e = n
            if e - s < 2 and (e == s or block[s] == 13):
                if not idle:
                    cl += count(b"\n", cpos, s)
                    cpos = s
                    self._blank()
                continue
            raw = block[s:e]
            processed += 1
            key = raw.translate(mask)
            ent = get(key)
            if ent is None:
                ent = self._remember(key, raw)
            if ent.quiet and idle:
                continue
            if cpos != s:
                cl += count(b"\n", cpos, s)
                cpos = s
            if ent.kind == COMPOSITE:
                for seg in normalize.clean(_cut(raw)):
                    sub_key = seg.translate(mask)
                    sub = self.cache.get(sub_key) or self._remember(sub_key, seg, plain=True)
                    if not sub.quiet or self.busy or self.cmd_pending is not None:
                        self._dispatch(sub, seg, base + cl + 1)
            else:
                self._dispatch(ent, raw, base + cl + 1)
            idle = not self.busy and self.cmd_pending is None
        self.res.lines = base + cl + count(b"\n", cpos, n) + (1 if n > start and block[n - 1] != 10 else 0)
        self.res.processed += processed

    def _dispatch(self, ent: "Entry", seg: bytes, no: int) -> None:
        if ent.http is not None and not self.busy:
            self._http(ent.http, seg, no)
        else:
            self._occurrence(ent, seg, no)

    def _remember(self, key: bytes, raw: bytes, plain: bool = False) -> "Entry":
        """Classify a new distinct line and cache it (the cache is bounded: oldest quarter dropped).

        A line with redraws, colours, NULs or an excessive length is a COMPOSITE entry: its cleaned
        segments get entries of their own (``plain``), and it is quiet when they all are.
        """
        if not plain and (b"\r" in raw or b"\x1b" in raw or b"\x00" in raw or len(raw) > MAX_TEXT):
            subs = []
            for seg in normalize.clean(_cut(raw)):
                seg_key = seg.translate(normalize.MASK)
                subs.append(self.cache.get(seg_key) or self._remember(seg_key, seg, plain=True))
            ent = Entry(COMPOSITE, (), (), 0, "", 0, "", "", False)
            ent.quiet = all(sub.quiet for sub in subs)
        else:
            ent = self._classify(raw)
        cache = self.cache
        if len(cache) >= CACHE_MAX:
            for old in list(cache)[: CACHE_MAX // 4]:
                del cache[old]
        cache[key] = ent
        self.res.distinct += 1
        return ent

    # -- new distinct line ------------------------------------------------------------------
    def _classify(self, seg: bytes) -> Entry:
        level, logger, proc, msg = normalize.strip_prefix(seg)
        text = normalize.decode(msg)
        kind = line_kind(text)
        m = self.m
        static, dynamic = m.classify("line", text, level)
        if logger == "TM":
            s2, d2 = m.classify("tm", text, level)
            static, dynamic = static + s2, dynamic + d2
        if kind == FRAME:
            s2, d2 = m.classify("frame", text, level)
            static, dynamic = static + s2, dynamic + d2
        flags = 0
        if level in ("error", "fatal"):
            flags |= F_FAIL
        if structure.any_literal(text, structure.CRASH_LITERALS) and structure.CRASH.search(text):
            flags |= F_CRASH
        if "out of memory" in text:
            flags |= F_OOM
        if "EngineConfig(" in text:
            flags |= F_CONFIG
        if text.startswith(structure.CHECK_ENV_KEYS) and structure.CHECK_ENV.match(text):
            flags |= F_ENV
        if "Uvicorn running on" in text or "Finished server process" in text or "Application startup complete" in text:
            flags |= F_SERVE
        if "Errno 98" in text or "Cannot find empty port" in text:
            flags |= F_BIND
        if "Fallback to pytorch engine" in text:
            flags |= F_FALLBACK
        if "NCCL" in text and ("error" in text.lower() or "WARN" in text):
            flags |= F_NCCL
        if not level and (structure.PROMPT.match(text) or structure.BARE_COMMAND.match(text)):
            flags |= F_CMD
        ent = Entry(kind, static, dynamic, flags, text, len(seg) - len(msg), level, logger, bool(proc))
        if logger == "uvicorn":
            am = structure.ACCESS.match(text)
            if am is not None and int(am.group("status")) >= 400:
                ent.http = (am.group("method"), am.group("path"))
                ent.quiet = False
        return ent

    # -- slow path: an occurrence that matters ---------------------------------------------------
    def _occurrence(self, ent: Entry, seg: bytes, no: int) -> None:
        text = normalize.decode(seg[ent.cut:])
        level = ent.level
        proc = normalize.strip_prefix(seg)[2] if ent.proc else ""
        if self.cmd_pending is not None:
            self._command_continuation(text, ent, no)
        self.echo = False
        group = self._structure(ent, text, level, proc, no)
        if self.echo:
            return
        res = self.res
        conseq = self.m.consequence_ids
        what = ""
        for pid in ent.static:
            res.hit(pid, Occ(no, group, text))
            what = what or conseq.get(pid, "")
        for pid in ent.dynamic:
            if self.m.patterns[pid].regex.search(text) is not None:
                res.hit(pid, Occ(no, group, text))
                what = what or conseq.get(pid, "")
        if what:
            self._marker(no, text, "consequence", what)
        flags = ent.flags
        if not flags:
            return
        if flags & F_FAIL and not what and not any(pid in self.m.not_failure_ids for pid in ent.static):
            self._marker(no, text, level)
        if flags & F_CRASH:
            cm = structure.CRASH.search(text)
            if cm is not None:
                kind = next(k for k, v in cm.groupdict().items() if v and k != "what")
                self._marker(no, text, "crash", kind)
                res.fact("log.crash", kind, no)
        if flags & F_OOM:
            for k, v in structure.oom_facts(text).items():
                res.fact(k, v, no)
        if flags & F_CONFIG:
            parsed = structure.engine_config(text)
            if parsed is not None:
                backend, values = parsed
                res.configs.add((no, backend, values))
                res.fact("log.backend", backend, no)
                for k, v in values.items():
                    if v is not None and not isinstance(v, (list, dict)):
                        res.fact(f"log.engine_config.{k}", v, no)
        if flags & F_ENV:
            for k, v in structure.check_env_facts(text).items():
                res.fact(k, v, no)
        if flags & F_SERVE:
            sm = structure.SERVING.search(text)
            if sm is not None:
                res.fact("log.serving", True, no, last=True)
                res.fact("log.server_url", sm.group("url"), no)
                res.fact("log.port", int(sm.group("port")), no)
            elif "Finished server process" in text:
                res.fact("log.server_stopped", True, no, last=True)
        if flags & F_BIND:
            bm = structure.BIND_ERROR.search(text)
            port = bm.group("port") or bm.group("gport") if bm is not None else None
            if port:
                res.fact("log.port_in_use", int(port), no)
                if bm.group("host") is not None:
                    res.fact("log.bind_host", bm.group("host"), no)
        if flags & F_FALLBACK:
            res.fact("log.fallback_to_pytorch", True, no)
            res.fact("log.backend", "pytorch", no, last=True)
        if flags & F_NCCL:
            res.nccl.add((no, text))
        if flags & F_CMD and not self.busy:
            pm = structure.PROMPT.match(text)
            cand = CommandCandidate(no, (pm.group("cmd") if pm else text).strip(), "prompt" if pm else "bare")
            if cand.text.endswith("\\"):
                cand.text = cand.text[:-1].rstrip()
                self.cmd_pending = cand
            res.commands.add(cand)

    def _command_continuation(self, text: str, ent: Entry, no: int) -> None:
        cand = self.cmd_pending
        assert cand is not None
        if ent.kind not in (INDENTED, PLAIN) or no > cand.line + 40:
            self.cmd_pending = None
            return
        part = text.strip()
        more = part.endswith("\\")
        cand.text = f"{cand.text} {part[:-1].rstrip() if more else part}".strip()
        if not more:
            self.cmd_pending = None

    def _blank(self) -> None:
        """A blank line ends exception messages (blank lines inside a traceback do not end it)."""
        for st in self.procs.values():
            if st.exc is not None:
                self._end_exception(st)

    def _marker(self, no: int, text: str, kind: str, detail: str = "") -> None:
        self.res.markers.add(Marker(no, text, kind, detail))
        if not self.res.first_failure and kind != "consequence":
            self.res.first_failure = no

    def _http(self, route: Tuple[str, str], seg: bytes, no: int) -> None:
        """An access line with a 4xx/5xx status: counted per (method, path, status). HTTP errors are
        records, not log events; their rule hits are added once, at the end (_http_hits)."""
        at = seg.rfind(b'" ')
        status = seg[at + 2: at + 5]
        key = (route[0], route[1], int(status) if status.isdigit() else 0)
        he = self.res.http.get(key)
        if he is None and len(self.res.http) >= HTTP_MAX:  # paths with ids: keep memory bounded
            key = (route[0], "<other paths>", key[2])
            he = self.res.http.get(key)
        if he is None:
            reason = normalize.decode(seg[at + 6:]) if at >= 0 else ""
            he = self.res.http[key] = HttpError(key[0], key[1], key[2], reason, 0, no, no)
        he.count += 1
        he.last = no

    def _http_hits(self) -> None:
        """Rule hits of the HTTP errors (first and last occurrence of each; counted, not listed)."""
        for he in self.res.http.values():
            for pid in self.m.search("http", he.text):
                h = self.res.hits.get(pid) or Hit()
                self.res.hits[pid] = h
                h.occ.add(Occ(he.first, -1, he.text))
                if he.last != he.first:
                    h.occ.add(Occ(he.last, -1, he.text))
                h.count += he.count

    # -- tracebacks --------------------------------------------------------------------------
    def _proc(self, proc: str) -> _Proc:
        st = self.procs.get(proc)
        if st is None:
            st = self.procs[proc] = _Proc()
        return st

    def _structure(self, ent: Entry, text: str, level: str, proc: str, no: int) -> int:
        """Feed the traceback state machine; returns the traceback group of this line (-1: none)."""
        kind = ent.kind
        st = self.procs.get(proc)
        if st is None:
            if kind not in (TB_START, PROC_HEADER, CHAIN, EXC_STRICT):
                return -1
            st = self._proc(proc)
        if st.exc is not None:                       # collecting an exception's message
            if kind == INDENTED and st.cont < CONT_MAX and not level:
                st.exc.message = f"{st.exc.message}\n{text.strip()}" if st.exc.message else text.strip()
                st.cont += 1
                return st.exc.group
            if kind == INDENTED and level:
                return st.exc.group
            self._end_exception(st)
        if st.tb is not None:                        # inside a traceback
            tb = st.tb
            if kind == FRAME:
                fm = structure.FRAME_RE.match(text)
                if fm is not None:
                    tb.frames.append(Frame(fm.group("path"), int(fm.group("lineno")), fm.group("func") or "", no))
                    for k, v in structure.site_facts(fm.group("path")).items():
                        self.res.fact(k, v, no)
                return tb.group
            if kind == INDENTED or kind == BLANK:
                self.echo = kind == INDENTED       # source code echoed under a frame: not an event
                return tb.group
            if level and kind not in (EXC_STRICT, EXC_LOOSE):
                return -1                              # a log line of another thread between frames
            if kind in (EXC_STRICT, EXC_LOOSE):
                em = structure.EXC_RE.match(text)
                assert em is not None
                self._start_exception(st, em.group("type"), em.group("msg") or "", no, proc, tb)
                return tb.group
            self._close_traceback(st)                  # anything else ends a traceback without exception
        # idle
        if kind == TB_START:
            self._open_traceback(st, proc, no)
            return st.tb.group if st.tb is not None else -1
        if kind == CHAIN:
            st.chain = "context" if text.startswith("During") else "cause"
            return st.last_tb.group if st.last_tb is not None else -1
        if kind == PROC_HEADER:
            st.header = (no, text)
            return -1
        if kind == EXC_STRICT:
            em = structure.EXC_RE.match(text)
            assert em is not None
            self._start_exception(st, em.group("type"), em.group("msg") or "", no, proc, None)
            st.exc.level = level  # type: ignore[union-attr]
            return -1
        return -1

    def _open_traceback(self, st: _Proc, proc: str, no: int) -> None:
        self.next_tb += 1
        chained = st.chain is not None and st.last_tb is not None and no - st.last_tb.start < 100000
        group = st.last_tb.group if chained and st.last_tb is not None else self.next_tb
        header = st.header[1] if st.header is not None and no - st.header[0] <= 2 else ""
        st.tb = Traceback(self.next_tb, group, proc, no, header=header, chain_kind=st.chain if chained else "")
        st.chain_index = st.chain_index + 1 if chained else 0
        st.chain = None
        st.header = None
        self.busy += 1

    def _close_traceback(self, st: _Proc) -> None:
        if st.tb is not None:
            self.res.tracebacks.add(st.tb)
            st.last_tb = st.tb
            st.tb = None
            self.busy -= 1

    def _start_exception(self, st: _Proc, etype: str, msg: str, no: int, proc: str, tb: Optional[Traceback]) -> None:
        group = tb.group if tb is not None else -1
        st.exc = Exc(etype, msg.strip(), no, group, tb.id if tb is not None else -1, proc,
                     st.chain_index if tb is not None else 0)
        st.cont = 0
        if tb is None:
            self.busy += 1

    def _end_exception(self, st: _Proc) -> None:
        exc = st.exc
        if exc is None:
            return
        st.exc = None
        if st.tb is not None:
            st.tb.exc = exc
            self._close_traceback(st)
        else:
            self.busy -= 1
        res = self.res
        res.exceptions.add(exc)
        is_conseq = False
        for pid in self.m.search("exception", exc.text):
            res.hit(pid, Occ(exc.line, exc.group, exc.text))
        for pid in self.m.search("line", exc.head):
            if pid in self.m.consequence_ids:
                is_conseq = True
        if exc.short.endswith("Warning") or exc.level in ("debug", "info", "warning"):
            return
        if exc.tb >= 0 or not is_conseq:
            kind = "consequence" if is_conseq else "exception"
            self._marker(exc.line, exc.head, kind, exc.short)

    def finish(self) -> LogAnalysis:
        """Close what is still open (a traceback cut by the end of the log) and return the result."""
        for st in self.procs.values():
            if st.exc is not None:
                self._end_exception(st)
            if st.tb is not None:
                self._close_traceback(st)
        self.cmd_pending = None
        self._http_hits()
        return self.res


# -- whole inputs -------------------------------------------------------------------------------
def analyze_stream(stream: BinaryIO, matcher: Matcher, source: str = "", limit: Optional[int] = None,
                   id_base: int = 0, start: bool = True, block_size: int = BLOCK) -> LogAnalysis:
    """Analyse a stream (``limit``: only that many bytes; ``start``: it is the beginning of the input)."""
    stats = ReadStats()
    an = Analyzer(matcher, source, id_base)
    for block, a, b in iter_blocks(stream, stats, limit=limit, check=start, block=block_size):
        an.feed(block, a, b)
    res = an.finish()
    res.bytes = stats.bytes
    res.cut_lines = stats.cut_lines
    res.longest_cut = stats.longest_cut
    return res


def analyze_path(path: Optional[str], matcher: Matcher, workers: Optional[int] = None,
                 after_fork: Optional[Callable[[], None]] = None) -> LogAnalysis:
    """Analyse a file (``-``/None: stdin). Big regular files are split across forked workers.

    ``after_fork`` runs once no more processes will be forked (at once for sequential reading): the
    caller starts its threads there, because forking a process that has threads is unsafe.
    """
    from doctor.logs.reader import open_log
    ranges: List[Tuple[int, int]] = []
    if path not in (None, "-") and workers != 1 and _can_fork():
        try:
            size = os.path.getsize(path)  # type: ignore[arg-type]
        except OSError:
            size = 0
        if size >= PARALLEL_MIN and os.path.isfile(path):  # type: ignore[arg-type]
            ranges = split_ranges(path, size, workers or _worker_count(size))  # type: ignore[arg-type]
    if len(ranges) > 1:
        return _analyze_parallel(path, ranges, matcher, after_fork)  # type: ignore[arg-type]
    if after_fork is not None:
        after_fork()
    stream, name = open_log(path)
    try:
        return analyze_stream(stream, matcher, source=name)
    finally:
        if name != "-":
            stream.close()


def _can_fork() -> bool:
    return hasattr(os, "fork") and sys.platform.startswith("linux")


def _worker_count(size: int) -> int:
    return max(1, min(os.cpu_count() or 1, 8, size // WORKER_SHARE))


def split_ranges(path: str, size: int, k: int) -> List[Tuple[int, int]]:
    """Byte ranges that start at noise lines (so never inside a traceback), about size/k each."""
    prefixes = noise_prefixes()
    if k <= 1 or not prefixes:
        return [(0, size)]
    noise = re.compile(b"\n(?=" + b"|".join(p.encode() for p in prefixes) + b")")
    cuts = [0]
    with open(path, "rb") as fh:
        if fh.read(2) == b"\x1f\x8b":
            return [(0, size)]
        for i in range(1, k):
            fh.seek(size * i // k)
            m = noise.search(fh.read(1 << 20))
            if m is not None and size * i // k + m.start() + 1 > cuts[-1]:
                cuts.append(size * i // k + m.start() + 1)
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _analyze_range(path: str, i: int, start: int, end: int, matcher: Matcher) -> LogAnalysis:
    with open(path, "rb") as fh:
        fh.seek(start)
        return analyze_stream(fh, matcher, source=path, limit=end - start, id_base=i * 10 ** 9, start=start == 0)


def _analyze_parallel(path: str, ranges: List[Tuple[int, int]], matcher: Matcher,
                      after_fork: Optional[Callable[[], None]]) -> LogAnalysis:
    """This process reads the first range, one forked worker each of the others; a worker that
    fails is redone here, so the result never depends on a worker."""
    children = []
    try:
        for i, (start, end) in enumerate(ranges[1:], 1):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # worker: never returns
                os.close(r)
                try:
                    payload = pickle.dumps(_analyze_range(path, i, start, end, matcher), protocol=pickle.HIGHEST_PROTOCOL)
                except BaseException:  # the parent redoes the range and reports any error itself
                    payload = b""
                with os.fdopen(w, "wb") as out:
                    out.write(payload)
                os._exit(0)
            os.close(w)
            children.append((pid, r, start, end, i))
        if after_fork is not None:
            after_fork()
        results = [_analyze_range(path, 0, ranges[0][0], ranges[0][1], matcher)]
        for pid, r, start, end, i in children:
            with os.fdopen(r, "rb") as fh:
                data = fh.read()
            os.waitpid(pid, 0)
            res = None
            try:
                res = pickle.loads(data) if data else None
            except Exception:
                res = None
            if not isinstance(res, LogAnalysis):
                res = _analyze_range(path, i, start, end, matcher)
            results.append(res)
        children = []
    finally:
        for pid, r, *_ in children:  # an error in this process: do not leave workers behind
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except OSError:
                pass
    total = results[0]
    for res in results[1:]:
        res.shift(total.lines)
        total.merge(res)
    total.workers = len(results)
    total.source = path
    return total
