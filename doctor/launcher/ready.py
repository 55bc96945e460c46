"""Decide what happened to a launch: it exited, it became ready (and answers), or it hung.

"Ready" is never taken from a log line alone: lmdeploy prints its URL banner *before* uvicorn binds
the port (the real port-in-use log shows the banner, then the bind error), and a port that answers
may belong to another server. So a launch is ready only when a process of *its own tree* listens on
the port and, where the program has one, the health request answers 200 (for lmdeploy's
OpenAI-compatible server also a real chat completion, unless disabled).
"""
from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Pattern, Set, Tuple

from doctor import knowledge
from doctor.command import Command
from doctor.launcher.process import Child

_URL = re.compile(r"https?://([\w.\-]+|\[[0-9a-f:]+\]):(\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class ReadySpec:
    server: Optional[bool]            # True: must become ready; False: must exit 0; None: either
    port: Optional[int] = None
    host: str = "127.0.0.1"
    lines: List[Pattern] = field(default_factory=list)
    health_path: Optional[str] = None
    chat_check: bool = False


@dataclass
class Outcome:
    kind: str                         # exited | ready | unhealthy | timeout | interrupted
    seconds: float
    code: Optional[int] = None
    signal: Optional[int] = None
    ready_by: Optional[str] = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "ready" or (self.kind == "exited" and self.code == 0 and not self.server_exit)

    server_exit: bool = False         # a server that exited (even with 0) did not become ready

    def to_json(self) -> dict:
        out = {"kind": self.kind, "seconds": round(self.seconds, 2)}
        for key in ("code", "signal", "ready_by", "detail"):
            value = getattr(self, key)
            if value not in (None, ""):
                out[key] = value
        return out


def spec_for(cmd: Command, chat_check: bool = True) -> ReadySpec:
    """Readiness rules for a command, from rules/knowledge/ready.yaml and the parsed command."""
    programs = knowledge.table("ready").get("programs", {})
    prog = programs.get(cmd.program, programs.get("python", {}))
    port = cmd.port
    if cmd.program == "lmdeploy":
        server: Optional[bool] = cmd.subcommand.startswith("serve ")
    elif cmd.program == "streamlit":
        server = True
    else:
        server = True if port is not None else None
    host = cmd.bind_host or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    health = (prog.get("health") or {}).get(cmd.subcommand)
    return ReadySpec(server=server, port=port, host=host,
                     lines=[re.compile(p) for p in prog.get("lines", [])], health_path=health,
                     chat_check=chat_check and cmd.program == "lmdeploy" and cmd.subcommand == "serve api_server")


def listening_ports(pids: Iterable[int]) -> Set[int]:
    """TCP ports a set of processes listen on (own processes are always readable)."""
    ports: Set[int] = set()
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency
        return ports
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            conns = proc.net_connections(kind="inet") if hasattr(proc, "net_connections") else proc.connections(kind="inet")
        except Exception:
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN and c.laddr:
                ports.add(c.laddr.port)
    return ports


def http_get(url: str, timeout: float = 3.0) -> Tuple[Optional[int], str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - local health check
            return resp.status, resp.read(65536).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(4096).decode("utf-8", "replace") if exc.fp else ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(exc)


def chat_completion(base: str, timeout: float = 60.0) -> Tuple[bool, str]:
    """One real chat completion against the served model (the verification `run` reports)."""
    status, body = http_get(base + "/v1/models")
    try:
        model = json.loads(body)["data"][0]["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        return False, f"/v1/models answered {status}: {body[:200]}"
    payload = json.dumps({"model": model, "messages": [{"role": "user", "content": "Say hello."}],
                          "max_tokens": 16, "temperature": 0}).encode()
    req = urllib.request.Request(base + "/v1/chat/completions", data=payload,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local server
            data = json.loads(resp.read().decode("utf-8", "replace"))
        text = data["choices"][0]["message"]["content"]
        return True, f"chat completion from {model!r}: {text!r}"
    except urllib.error.HTTPError as exc:
        return False, f"chat completion answered {exc.code}: {exc.read(300).decode('utf-8', 'replace')}"
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        return False, f"chat completion failed: {exc}"


class Watcher:
    """Collects what the child's output says (URL banners) while it runs."""

    def __init__(self, spec: ReadySpec):
        self.spec = spec
        self.banner: Optional[str] = None
        self.banner_port: Optional[int] = None

    def on_line(self, line: str) -> None:
        clean = _ANSI.sub("", line)
        if self.banner is None and any(p.search(clean) for p in self.spec.lines):
            self.banner = clean.strip()[:200]
            m = _URL.search(clean)
            if m:
                self.banner_port = int(m.group(2))


def wait_outcome(child: Child, spec: ReadySpec, watcher: Watcher, timeout_s: float,
                 stop_flag: Optional[List[bool]] = None, unhealthy_after_s: float = 30.0) -> Outcome:
    """Poll until the child exits, is verified ready, answers wrongly for too long, or times out."""
    start = child.started or time.monotonic()
    port_seen_at: Optional[float] = None
    problem = ""
    while True:
        elapsed = time.monotonic() - start
        code = child.poll()
        if code is not None:
            child.wait_output()
            if code < 0:
                return Outcome("exited", elapsed, signal=-code, detail=f"killed by signal {-code}")
            return Outcome("exited", elapsed, code=code, server_exit=bool(spec.server),
                           detail="the server exited" if spec.server else "")
        if stop_flag and stop_flag[0]:
            return Outcome("interrupted", elapsed, detail="stopped by the user")
        if spec.server is not False:
            port = spec.port or watcher.banner_port
            owned = listening_ports(child.tree_pids())
            if port is None and owned:
                port = min(owned)
            if port is not None and port in owned:
                port_seen_at = port_seen_at or time.monotonic()
                verdict = _verify(spec, port)
                if verdict is not None and verdict[0]:
                    return Outcome("ready", time.monotonic() - start, ready_by=verdict[1])
                if verdict is not None:
                    problem = verdict[1]
                    if time.monotonic() - port_seen_at > unhealthy_after_s:
                        return Outcome("unhealthy", time.monotonic() - start, detail=problem)
        if elapsed > timeout_s:
            detail = f"no outcome within {timeout_s:g}s" + (f"; last problem: {problem}" if problem else "")
            return Outcome("timeout", elapsed, detail=detail)
        time.sleep(0.2)


def _verify(spec: ReadySpec, port: int) -> Optional[Tuple[bool, str]]:
    """(True, how) when verified; (False, why) when it answers wrongly; None to keep waiting."""
    base = f"http://{spec.host}:{port}"
    if spec.health_path is None:
        with socket.socket() as sock:
            sock.settimeout(1.0)
            if sock.connect_ex((spec.host, port)) == 0:
                return True, f"port {port} answers (own process listens)"
        return None
    status, _body = http_get(base + spec.health_path)
    if status != 200:
        return None
    how = f"GET {spec.health_path} -> 200 on port {port}"
    if spec.chat_check:
        ok, detail = chat_completion(base)
        return (True, f"{how}; {detail}") if ok else (False, detail)
    return True, how
