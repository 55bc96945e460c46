"""inotify limits and current use (Streamlit's file watcher exhausts them on shared hosts).

Current use is counted from ``/proc/<pid>/fdinfo`` of the processes we may read (our own user's),
which is what counts against ``max_user_watches``. That count misses what we cannot see: in
containers that all run as root on one host (InternStudio, most cloud notebooks) every container's
root shares one limit. So the probe also *tries*: it opens one inotify instance, adds one watch on
the working directory and closes it at once — the same calls a file watcher makes, failing with
ENOSPC / EMFILE exactly when Streamlit would.
"""
from __future__ import annotations

import errno
import os
import time
from typing import Dict, Optional, Tuple

from doctor.facts import ProbeContext, ProbeResult, probe


def _read_int(path: str) -> Optional[int]:
    try:
        with open(path) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def count_user_watches(proc: str = "/proc", deadline_s: float = 0.25) -> Tuple[int, int, bool]:
    """(watches, inotify instances, complete) over the readable processes of this user."""
    uid = os.getuid()
    watches = instances = 0
    stop = time.monotonic() + deadline_s
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return 0, 0, False
    for pid in pids:
        if time.monotonic() > stop:
            return watches, instances, False
        base = os.path.join(proc, pid)
        try:
            if os.stat(base).st_uid != uid:
                continue
            fds = os.listdir(os.path.join(base, "fd"))
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(os.path.join(base, "fd", fd)) != "anon_inode:inotify":
                    continue
                with open(os.path.join(base, "fdinfo", fd)) as fh:
                    watches += sum(1 for line in fh if line.startswith("inotify wd:"))
                instances += 1
            except OSError:
                continue
    return watches, instances, True


def try_watch(path: str) -> Tuple[Optional[bool], str]:
    """(True, "") if a watch can be added now, (False, reason) when a limit is reached, (None, why) if untestable."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        init1, add_watch = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError, ImportError) as exc:
        return None, f"inotify calls unavailable: {exc}"
    add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    fd = init1(os.O_CLOEXEC | os.O_NONBLOCK)
    if fd < 0:
        err = ctypes.get_errno()
        if err == errno.EMFILE:
            return False, "inotify_init: EMFILE (fs.inotify.max_user_instances reached)"
        return None, f"inotify_init: {os.strerror(err)}"
    try:
        wd = add_watch(fd, os.fsencode(path), 0x00000004)  # IN_ATTRIB: cheap, no events expected
        if wd < 0:
            err = ctypes.get_errno()
            if err == errno.ENOSPC:
                return False, "inotify_add_watch: ENOSPC (fs.inotify.max_user_watches reached)"
            return None, f"inotify_add_watch({path}): {os.strerror(err)}"
        return True, ""
    finally:
        os.close(fd)


@probe("inotify", {
    "os.inotify.max_user_watches": "fs.inotify.max_user_watches",
    "os.inotify.max_user_instances": "fs.inotify.max_user_instances",
    "os.inotify.user_watches": "inotify watches held by this user's processes",
    "os.inotify.user_instances": "inotify instances held by this user's processes",
    "os.inotify.can_watch": "whether a new inotify watch can be added right now (tried, then closed)",
    "os.inotify.error": "why adding a watch failed (ENOSPC: max_user_watches reached; EMFILE: instances)",
}, timeout_s=2.0)
def inotify_facts(ctx: ProbeContext) -> ProbeResult:
    base = "/proc/sys/fs/inotify"
    if not os.path.isdir(base):
        return ProbeResult({})  # not Linux: no such limit, nothing to report
    facts: Dict[str, object] = {}
    for name in ("max_user_watches", "max_user_instances"):
        value = _read_int(os.path.join(base, name))
        if value is not None:
            facts[f"os.inotify.{name}"] = value
    can, why = try_watch(ctx.cwd if os.path.isdir(ctx.cwd) else "/")
    if can is not None:
        facts["os.inotify.can_watch"] = can
    if why:
        facts["os.inotify.error"] = why
    unknown: Dict[str, str] = {} if can is not None else {"os.inotify.can_watch": why}
    watches, instances, complete = count_user_watches()
    if complete:
        facts["os.inotify.user_watches"] = watches
        facts["os.inotify.user_instances"] = instances
        return ProbeResult(facts, unknown)
    reason = "too many processes to count inotify watches quickly"
    unknown.update({"os.inotify.user_watches": reason, "os.inotify.user_instances": reason})
    return ProbeResult(facts, unknown)
