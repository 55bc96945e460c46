"""Whether the ports a planned launch will bind are free, and who holds them if not.

The test is a real ``bind()`` on the planned address (closed at once, never listening), which is
exactly the operation that will fail with ``[Errno 98] address already in use``.
"""
from __future__ import annotations

import errno
import socket
from typing import Dict, Optional

from doctor.facts import ProbeContext, ProbeResult, probe


def port_is_free(host: str, port: int) -> Optional[bool]:
    """True if bind succeeds, False if the address is in use, None if the test itself failed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT like servers do
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            return None
    return True


def port_holder(port: int) -> Optional[str]:
    """'pid 123 (python ...)' of the listener, when visible to us."""
    try:
        import psutil
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                try:
                    cmd = " ".join(psutil.Process(conn.pid).cmdline())[:100]
                except psutil.Error:
                    cmd = "?"
                return f"pid {conn.pid} ({cmd})"
    except Exception:
        return None
    return None


@probe("ports", {
    "net.port.*.free": "whether the planned port can be bound",
    "net.port.*.holder": "process listening on the port, when visible",
    "net.port.*.host": "address the planned launch binds",
}, timeout_s=3.0)
def port_facts(ctx: ProbeContext) -> ProbeResult:
    planned = ctx.planned
    if planned is None or planned.port is None:
        return ProbeResult({})
    host = planned.bind_host or "0.0.0.0"
    port = planned.port
    facts: Dict[str, object] = {f"net.port.{port}.host": host}
    free = port_is_free(host, port)
    if free is None:
        return ProbeResult(facts, {f"net.port.{port}.free": f"could not test binding {host}:{port}"})
    facts[f"net.port.{port}.free"] = free
    if not free:
        holder = port_holder(port)
        if holder:
            facts[f"net.port.{port}.holder"] = holder
    return ProbeResult(facts)
