"""A launched command as a process group that can always be killed, whatever happens to lmdoctor.

The child runs in its own session (so the terminal's Ctrl-C reaches lmdoctor, which then stops the
whole tree in order) with its output merged, streamed live and copied into a log file. A tiny
watchdog process kills the child's process group if lmdoctor itself dies (even by SIGKILL), so no
server keeps holding GPU memory behind the user's back.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, IO, List, Mapping, Optional, Set

# Runs in its own session; exits when the group is empty, kills the group when its parent is gone.
_WATCHDOG = r"""
import os, signal, sys, time
parent, pgid = int(sys.argv[1]), int(sys.argv[2])
def group_alive():
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
while group_alive():
    if os.getppid() != parent:
        for sig, pause in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.time() + pause
            while time.time() < deadline and group_alive():
                time.sleep(0.1)
        break
    time.sleep(0.3)
"""


def _descendants(pid: int) -> List[int]:
    try:
        import psutil
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except Exception:
        return []


def _alive(pid: int) -> bool:
    try:
        import psutil
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE
    except Exception:
        return False


class Child:
    """One launch: start, stream output, observe lines, and kill the whole tree on request."""

    def __init__(self, argv: List[str], env: Mapping[str, str], log_path: str,
                 echo: Optional[IO[str]] = None, on_line: Optional[Callable[[str], None]] = None):
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.echo = echo
        self.on_line = on_line
        self.proc: Optional[subprocess.Popen] = None
        self.watchdog: Optional[subprocess.Popen] = None
        self.known_pids: Set[int] = set()
        self._reader: Optional[threading.Thread] = None
        self.started = 0.0

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        env = dict(self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")  # Python children would otherwise hold logs back in a pipe
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.known_pids.add(self.proc.pid)
        self.watchdog = subprocess.Popen([sys.executable, "-S", "-c", _WATCHDOG, str(os.getpid()), str(self.proc.pid)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        self._reader = threading.Thread(target=self._pump, name="child-output", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        """Copy the child's bytes to the log and the terminal; report complete lines to the observer."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        pending = b""
        with open(self.log_path, "ab") as log:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                log.write(chunk)
                log.flush()
                if self.echo is not None:
                    try:
                        self.echo.write(chunk.decode("utf-8", "replace"))
                        self.echo.flush()
                    except (OSError, ValueError):
                        self.echo = None  # the terminal went away; keep logging
                pending += chunk
                *lines, pending = pending.replace(b"\r", b"\n").split(b"\n")
                pending = pending[-65536:]
                if self.on_line is not None:
                    for raw in lines:
                        self.on_line(raw.decode("utf-8", "replace"))
            if pending and self.on_line is not None:
                self.on_line(pending.decode("utf-8", "replace"))

    def poll(self) -> Optional[int]:
        if self.proc is None:
            return None
        code = self.proc.poll()
        if code is None:
            self.known_pids.update(_descendants(self.proc.pid))
        return code

    def wait_output(self, timeout: float = 2.0) -> None:
        """Let the reader drain what the child wrote before it exited."""
        if self._reader is not None:
            self._reader.join(timeout)

    def tree_pids(self) -> List[int]:
        """Every process of this launch still alive (group members and descendants that left the group)."""
        return sorted(p for p in self.known_pids if _alive(p))

    def kill_tree(self, grace_s: float = 5.0) -> List[int]:
        """SIGTERM the group and escaped descendants, SIGKILL what survives the grace period.

        Returns the pids that were still alive when asked to stop (for the transcript).
        """
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            self.known_pids.update(_descendants(self.proc.pid))
        targets = self.tree_pids()
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            for pid in self.tree_pids():
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and (self.tree_pids() or self.proc.poll() is None):
                time.sleep(0.05)
            if not self.tree_pids() and self.proc.poll() is not None:
                break
        try:
            self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
        self.wait_output(1.0)
        if self.watchdog is not None and self.watchdog.poll() is None:
            self.watchdog.kill()
            self.watchdog.wait()
        return targets
