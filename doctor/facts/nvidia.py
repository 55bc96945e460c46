"""NVIDIA driver and GPU facts from NVML, with `nvidia-smi --query-*` as the fallback.

NVML reads the driver's bookkeeping and never creates a CUDA context, so looking costs no GPU memory
(creating a context alone takes ~300-500 MiB, a lot on an 8 GiB slice). Indices are NVML's, which is
the physical order; ``gpu.*.visible`` says whether ``CUDA_VISIBLE_DEVICES`` lets CUDA programs see it.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from typing import Dict, List, Mapping, Optional

from doctor.facts import ProbeContext, ProbeResult, probe

MIB = 1 << 20
GPU_PATTERNS = {
    "gpu.count": "number of NVIDIA GPUs the driver reports (0 = none)",
    "gpu.visible_count": "GPUs CUDA programs can use after CUDA_VISIBLE_DEVICES",
    "gpu.dev_nodes": "number of /dev/nvidia[0-9]* device nodes (GPUs passed into this container)",
    "gpu.source": "nvml | nvidia-smi | none",
    "gpu.*.name": "product name (e.g. NVIDIA A100-SXM4-80GB)",
    "gpu.*.uuid": "GPU UUID",
    "gpu.*.cc": "CUDA compute capability (e.g. 8.0)",
    "gpu.*.total_mib": "total memory (MiB)",
    "gpu.*.free_mib": "free memory (MiB)",
    "gpu.*.used_mib": "used memory (MiB)",
    "gpu.*.visible": "whether CUDA_VISIBLE_DEVICES exposes this GPU",
    "gpu.*.mig": "whether MIG mode is enabled",
    "gpu.*.processes": "processes holding memory: list of {pid, name, used_mib, self}",
    "gpu.*.other_mib": "memory held by other processes (MiB)",
    "cuda.driver.version": "NVIDIA driver version (e.g. 535.104.05)",
    "cuda.driver.max_cuda": "newest CUDA version the driver supports (e.g. 12.2)",
    "gpu.driver_error": "why no NVIDIA driver library could be used (when gpu.count is 0)",
    "cuda.driver.library_found": "whether the NVIDIA driver's NVML library (libnvidia-ml.so.1) could be loaded",
    "gpu.slice_tool": "path of a vGPU-slice tool on PATH (InternStudio `studio-smi`): nvidia-smi/NVML show the whole card",
}
# Tools that report a vGPU slice's own memory where nvidia-smi shows the whole card (InternStudio).
SLICE_TOOLS = ("studio-smi",)


def _visible_indices(cvd: Optional[str], uuids: List[str]) -> List[int]:
    """Indices of GPUs CUDA_VISIBLE_DEVICES exposes (all when unset; CUDA stops at the first bad entry)."""
    if cvd is None:
        return list(range(len(uuids)))
    out: List[int] = []
    for raw in cvd.split(","):
        item = raw.strip()
        if not item:
            break
        if item.isdigit():
            idx = int(item)
            if idx >= len(uuids):
                break
            out.append(idx)
            continue
        if item.startswith("MIG-"):
            # A MIG instance UUID: its parent GPU cannot be told from the UUID alone; keep every GPU.
            return list(range(len(uuids)))
        match = [i for i, u in enumerate(uuids) if u and u.startswith(item)]
        if not match:
            break
        out.append(match[0])
    return sorted(set(out))


def _process_name(pid: int) -> str:
    try:
        import psutil
        proc = psutil.Process(pid)
        cmd = proc.cmdline()
        return " ".join(cmd)[:120] if cmd else proc.name()
    except Exception:
        return "(not visible from here: another container or user)"


class NoNvmlLibrary(Exception):
    """libnvidia-ml.so.1 cannot be loaded: no NVIDIA driver libraries in this system or container."""


def _nvml(environ: Mapping[str, str]) -> Dict[str, object]:
    if sys.platform.startswith("linux"):
        # The same dlopen pynvml would do, without paying ~30 ms to import pynvml where it must fail.
        import ctypes
        try:
            ctypes.CDLL("libnvidia-ml.so.1")
        except OSError as exc:
            raise NoNvmlLibrary(str(exc)) from None
    import pynvml  # nvidia-ml-py: ctypes bindings, no CUDA context

    pynvml.nvmlInit()
    try:
        facts: Dict[str, object] = {"gpu.source": "nvml"}
        drv = pynvml.nvmlSystemGetDriverVersion()
        facts["cuda.driver.version"] = drv.decode() if isinstance(drv, bytes) else drv
        try:
            cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        except (AttributeError, pynvml.NVMLError):
            cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        facts["cuda.driver.max_cuda"] = f"{cuda // 1000}.{(cuda % 1000) // 10}"
        count = pynvml.nvmlDeviceGetCount()
        facts["gpu.count"] = count
        uuids: List[str] = []
        me = os.getpid()
        for i in range(count):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            uuid = pynvml.nvmlDeviceGetUUID(h)
            uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
            uuids.append(uuid)
            facts[f"gpu.{i}.name"] = name.decode() if isinstance(name, bytes) else name
            facts[f"gpu.{i}.uuid"] = uuid
            try:
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
                facts[f"gpu.{i}.cc"] = f"{major}.{minor}"
            except pynvml.NVMLError:
                pass
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            facts[f"gpu.{i}.total_mib"] = mem.total // MIB
            facts[f"gpu.{i}.free_mib"] = mem.free // MIB
            facts[f"gpu.{i}.used_mib"] = mem.used // MIB
            try:
                facts[f"gpu.{i}.mig"] = pynvml.nvmlDeviceGetMigMode(h)[0] == 1
            except pynvml.NVMLError:
                facts[f"gpu.{i}.mig"] = False
            procs = []
            for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
                try:
                    for p in getattr(pynvml, getter)(h):
                        used = p.usedGpuMemory // MIB if p.usedGpuMemory else None
                        if not any(q["pid"] == p.pid for q in procs):
                            procs.append({"pid": p.pid, "name": _process_name(p.pid), "used_mib": used,
                                          "self": p.pid == me})
                except (AttributeError, pynvml.NVMLError):
                    continue
            facts[f"gpu.{i}.processes"] = procs
            facts[f"gpu.{i}.other_mib"] = sum(p["used_mib"] or 0 for p in procs if not p["self"])
        _visibility(facts, uuids, environ)
        return facts
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _visibility(facts: Dict[str, object], uuids: List[str], environ: Mapping[str, str]) -> None:
    visible = _visible_indices(environ.get("CUDA_VISIBLE_DEVICES"), uuids)
    for i in range(len(uuids)):
        facts[f"gpu.{i}.visible"] = i in visible
    facts["gpu.visible_count"] = len(visible)


_SMI_GPU_FIELDS = ["index", "name", "uuid", "compute_cap", "memory.total", "memory.used", "memory.free",
                   "driver_version", "mig.mode.current"]


def _smi(smi: str, environ: Mapping[str, str], timeout_s: float) -> Dict[str, object]:
    import csv
    import io

    def query(args: List[str]) -> List[List[str]]:
        out = subprocess.run([smi, *args, "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=timeout_s, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise RuntimeError((out.stderr or out.stdout).strip()[:200] or f"nvidia-smi exit code {out.returncode}")
        return [[c.strip() for c in row] for row in csv.reader(io.StringIO(out.stdout)) if row]

    facts: Dict[str, object] = {"gpu.source": "nvidia-smi"}
    fields = list(_SMI_GPU_FIELDS)
    try:
        rows = query(["--query-gpu=" + ",".join(fields)])
    except RuntimeError as exc:
        # nvidia-smi before driver 510 has no compute_cap field: ask again without it (cc stays unknown).
        if "compute_cap" not in str(exc):
            raise
        fields.remove("compute_cap")
        rows = query(["--query-gpu=" + ",".join(fields)])
    uuids = []
    for row in rows:
        rec = dict(zip(fields, row))
        i = int(rec["index"])
        uuids.append(rec["uuid"])
        facts[f"gpu.{i}.name"] = rec["name"]
        facts[f"gpu.{i}.uuid"] = rec["uuid"]
        if rec.get("compute_cap", "[N/A]")[:1].isdigit():
            facts[f"gpu.{i}.cc"] = rec["compute_cap"]
        for key, field in (("total_mib", "memory.total"), ("used_mib", "memory.used"), ("free_mib", "memory.free")):
            if rec.get(field, "").isdigit():
                facts[f"gpu.{i}.{key}"] = int(rec[field])
        facts[f"gpu.{i}.mig"] = rec.get("mig.mode.current") == "Enabled"
        facts["cuda.driver.version"] = rec["driver_version"]
        facts[f"gpu.{i}.processes"] = []
        facts[f"gpu.{i}.other_mib"] = 0
    facts["gpu.count"] = len(rows)
    me = os.getpid()
    by_uuid = {u: i for i, u in enumerate(uuids)}
    for pid, pname, used, uuid in query(["--query-compute-apps=pid,process_name,used_memory,gpu_uuid"]):
        i = by_uuid.get(uuid)
        if i is None or not pid.isdigit():
            continue
        mib = int(used) if used.isdigit() else None
        facts[f"gpu.{i}.processes"].append({"pid": int(pid), "name": pname, "used_mib": mib, "self": int(pid) == me})
        if int(pid) != me:
            facts[f"gpu.{i}.other_mib"] += mib or 0
    header = subprocess.run([smi], capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL).stdout
    for token in header.split("CUDA Version:")[1:2]:
        facts["cuda.driver.max_cuda"] = token.split()[0]
    _visibility(facts, uuids, environ)
    return facts


def _couldnt(base: Dict[str, object], reason: str) -> ProbeResult:
    """The tools exist (or devices do) but nothing answered: "couldn't check", not "no GPU".

    What was observed anyway (device nodes, whether the library loaded, tools on PATH) stays known;
    the slice-tool lookup always ran, so its absence is a known absence.
    """
    return ProbeResult(base, unknown={p: reason for p in GPU_PATTERNS if p not in base and p != "gpu.slice_tool"})


@probe("nvidia", GPU_PATTERNS, timeout_s=6.0)
def gpu_facts(ctx: ProbeContext) -> ProbeResult:
    path = ctx.environ.get("PATH", os.defpath)
    base: Dict[str, object] = {"gpu.dev_nodes": len(glob.glob("/dev/nvidia[0-9]*"))}
    for tool in SLICE_TOOLS:
        found = shutil.which(tool, path=path)
        if found:
            base["gpu.slice_tool"] = found
            break
    errors: List[str] = []
    try:
        facts = _nvml(ctx.environ)
        facts.update(base)
        facts["cuda.driver.library_found"] = True
        return ProbeResult(facts)
    except ImportError as exc:  # nvidia-ml-py itself is missing: lmdoctor's problem, not the machine's
        errors.append(f"NVML: pynvml not importable ({exc})")
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        errors.append(f"NVML: {type(exc).__name__}: {exc}")
        # Only a missing libnvidia-ml.so.1 says "no driver library"; any other NVML error means it loaded.
        base["cuda.driver.library_found"] = not isinstance(exc, NoNvmlLibrary) and \
            type(exc).__name__ != "NVMLError_LibraryNotFound"
    smi = shutil.which("nvidia-smi", path=path)
    if smi:
        try:
            facts = _smi(smi, ctx.environ, timeout_s=4.0)
            facts.update(base)
            return ProbeResult(facts)
        except subprocess.TimeoutExpired:
            errors.append("nvidia-smi did not answer within 4s (hung driver?)")
        except Exception as exc:
            errors.append(f"nvidia-smi: {type(exc).__name__}: {exc}")
        base["gpu.driver_error"] = "; ".join(errors)
        return _couldnt(base, "; ".join(errors))
    if base["gpu.dev_nodes"]:
        reason = "; ".join(errors) + f"; {base['gpu.dev_nodes']} /dev/nvidia* device node(s) exist but no driver library answers"
        base["gpu.driver_error"] = reason
        base["gpu.source"] = "none"  # nothing answered: how many GPUs there are stays unknown
        return _couldnt(base, reason)
    # No driver library, no nvidia-smi, no device nodes: no NVIDIA GPU here (known, not unknown).
    base.update({"gpu.count": 0, "gpu.visible_count": 0, "gpu.source": "none", "gpu.driver_error": "; ".join(errors)})
    return ProbeResult(base)
