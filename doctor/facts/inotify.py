"""inotify limits and current use (Streamlit's file watcher exhausts them on shared hosts).

Current use is counted from ``/proc/<pid>/fdinfo`` of the processes we may read (our own user's),
which is what counts against ``max_user_watches``; other users' watches are invisible without root.
"""
from __future__ import annotations

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


def count_user_watches(proc: str = "/proc", deadline_s: float = 0.5) -> Tuple[int, int, bool]:
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


@probe("inotify", {
    "os.inotify.max_user_watches": "fs.inotify.max_user_watches",
    "os.inotify.max_user_instances": "fs.inotify.max_user_instances",
    "os.inotify.user_watches": "inotify watches held by this user's processes",
    "os.inotify.user_instances": "inotify instances held by this user's processes",
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
    watches, instances, complete = count_user_watches()
    if complete:
        facts["os.inotify.user_watches"] = watches
        facts["os.inotify.user_instances"] = instances
        return ProbeResult(facts)
    reason = "too many processes to count inotify watches quickly"
    return ProbeResult(facts, {"os.inotify.user_watches": reason, "os.inotify.user_instances": reason})
