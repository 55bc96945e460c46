"""What a log is made of, beyond single lines: tracebacks, exceptions, crashes, HTTP errors, launch
commands, printed engine configs, versions and GPU facts (the ``log.*`` facts come from here).

The records are small picklable dataclasses with line numbers, so the analysis of a file split
across worker processes can be shifted and merged (:meth:`LogAnalysis.merge`). Lists that could
grow with the log (one traceback per request...) keep their first and last items only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

KEEP = 24          # first and last items kept of each unbounded list
OCC_KEEP = 8       # occurrences kept per pattern hit (first and last)


class Bounded:
    """A list that keeps its first and last ``keep`` items (and counts the ones in between)."""

    __slots__ = ("head", "tail", "dropped", "keep")

    def __init__(self, keep: int = KEEP):
        self.head: List[Any] = []
        self.tail: List[Any] = []
        self.dropped = 0
        self.keep = keep

    def add(self, item: Any) -> None:
        if len(self.head) < self.keep:
            self.head.append(item)
            return
        self.tail.append(item)
        if len(self.tail) > self.keep:
            del self.tail[0]
            self.dropped += 1

    def items(self) -> List[Any]:
        return self.head + self.tail

    def __len__(self) -> int:
        return len(self.head) + len(self.tail) + self.dropped

    def __bool__(self) -> bool:
        return bool(self.head)

    def extend(self, other: "Bounded") -> None:
        for item in other.items():
            self.add(item)
        self.dropped += other.dropped

    def __getstate__(self):
        return (self.head, self.tail, self.dropped, self.keep)

    def __setstate__(self, state):
        self.head, self.tail, self.dropped, self.keep = state


@dataclass
class Occ:
    """One occurrence of a pattern: line number, traceback group (-1: none), text as shown."""

    line: int
    group: int
    text: str


@dataclass
class Hit:
    count: int = 0
    occ: Bounded = field(default_factory=lambda: Bounded(OCC_KEEP))

    def add(self, occ: Occ) -> None:
        self.count += 1
        self.occ.add(occ)


@dataclass
class Frame:
    path: str
    lineno: int
    func: str
    line: int


@dataclass
class Exc:
    """A Python exception: from a traceback (``tb`` >= 0) or logged on one line (``tb`` = -1)."""

    type: str
    message: str
    line: int
    group: int
    tb: int = -1
    proc: str = ""
    chain_index: int = 0          # 0: first exception of its chain (the cause), 1.. the ones raised while handling it
    level: str = ""               # log level of a logged exception (warning-level ones are not failures)

    @property
    def short(self) -> str:
        return self.type.rsplit(".", 1)[-1]

    @property
    def text(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type

    @property
    def head(self) -> str:
        first = self.message.split("\n", 1)[0].strip()
        if not first and "\n" in self.message:
            first = self.message.strip().split("\n", 1)[0].strip()
        return f"{self.type}: {first}" if first else self.type


@dataclass
class Traceback:
    id: int
    group: int
    proc: str
    start: int
    header: str = ""
    frames: List[Frame] = field(default_factory=list)
    exc: Optional[Exc] = None
    chain_kind: str = ""          # "context" (During handling...), "cause" (The above exception was the direct cause...)


@dataclass
class Marker:
    """A line that shows that something failed (kind: exception, crash, fatal, error, consequence)."""

    line: int
    text: str
    kind: str
    detail: str = ""


@dataclass
class HttpError:
    method: str
    path: str
    status: int
    reason: str
    count: int
    first: int
    last: int

    @property
    def text(self) -> str:
        return f"{self.method} {self.path} {self.status} {self.reason}".strip()


@dataclass
class CommandCandidate:
    line: int
    text: str
    kind: str                     # prompt (shell prompt line), bare (a command line in the log)


@dataclass
class LogAnalysis:
    """Everything the explain pipeline learned from one log (or one byte range of it)."""

    source: str = ""
    lines: int = 0
    bytes: int = 0
    processed: int = 0            # lines that reached Python (the rest was skipped as noise)
    distinct: int = 0             # distinct normalised lines seen
    cut_lines: int = 0
    longest_cut: int = 0
    workers: int = 1
    first_failure: int = 0        # line of the first failure marker (0: none)
    hits: Dict[int, Hit] = field(default_factory=dict)
    tracebacks: Bounded = field(default_factory=Bounded)
    exceptions: Bounded = field(default_factory=Bounded)
    markers: Bounded = field(default_factory=lambda: Bounded(48))
    http: Dict[Tuple[str, str, int], HttpError] = field(default_factory=dict)
    commands: Bounded = field(default_factory=Bounded)
    configs: Bounded = field(default_factory=Bounded)        # (line, backend, {key: value})
    facts: Dict[str, Tuple[int, Any]] = field(default_factory=dict)   # log.* name -> (line, value); first wins
    nccl: Bounded = field(default_factory=lambda: Bounded(8))

    # -- building ------------------------------------------------------------------------
    def fact(self, name: str, value: Any, line: int, last: bool = False) -> None:
        if last or name not in self.facts:
            self.facts[name] = (line, value)

    def hit(self, pid: int, occ: Occ) -> None:
        h = self.hits.get(pid)
        if h is None:
            h = self.hits[pid] = Hit()
        h.add(occ)

    # -- parallel merge ---------------------------------------------------------------------
    def shift(self, offset: int) -> None:
        """Add ``offset`` to every line number (the analysis of a later byte range)."""
        if not offset:
            return
        for h in self.hits.values():
            for o in h.occ.items():
                o.line += offset
        for tb in self.tracebacks.items():
            tb.start += offset
            for fr in tb.frames:
                fr.line += offset
        for ex in self.exceptions.items():
            ex.line += offset
        for mk in self.markers.items():
            mk.line += offset
        for he in self.http.values():
            he.first += offset
            he.last += offset
        for c in self.commands.items():
            c.line += offset
        self.configs = _shifted(self.configs, offset)
        self.nccl = _shifted(self.nccl, offset)
        self.facts = {k: (ln + offset, v) for k, (ln, v) in self.facts.items()}
        if self.first_failure:
            self.first_failure += offset

    def merge(self, later: "LogAnalysis") -> None:
        """Append the analysis of the byte range that follows this one (already shifted)."""
        self.lines += later.lines
        self.bytes += later.bytes
        self.processed += later.processed
        self.distinct += later.distinct
        self.cut_lines += later.cut_lines
        self.longest_cut = max(self.longest_cut, later.longest_cut)
        self.first_failure = self.first_failure or later.first_failure
        for pid, h in later.hits.items():
            mine = self.hits.get(pid)
            if mine is None:
                self.hits[pid] = h
            else:
                mine.count += h.count
                mine.occ.extend(h.occ)
        for name in ("tracebacks", "exceptions", "markers", "commands", "configs", "nccl"):
            getattr(self, name).extend(getattr(later, name))
        for key, he in later.http.items():
            mine_he = self.http.get(key)
            if mine_he is None:
                self.http[key] = he
            else:
                mine_he.count += he.count
                mine_he.last = he.last
        for k, v in later.facts.items():
            if k not in self.facts or k in LAST_WINS:
                self.facts[k] = v


LAST_WINS = {"log.serving", "log.server_stopped"}


def _shifted(items: Bounded, offset: int) -> Bounded:
    out = Bounded(items.keep)
    out.head = [(ln + offset, *rest) for ln, *rest in items.head]
    out.tail = [(ln + offset, *rest) for ln, *rest in items.tail]
    out.dropped = items.dropped
    return out


# -- line kinds ---------------------------------------------------------------------------------
PLAIN, BLANK, TB_START, FRAME, INDENTED, CHAIN, PROC_HEADER, EXC_STRICT, EXC_LOOSE = range(9)

FRAME_RE = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<lineno>\d+)(?:, in (?P<func>.+))?\s*$')
EXC_RE = re.compile(r"^(?P<type>(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)(?::(?: (?P<msg>.*))?)?\s*$")
EXC_STRICT_SUFFIX = re.compile(r"(?:Error|Exception|Exit|Interrupt|Warning|Pool|Fault|Timeout|Failure)$")
PROC_HEADER_RE = re.compile(r"^Process [\w\-:.]+:$")
CHAIN_CONTEXT = "During handling of the above exception, another exception occurred:"
CHAIN_CAUSE = "The above exception was the direct cause of the following exception:"


def line_kind(text: str) -> int:
    if not text.strip():
        return BLANK
    first = text[0]
    if first in " \t":
        if FRAME_RE.match(text):
            return FRAME
        stripped = text.strip()
        if stripped == "Traceback (most recent call last):":
            return TB_START
        return INDENTED
    if text.startswith("Traceback (most recent call last):"):
        return TB_START
    if text == CHAIN_CONTEXT or text == CHAIN_CAUSE:
        return CHAIN
    if first == "P" and PROC_HEADER_RE.match(text):
        return PROC_HEADER
    m = EXC_RE.match(text)
    if m is not None:
        if EXC_STRICT_SUFFIX.search(m.group("type")) and (m.group("msg") is not None or text.rstrip().endswith(":")
                                                           or "." in m.group("type")):
            return EXC_STRICT
        if ":" in text or "." in m.group("type") or EXC_STRICT_SUFFIX.search(m.group("type")):
            return EXC_LOOSE    # a bare `AssertionError` (an assert without message) ends a traceback too
    return PLAIN


# -- extractors: facts read from single lines --------------------------------------------------
_SIZE = r"(\d+(?:\.\d+)?) ?([KMGT]i?B)"
_UNITS = {"KIB": 1 / 1024, "KB": 1 / 1024, "MIB": 1, "MB": 1, "GIB": 1024, "GB": 1024, "TIB": 1 << 20, "TB": 1 << 20}


def to_mib(number: str, unit: str) -> float:
    return round(float(number) * _UNITS[unit.upper()], 2)


TORCH_OOM_NEW = re.compile(
    r"Tried to allocate " + _SIZE + r"\. GPU (\d+) has a total capacity of " + _SIZE + r" of which " + _SIZE + r" is free")
TORCH_OOM_PROC = re.compile(r"Process (\d+) has " + _SIZE + r" memory in use")
TORCH_OOM_SELF = re.compile(r"this process has " + _SIZE + r" memory in use")
TORCH_OOM_OLD = re.compile(
    r"Tried to allocate " + _SIZE + r" \(GPU (\d+); " + _SIZE + r" total capacity; " + _SIZE +
    r" already allocated; " + _SIZE + r" free; " + _SIZE + r" reserved in total by PyTorch\)")
TM_OOM = re.compile(r"CUDA (?:runtime )?error: out of memory\s*(?P<file>\S+\.(?:cu|cc|h|cpp)(?::\d+)?)?")
ENGINE_CONFIG = re.compile(r"\b(Turbomind|Pytorch)EngineConfig\((.*)\)\s*$")
CONFIG_ITEM = re.compile(r"(\w+)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\[[^\]]*\]|[^,()\[\]]+)")
CHECK_ENV = re.compile(
    r"^(sys\.platform|Python|CUDA available|GPU [\d,]+|CUDA_HOME|NVCC|PyTorch|TorchVision|LMDeploy|transformers|"
    r"gradio|fastapi|pydantic|triton|timm|MUSA available): ?(.*)$")
CHECK_ENV_KEYS = ("sys.platform", "Python", "CUDA ", "GPU ", "NVCC", "PyTorch", "TorchVision", "LMDeploy", "transformers",
                  "gradio", "fastapi", "pydantic", "triton", "timm", "MUSA ")
SERVING = re.compile(r"Uvicorn running on (?P<url>https?://[^\s]+?:(?P<port>\d+))")
BIND_ERROR = re.compile(r"\[Errno 98\][^(\n]*(?:\('(?P<host>[^']*)', (?P<port>\d+)\))?|"
                        r"Cannot find empty port in range: (?P<gport>\d+)")
ACCESS = re.compile(r'^\S+ - "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})(?: (?P<reason>.*))?$')
CRASH = re.compile(
    r"(?P<abort>Aborted(?: \(core dumped\))?\s*$)|(?P<segfault>Segmentation fault)|(?P<illegal>Illegal instruction)|"
    r"(?P<bus>Bus error)|(?P<fpe>Floating point exception)|"
    # SIGKILL (the OOM killer): bare, bash's `script: line 3: 21645 Killed   cmd`, job control's `[1]+  Killed   cmd`
    r"(?P<killed>^Killed\s*$|\bline \d+: +\d+ Killed\b|^\[\d+\][+-]? +Killed\b)|"
    r"(?P<terminate>terminate called (?:after throwing an instance of '(?P<what>[^']+)'|without an active exception))|"
    r"(?P<fatal>Fatal Python error: (?!Segmentation fault|Aborted|Illegal instruction|Bus error|Floating point).*)|(?P<assertion>Assertion fail(?:ed)?\b|: assertion failed: |Assertion '.*' failed)")
CRASH_LITERALS = ("Aborted", "Segmentation fault", "Illegal instruction", "Bus error", "Floating point exception",
                  "Killed", "terminate called", "Fatal Python error", "Assertion", "assertion failed")
FALLBACK = re.compile(r"Fallback to pytorch engine because (?P<why>.+?)\.?$")
PROMPT = re.compile(
    r"^(?:\([\w.\-/]+\)\s+)?(?:[\w.\-]+@[\w.\-]+:[^\s#$]*\s?[#$]|[$#])\s+(?P<cmd>\S.*)$")
BARE_COMMAND = re.compile(
    r"^(?:[A-Z_][A-Z0-9_]*=\S+\s+)*(?:lmdeploy|python3?(?:\.\d+)?\s+(?:-m\s+lmdeploy|\S+\.py)|torchrun|streamlit|"
    r"CUDA_VISIBLE_DEVICES=\S+\s+lmdeploy)\b.*$")
SITE = re.compile(r"^(?P<prefix>.*?)/lib/python(?P<py>\d+\.\d+)/(?:site|dist)-packages/(?P<pkg>[\w.\-]+)")
LMDEPLOY_PATH = re.compile(r"^(?P<loc>.*/lmdeploy)/(?!bin/)[\w/]+\.py$")
CONDA_ENV = re.compile(r"/envs/(?P<name>[^/]+)$")
CHECK_ENV_PKGS = {"PyTorch": "torch", "TorchVision": "torchvision", "transformers": "transformers", "gradio": "gradio",
                  "fastapi": "fastapi", "pydantic": "pydantic", "triton": "triton", "timm": "timm"}


def oom_facts(text: str) -> Dict[str, Any]:
    """Numbers of a CUDA out-of-memory message (torch's two wordings, TurboMind's)."""
    out: Dict[str, Any] = {}
    m = TORCH_OOM_NEW.search(text)
    if m:
        out.update({"log.oom.tried_mib": to_mib(m.group(1), m.group(2)), "log.oom.gpu": int(m.group(3)),
                    "log.oom.total_mib": to_mib(m.group(4), m.group(5)), "log.oom.free_mib": to_mib(m.group(6), m.group(7)),
                    "log.oom.source": "torch"})
        self_m = TORCH_OOM_SELF.search(text)
        self_mib = to_mib(self_m.group(1), self_m.group(2)) if self_m else None
        if self_mib is not None:
            out["log.oom.self_mib"] = self_mib
        procs = [(int(p), to_mib(n, u)) for p, n, u in TORCH_OOM_PROC.findall(text)]
        others = [(p, mib) for p, mib in procs if self_mib is None or abs(mib - self_mib) > 0.01 * max(mib, 1)]
        out["log.oom.other_mib"] = round(sum(mib for _, mib in others), 2)
        out["log.oom.other_pids"] = [p for p, _ in others]
        return out
    m = TORCH_OOM_OLD.search(text)
    if m:
        out.update({"log.oom.tried_mib": to_mib(m.group(1), m.group(2)), "log.oom.gpu": int(m.group(3)),
                    "log.oom.total_mib": to_mib(m.group(4), m.group(5)), "log.oom.self_mib": to_mib(m.group(10), m.group(11)),
                    "log.oom.free_mib": to_mib(m.group(8), m.group(9)), "log.oom.source": "torch"})
        return out
    m = TM_OOM.search(text)
    if m:
        out["log.oom.source"] = "turbomind"
        if m.group("file"):
            out["log.oom.site"] = m.group("file").rsplit("/", 1)[-1]
    return out


def engine_config(text: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    m = ENGINE_CONFIG.search(text)
    if m is None:
        return None
    values: Dict[str, Any] = {}
    for key, raw in CONFIG_ITEM.findall(m.group(2)):
        raw = raw.strip()
        if raw[:1] in "'\"":
            values[key] = raw[1:-1]
        elif raw == "None":
            values[key] = None
        elif raw in ("True", "False"):
            values[key] = raw == "True"
        else:
            try:
                values[key] = int(raw)
            except ValueError:
                try:
                    values[key] = float(raw)
                except ValueError:
                    values[key] = raw
    return m.group(1).lower(), values


def check_env_facts(text: str) -> Dict[str, Any]:
    """Facts of one `lmdeploy check_env` line (versions, GPU names, CUDA)."""
    m = CHECK_ENV.match(text)
    if m is None:
        return {}
    key, value = m.group(1), m.group(2).strip()
    if not value:
        return {}
    if key == "LMDeploy":
        return {"log.lmdeploy_version": value.split("+", 1)[0], "log.lmdeploy_build": value}
    if key == "Python":
        return {"log.python_version": value.split()[0]}
    if key.startswith("GPU "):
        return {f"log.gpu.{i}.name": value for i in key[4:].split(",") if i.strip().isdigit()}
    if key == "NVCC":
        rel = re.search(r"release (\d+\.\d+)", value)
        return {"log.nvcc_version": rel.group(1)} if rel else {}
    if key == "CUDA available":
        return {"log.cuda_available": value == "True"}
    if key in CHECK_ENV_PKGS:
        if value in ("Not Found", "not found"):
            return {f"log.pkg.{CHECK_ENV_PKGS[key]}.version": "not installed"}
        return {f"log.pkg.{CHECK_ENV_PKGS[key]}.version": value}
    return {}


def site_facts(path: str) -> Dict[str, Any]:
    """Python and environment facts from a traceback path (site-packages, or lmdeploy run from a folder)."""
    m = SITE.match(path)
    if m is None:
        loose = LMDEPLOY_PATH.match(path)
        return {"log.lmdeploy_location": loose.group("loc")} if loose else {}
    out: Dict[str, Any] = {"log.python_version": m.group("py"), "log.env_prefix": m.group("prefix")}
    env = CONDA_ENV.search(m.group("prefix"))
    if env:
        out["log.conda_env"] = env.group("name")
    if m.group("pkg") == "lmdeploy":
        out["log.lmdeploy_location"] = path[: m.end("pkg")]
    return out


def any_literal(text: str, literals: Iterable[str]) -> bool:
    return any(lit in text for lit in literals)
