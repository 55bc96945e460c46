"""The fit of a planned ``lmdeploy lite auto_awq`` run: host RAM, GPU and disk, with its own settings.

The GPU need comes from the command's ``--calib-samples`` / ``--calib-seqlen`` / ``--batch-size`` (or the
version's defaults); when it does not fit, smaller calibration settings that do are suggested (only
with flags the version has).
"""
from __future__ import annotations

from typing import Any, Dict

from doctor.facts import FactSet
from doctor.memory import mib, quantize, semantics, terms
from doctor.memory.assess import Assessment
from doctor.memory.inputs import CannotTell, hardware_for, known, planning, resolve_shape, version_of
from doctor.memory.search import margin_mib


def assess_lite(facts: FactSet, cmd) -> Assessment:
    """Host RAM, GPU and disk needs of the planned `lite auto_awq` against what is there."""
    version, version_source = version_of(facts, cmd)
    shape = resolve_shape(cmd.model)
    if shape.weight_format != "hf":
        raise CannotTell(f"{shape.name} is already {shape.weight_format.upper()}-quantized")
    hw = hardware_for(facts, 1)
    elsewhere = planning(facts)
    host = None if elsewhere else known(facts, "host.mem.available_mib")
    awq = semantics.auto_awq_settings()
    defaults = awq.get("defaults") or {}

    def number(flag: str, key: str) -> int:
        raw = cmd.get_flag(flag) or cmd.default(flag) or defaults.get(key)
        try:
            return int(float(raw))
        except (TypeError, ValueError):
            raise CannotTell(f"{flag} {raw!r} is not a number") from None

    samples, seqlen = number("--calib-samples", "calib_samples"), number("--calib-seqlen", "calib_seqlen")
    batch = number("--batch-size", "batch_size")
    sem = semantics.for_version(version, "pytorch")
    gpu = quantize.Resource(mib(terms.auto_awq_gpu_bytes(shape.llm, samples, seqlen, batch, sem.cuda_context_mib)),
                            hw.available_mib)
    ram = quantize.Resource(mib(terms.auto_awq_host_bytes(shape.counts, float(awq.get("host_overhead_mib", 2048)))), host)
    work_dir = cmd.get_flag("--work-dir") or cmd.default("--work-dir") or "./work_dir"
    disk = quantize.Resource(mib(terms.awq_checkpoint_bytes(shape.counts, sem.awq_bytes_per_param)),
                             None if elsewhere else quantize.disk_free_mib(work_dir, facts))
    suggestion = None
    if gpu.ok is False:
        for s2, l2 in quantize.CALIB_STEPS:
            if s2 * l2 >= samples * seqlen:
                continue
            need = mib(terms.auto_awq_gpu_bytes(shape.llm, s2, l2, 1, sem.cuda_context_mib))
            if need + margin_mib(hw) <= hw.available_mib:
                new = cmd
                for flag, value, now in (("--calib-samples", s2, samples), ("--calib-seqlen", l2, seqlen),
                                         ("--batch-size", 1, batch)):
                    if value != now and new.spec(flag) is not None:
                        new = new.with_flag(flag, str(value))
                suggestion = new.shell() if new is not cmd else None
                break
    problems = [n for n, r in (("host_ram", ram), ("gpu", gpu), ("disk", disk)) if r.ok is False]
    if not problems:
        verdict = "fits"
    elif problems == ["gpu"] and suggestion:
        verdict = "fits_with_changes"
    else:
        verdict = "does_not_fit"
    report = {"verdict": verdict, "job": "quantize",
              "reason": "fits" if not problems else "not enough " + ", ".join(p.replace("_", " ") for p in problems),
              "predicted_peak_mib": round(gpu.need_mib), "available_mib": round(hw.available_mib),
              "total_mib": round(hw.total_mib), "breakdown": None, "kv_capacity_tokens": None,
              "suggested_command": suggestion,
              "quantize": {"command": cmd.shell(), "work_dir": work_dir,
                           "needs": {"host_ram": ram.to_json(), "gpu": gpu.to_json(), "disk": disk.to_json()},
                           "calibration": {"calib_samples": samples, "calib_seqlen": seqlen, "batch_size": batch}},
              "model": {"name": shape.name, "source": shape.source, "family": shape.family},
              "engine": {"lmdeploy_version": version, "version_source": version_source},
              "hardware": {"source": hw.source, "name": hw.name}}
    facts: Dict[str, Any] = {"fit.verdict": verdict, "fit.job": "quantize", "fit.reason": report["reason"],
                             "fit.report": report, "fit.predicted_peak_mib": round(gpu.need_mib),
                             "fit.available_mib": round(hw.available_mib), "fit.model": shape.name,
                             "fit.model_source": shape.source, "fit.lmdeploy_version": version,
                             "fit.hardware": hw.source, "fit.quantize_command": cmd.shell(),
                             "fit.quantize_work_dir": work_dir, "fit.quantize_host_ram_mib": round(ram.need_mib),
                             "fit.quantize_gpu_mib": round(gpu.need_mib), "fit.quantize_disk_mib": round(disk.need_mib)}
    for name, res in (("host_ram", ram), ("gpu", gpu), ("disk", disk)):
        if res.ok is not None:
            facts[f"fit.quantize_{name}_ok"] = res.ok
            facts[f"fit.quantize_{name}_have_mib"] = round(res.have_mib)
    if suggestion:
        facts["fit.suggested_command"] = suggestion
    return Assessment(report, facts)
