"""Values for fixes, computed from the log's numbers and the machine's facts (``suggest.*``).

Rules stay declarative: a fix says ``--cache-max-entry-count {suggest.cache_max_entry_count}`` and the
arithmetic lives here, with its assumptions written down. A value that cannot be computed is left
out, so the fix that needs it is not offered (better no number than a made-up one).
"""
from __future__ import annotations

import math
import re
from typing import Any, Dict, Optional

from doctor.facts import FactSet
from doctor.logs.fusion import Subject

DEFAULT_RATIO = 0.8            # --cache-max-entry-count default in every lmdeploy version since 0.2.2
DEFAULT_PREFILL = 8192         # --max-prefill-token-num default (CLI, 0.6+)
MIN_PREFILL = 512
PARAMS_IN_NAME = re.compile(r"(?<![\d.])(\d+)(?:[._](\d+))?[bB](?![a-zA-Z])")


def compute(log: Dict[str, Any], facts: FactSet, subject: Optional[Subject], live: bool) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    cmd = subject.command if subject is not None else None
    model = (cmd.model if cmd is not None else None) or log.get("log.model")
    if model:
        out["suggest.model"] = model
        out["suggest.awq_work_dir"] = awq_work_dir(model)
        weights = weights_gib(model, facts)
        if weights is not None:
            out["suggest.weights_gib"] = weights
    total = log.get("log.oom.total_mib") or facts.value("gpu.max_total_mib")
    if total:
        out["suggest.gpu_total_mib"] = total
    _other(log, facts, total, out)
    ratio = _number(cmd.get_flag("cache-max-entry-count") if cmd is not None else None) \
        or _number(log.get("log.engine_config.cache_max_entry_count")) \
        or _number(cmd.default("cache-max-entry-count") if cmd is not None else None) or DEFAULT_RATIO
    out["suggest.current_cache_max_entry_count"] = ratio
    out["suggest.cache_max_entry_count"] = lower_ratio(ratio, log, out.get("suggest.other_mib", 0))
    prefill = _number(cmd.get_flag("max-prefill-token-num") if cmd is not None else None) \
        or _number(log.get("log.engine_config.max_prefill_token_num")) or DEFAULT_PREFILL
    out["suggest.current_max_prefill_token_num"] = int(prefill)
    out["suggest.max_prefill_token_num"] = max(MIN_PREFILL, int(prefill) // 4)
    _port(log, facts, cmd, live, out)
    if cmd is not None and (cmd.get_flag("model-name") or cmd.model):
        out["suggest.served_model"] = cmd.get_flag("model-name") or cmd.model
    idle = idle_gpu(facts, log.get("log.oom.gpu"))
    if idle is not None:
        out["suggest.idle_gpu"] = idle
    return out


def awq_work_dir(model: str) -> str:
    """`/root/models/x` -> `/root/models/x-4bit`; a hub id `org/x` -> `./x-4bit` (a local folder)."""
    path = model.rstrip("/")
    if path.startswith(("/", "./", "../", "~")):
        return f"{path}-4bit"
    return f"./{path.rsplit('/', 1)[-1]}-4bit"


def weights_gib(model: str, facts: FactSet) -> Optional[float]:
    """fp16 weight size: the model folder's weight files when on this machine, else 2 bytes x the
    parameter count in the name (`internlm2_5-7b-chat` -> 7e9 params -> ~13 GiB; an under-estimate
    for models whose embeddings are large, so it is shown as approximate)."""
    on_disk = facts.value("model.weights_mib")
    if on_disk:
        return round(on_disk / 1024, 1)
    m = PARAMS_IN_NAME.search(model.rstrip("/").rsplit("/", 1)[-1])
    if m is None:
        return None
    billions = float(f"{m.group(1)}.{m.group(2)}" if m.group(2) else m.group(1))
    if not 0.1 <= billions <= 1000:
        return None
    return round(billions * 1e9 * 2 / (1 << 30), 1)


def _other(log: Dict[str, Any], facts: FactSet, total: Optional[float], out: Dict[str, Any]) -> None:
    """Memory other processes hold: the OOM message is what happened; live NVML is what is now."""
    other = log.get("log.oom.other_mib")
    if other:
        out["suggest.other_mib"] = other
        out["suggest.other_source"] = "log"
        pids = log.get("log.oom.other_pids") or []
        out["suggest.other_processes"] = [f"pid {p}" for p in pids] or ["another process"]
    else:
        live_other = facts.value("gpu.other_mib")
        if live_other:
            out["suggest.other_mib"] = live_other
            out["suggest.other_source"] = "live" if facts.source == "live" else "snapshot"
            out["suggest.other_processes"] = facts.value("gpu.other_processes") or []
        else:
            return
    if total:
        out["suggest.other_share"] = round(out["suggest.other_mib"] / total, 3)


def lower_ratio(ratio: float, log: Dict[str, Any], other_mib: float = 0) -> float:
    """A --cache-max-entry-count that frees room for the allocation that failed.

    The KV cache takes ``ratio x F0`` where F0 is the memory free after the weights. From a torch OOM
    message we know the GPU size T, what this process held S, what others held O, the failed
    allocation A and what was free F. With S ~= W + ratio x (T - O - W) the weights are
    W = (S - ratio x (T - O)) / (1 - ratio), so F0 = T - O - W. The cache must shrink by the shortfall
    (A - F) plus headroom for the next allocations of that size (max(A, 1 GiB)). Without those
    numbers, halve the ratio. Rounded down to 0.05, at least 0.05 and at least 0.05 below the old one.
    """
    target = ratio / 2
    total, self_mib = log.get("log.oom.total_mib"), log.get("log.oom.self_mib")
    tried, free = log.get("log.oom.tried_mib"), log.get("log.oom.free_mib")
    if all(isinstance(v, (int, float)) for v in (total, self_mib, tried, free)) and 0 < ratio < 1:
        other = other_mib or 0
        weights = (self_mib - ratio * (total - other)) / (1 - ratio)
        free_after_weights = total - other - weights
        if 0 < weights < total and free_after_weights > 0:
            kv = ratio * free_after_weights
            need = max(0.0, tried - free) + max(tried, 1024.0)
            if kv > need:
                target = ratio * (kv - need) / kv
    stepped = math.floor(target * 20 + 1e-9) / 20
    return round(max(0.05, min(stepped, ratio - 0.05)), 2)


def _port(log: Dict[str, Any], facts: FactSet, cmd: Any, live: bool, out: Dict[str, Any]) -> None:
    port = log.get("log.port_in_use")
    if port is None and cmd is not None:
        port = cmd.port
    if port is None:
        port = log.get("log.port")
    if port is None:
        return
    out["suggest.port"] = port
    holder = facts.value(f"net.port.{port}.holder")
    if holder:
        out["suggest.port_holder"] = holder
    out["suggest.free_port"] = free_port(int(port), log.get("log.bind_host") or "0.0.0.0", live)


def free_port(port: int, host: str, live: bool) -> int:
    """The next port that binds here (live facts), else simply the next port number."""
    if live:
        from doctor.facts.ports import port_is_free
        for candidate in range(port + 1, min(port + 50, 65535)):
            if port_is_free(host, candidate):
                return candidate
    return port + 1


def idle_gpu(facts: FactSet, failed_gpu: Optional[int]) -> Optional[str]:
    for i in facts.indices("gpu"):
        if not facts.value(f"gpu.{i}.visible", True) or (failed_gpu is not None and str(failed_gpu) == i):
            continue
        free, total = facts.value(f"gpu.{i}.free_mib"), facts.value(f"gpu.{i}.total_mib")
        if free and total and free >= 0.9 * total and (facts.value("gpu.visible_count") or 0) > 1:
            return i
    return None


def _number(value: Any) -> Optional[float]:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
