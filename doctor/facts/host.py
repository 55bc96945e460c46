"""Host facts: RAM (and the container's memory limit), disk space where models and caches live, /dev/shm."""
from __future__ import annotations

import os
import platform
import shutil
from typing import Dict, Mapping, Optional, Tuple

from doctor.facts import ProbeContext, ProbeResult, probe

MIB = 1 << 20


def _cgroup_limit_mib() -> Optional[int]:
    """The container's memory limit (cgroup v2 or v1), or None when unlimited/unknown."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                raw = fh.read().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < (1 << 60):
            return int(raw) // MIB
    return None


def _meminfo_mib() -> Optional[Tuple[int, int]]:
    """(MemTotal, MemAvailable) in MiB from /proc/meminfo, None where it does not exist."""
    values: Dict[str, int] = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    values[key] = int(rest.split()[0]) // 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    if "MemTotal" not in values:
        return None
    return values["MemTotal"], values.get("MemAvailable", values["MemTotal"])


def hf_cache_dir(environ: Mapping[str, str]) -> str:
    """Where huggingface_hub stores downloads (HF_HUB_CACHE > HF_HOME/hub > ~/.cache/huggingface/hub)."""
    if environ.get("HF_HUB_CACHE"):
        return environ["HF_HUB_CACHE"]
    home = environ.get("HF_HOME") or os.path.join(environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                                                   "huggingface")
    return os.path.join(home, "hub")


def _existing_parent(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


@probe("host", {
    "host.os": "operating system (Linux, Darwin, Windows)",
    "host.kernel": "kernel release",
    "host.cpus": "logical CPUs",
    "host.mem.total_mib": "host RAM (MiB)",
    "host.mem.available_mib": "RAM available to new processes (MiB)",
    "host.mem.limit_mib": "container (cgroup) memory limit (MiB); absent = no limit",
    "disk.*.path": "path checked for the disk location (cwd, cache, model, workdir)",
    "disk.*.free_mib": "free space at that location (MiB)",
    "disk.*.total_mib": "size of the filesystem at that location (MiB)",
    "shm.total_mib": "size of /dev/shm (MiB)",
    "shm.free_mib": "free space in /dev/shm (MiB)",
})
def host_facts(ctx: ProbeContext) -> ProbeResult:
    facts: Dict[str, object] = {"host.os": platform.system(), "host.kernel": platform.release(),
                                "host.cpus": os.cpu_count() or 1}
    unknown: Dict[str, str] = {}
    mem = _meminfo_mib()
    if mem is None:  # not Linux: psutil knows the other systems (it costs ~20 ms to import)
        try:
            import psutil
            vm = psutil.virtual_memory()
            mem = (vm.total // MIB, vm.available // MIB)
        except Exception as exc:
            unknown["host.mem.*"] = f"psutil: {exc}"
    if mem is not None:
        facts["host.mem.total_mib"], facts["host.mem.available_mib"] = mem
    limit = _cgroup_limit_mib()
    if limit is not None:
        facts["host.mem.limit_mib"] = limit
    locations = {"cwd": ctx.cwd, "cache": hf_cache_dir(ctx.environ)}
    planned = ctx.planned
    if planned is not None:
        if getattr(planned, "model_is_local", False):
            locations["model"] = planned.model
        if planned.get_flag("work-dir"):
            locations["workdir"] = planned.get_flag("work-dir")
    for key, path in locations.items():
        where = _existing_parent(path)
        try:
            usage = shutil.disk_usage(where)
        except OSError as exc:
            unknown[f"disk.{key}.*"] = f"{where}: {exc}"
            continue
        facts[f"disk.{key}.path"] = where
        facts[f"disk.{key}.free_mib"] = usage.free // MIB
        facts[f"disk.{key}.total_mib"] = usage.total // MIB
    if os.path.isdir("/dev/shm"):
        try:
            st = os.statvfs("/dev/shm")
            facts["shm.total_mib"] = st.f_blocks * st.f_frsize // MIB
            facts["shm.free_mib"] = st.f_bavail * st.f_frsize // MIB
        except OSError as exc:
            unknown["shm.*"] = f"/dev/shm: {exc.strerror or exc}"
    return ProbeResult(facts, unknown)
