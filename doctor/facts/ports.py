"""Whether the ports a planned launch will bind are free, who holds them if not, and a free one nearby.

The test is a real ``bind()`` on the planned address (closed at once, never listening), which is
exactly the operation that will fail with ``[Errno 98] address already in use``. The suggested
replacement port is found the same way (the next port above the planned one that binds), so a fix
never proposes a port that is itself taken.
"""
from __future__ import annotations

import errno
import os
import socket
from typing import Dict, Optional, Tuple

from doctor.facts import ProbeContext, ProbeResult, probe

NEXT_PORT_TRIES = 50


def bind_test(host: str, port: int) -> Tuple[Optional[bool], str]:
    """(True, "") if bind succeeds, (False, "") if the address is in use, (None, reason) otherwise."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT like servers do
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return False, ""
        return None, f"{exc.strerror or exc} (errno {exc.errno})" if exc.errno else str(exc)
    except (OverflowError, ValueError, TypeError) as exc:  # port out of range, malformed host
        return None, str(exc)
    return True, ""


def port_is_free(host: str, port: int) -> Optional[bool]:
    """True if bind succeeds, False if the address is in use, None if the test itself failed."""
    return bind_test(host, port)[0]


def next_free_port(host: str, port: int, tries: int = NEXT_PORT_TRIES) -> Optional[int]:
    """The first port above ``port`` that binds on ``host`` (None when none of the next ``tries`` does)."""
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        if bind_test(host, candidate)[0]:
            return candidate
    return None


def port_holder(port: int) -> Optional[Tuple[int, str]]:
    """(pid, 'python ...') of the process listening on the port, when visible to us."""
    try:
        import psutil
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                try:
                    cmd = " ".join(psutil.Process(conn.pid).cmdline())[:100]
                except psutil.Error:
                    cmd = "?"
                return conn.pid, cmd
    except Exception:
        return None
    return None


@probe("ports", {
    "net.port.*.free": "whether the planned port can be bound",
    "net.port.*.holder": "process listening on the port, when visible",
    "net.port.*.host": "address the planned launch binds",
    "net.planned.port": "port the planned launch will listen on",
    "net.planned.host": "address the planned launch binds",
    "net.planned.free": "whether the planned port can be bound now",
    "net.planned.holder": "'pid N (command)' of the process listening on the planned port, when visible",
    "net.planned.holder_pid": "pid of that process",
    "net.planned.holder_is_mine": "whether that process belongs to the current user (so you may stop it)",
    "net.planned.next_free": "the first port above the planned one that binds on the same address",
    "net.planned.bind_error": "why binding the planned address failed for another reason than 'in use'",
}, timeout_s=3.0)
def port_facts(ctx: ProbeContext) -> ProbeResult:
    planned = ctx.planned
    if planned is None or planned.port is None:
        return ProbeResult({})
    host = planned.bind_host or "0.0.0.0"
    port = planned.port
    facts: Dict[str, object] = {f"net.port.{port}.host": host, "net.planned.port": port, "net.planned.host": host}
    free, error = bind_test(host, port)
    if free is None:
        facts["net.planned.bind_error"] = error
        reason = f"could not test binding {host}:{port}: {error}"
        unknown = {f"net.port.{port}.free": reason, "net.planned.free": reason}
        # A privileged port (EACCES below 1024 without root) has a fix on the same address.
        nxt = next_free_port(host, max(port, 1023)) if f"errno {errno.EACCES})" in error else None
        if nxt is not None:
            facts["net.planned.next_free"] = nxt
        else:
            unknown["net.planned.next_free"] = reason
        return ProbeResult(facts, unknown)
    facts[f"net.port.{port}.free"] = free
    facts["net.planned.free"] = free
    if not free:
        holder = port_holder(port)
        if holder:
            pid, cmd = holder
            facts[f"net.port.{port}.holder"] = facts["net.planned.holder"] = f"pid {pid} ({cmd})"
            facts["net.planned.holder_pid"] = pid
            facts["net.planned.holder_is_mine"] = _owned_by_me(pid)
        nxt = next_free_port(host, port)
        if nxt is not None:
            facts["net.planned.next_free"] = nxt
    return ProbeResult(facts)


def _owned_by_me(pid: int) -> bool:
    try:
        import psutil
        return psutil.Process(pid).uids().real == os.getuid()
    except Exception:
        return False
