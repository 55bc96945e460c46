"""Answer "will it fit?" for a planned command: the verdict, the breakdown, the cheapest change.

Verdicts (the whole planned use: start-up, a full prefill, and for a VLM one image of the largest tiling):

* ``fits``              the command as given fits;
* ``fits_with_changes`` it does not, and the search found a rewritten command that does;
* ``does_not_fit``      no rewrite of the command fits this GPU (a "quantize first" plan may still be
                        suggested, and the memory it would need is said);
* ``unknown``           the model's shape, the GPU or a setting cannot be known (the reason says which).

The result is a plain JSON-able dict (``report``) plus the ``fit.*`` facts the MEM rules read.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from doctor.facts import FactSet
from doctor.memory import launch as launch_mod, pipeline, quantize, semantics
from doctor.memory.hardware import Hardware, HardwareError
from doctor.memory.inputs import (CannotTell, flash_attn, hardware_for, known, planning, resolve_shape, tp_of,
                                  version_of)
from doctor.memory.launch import Launch, LaunchError
from doctor.memory.predict import CATEGORY, Prediction, min_available_mib, predict
from doctor.memory.search import Suggestion, margin_mib, search
from doctor.memory.shapes import ModelShape

SERVE_SUBCOMMANDS = ("serve api_server", "serve gradio", "chat")
QUANTIZE_SUBCOMMAND = "lite auto_awq"


@dataclass
class Assessment:
    report: Dict[str, Any]
    facts: Dict[str, Any] = field(default_factory=dict)


def job_of(cmd) -> Optional[str]:
    """serve | quantize | script (python FILE.py that may start a pipeline) | None (nothing to predict)."""
    if cmd is None:
        return None
    if cmd.program == "python" and cmd.positionals and cmd.positionals[0].endswith(".py"):
        return "script"
    if cmd.program != "lmdeploy":
        return None
    if cmd.subcommand in SERVE_SUBCOMMANDS:
        return "serve"
    if cmd.subcommand == QUANTIZE_SUBCOMMAND:
        return "quantize"
    return None


def assess(facts: FactSet, cmd) -> Optional[Assessment]:
    """The fit of the planned command; None when it starts no lmdeploy engine (a script without pipeline)."""
    job = job_of(cmd)
    try:
        if job == "quantize":
            from doctor.memory.lite import assess_lite
            return assess_lite(facts, cmd)
        if job == "script":
            spec = _read_script(cmd)
            return None if spec is None else _assess_serve(facts, None, spec)
        return _assess_serve(facts, cmd)
    except (CannotTell, LaunchError, HardwareError) as exc:
        return unknown(str(exc), "quantize" if job == "quantize" else "serve")


def _read_script(cmd):
    from doctor.memory.script import ScriptError, read
    path = cmd.positionals[0]
    if not os.path.isfile(path):
        raise CannotTell(f"{path} is not a file here, so its pipeline(...) call cannot be read")
    try:
        return read(path)
    except ScriptError as exc:
        raise CannotTell(str(exc)) from None


def unknown(reason: str, job: str = "serve") -> Assessment:
    report = {"verdict": "unknown", "job": job, "reason": reason, "predicted_peak_mib": None, "available_mib": None,
              "breakdown": None, "kv_capacity_tokens": None, "suggested_command": None}
    return Assessment(report, {"fit.verdict": "unknown", "fit.job": job, "fit.unknown_reason": reason,
                               "fit.report": report})


def _assess_serve(facts: FactSet, cmd, spec=None) -> Assessment:
    """A serving launch: the planned lmdeploy command, or (cmd None) a script's pipeline ``spec``."""
    version, version_source = version_of(facts, cmd)
    model = cmd.model if cmd is not None else spec.model
    shape = resolve_shape(model)
    forced = known(facts, "plan.backend") or (spec.backend if spec is not None else None)
    backend, notes = launch_mod.choose_backend(cmd, shape, version, forced)

    def sem_for(b: str):
        return semantics.for_version(version, b)

    if spec is None:
        hw = hardware_for(facts, tp_of(cmd))
        launch = launch_mod.from_command(cmd, shape, version, backend, hw.name)
    else:
        try:
            tp = max(1, int(spec.config.get("tp") or 1))
        except (TypeError, ValueError):
            raise CannotTell(f"backend_config tp={spec.config.get('tp')!r} is not a number") from None
        hw = hardware_for(facts, tp)
        launch = launch_mod.from_settings(spec.config, shape, version, backend, hw.name)
        notes.append(f"pipeline(...) on line {spec.line} of {spec.path}")
    flash = flash_attn(facts)
    sem = sem_for(backend)
    pred = predict(shape, launch, hw, sem, flash)
    margin = margin_mib(hw)
    idle_fits: Optional[bool] = None
    if hw.live and hw.other_mib > 0 and not pred.fits:
        idle = predict(shape, launch, hw.with_available(hw.available_mib + hw.other_mib), sem, flash)
        idle_fits = idle.fits
    suggestion: Optional[Suggestion] = None
    if not pred.fits or not pred.session_ok or pred.headroom_mib < margin:
        suggestion = search(shape, launch, hw, sem_for, cmd, flash)
    qplan = None
    if pred.failed is not None and pred.failed.name == "weights" and shape.weight_format == "hf":
        here = not planning(facts)
        qplan = quantize.plan(shape, cmd, launch, hw, sem_for, flash,
                              known(facts, "host.mem.available_mib") if here else None, facts if here else None)
    if pred.fits:
        verdict = "fits"
    elif suggestion is not None and suggestion.holds_image:
        verdict = "fits_with_changes"
    else:
        verdict = "does_not_fit"
    minimum = min_available_mib(shape, launch, hw, sem, flash) if not pred.fits else None
    return _serve_report(verdict, model, shape, launch, hw, pred, suggestion, qplan, idle_fits, minimum,
                         version, version_source, notes + launch.notes + shape.notes + pred.notes, flash,
                         entry="pipeline" if spec is not None else "command")


def _suggested(suggestion: Optional[Suggestion], qplan) -> Tuple[Optional[str], List[str]]:
    """The command to show: the search's rewrite, else quantize-then-serve when the weights do not fit."""
    if suggestion is not None and (suggestion.holds_image or qplan is None):
        return (suggestion.command.shell() if suggestion.command is not None else None), suggestion.diff
    if qplan is not None and qplan.serve_command is not None:
        return f"{qplan.command.shell()}\n{qplan.serve_command.shell()}", qplan.serve_diff
    return None, []


def _reason(pred: Prediction, idle_fits: Optional[bool]) -> str:
    failed = pred.failed
    if failed is None:
        if not pred.session_ok:
            return (f"fits, but the KV cache holds {pred.kv_capacity_tokens} tokens, "
                    f"less than session_len {pred.launch.session_len}")
        return f"fits with {pred.headroom_mib:.0f} MiB to spare"
    where = {"weights": "loading the weights", "kv_cache": "allocating the KV cache",
             "runtime": "allocating runtime buffers", "image": "processing an image",
             "image_tokens": "fitting one image into the KV cache", "settings": "checking the settings"}[failed.name]
    text = f"runs out of memory while {where} ({failed.detail}: needs {failed.need_mib:.0f} MiB, has {failed.have_mib:.0f})"
    if failed.name == "settings":
        text = failed.detail
    if failed.name in ("image", "image_tokens") and pred.fits_text:
        text = "starts and serves text, but " + text
    if idle_fits:
        text += f"; other processes hold {pred.hardware.other_mib:.0f} MiB, without them it would fit"
    return text


def _serve_report(verdict: str, model_arg: str, shape: ModelShape, launch: Launch, hw: Hardware, pred: Prediction,
                  suggestion: Optional[Suggestion], qplan, idle_fits: Optional[bool], minimum: Optional[float],
                  version: str, version_source: str, notes: List[str], flash: bool, entry: str) -> Assessment:
    command, diff = _suggested(suggestion, qplan)
    if entry == "pipeline" and suggestion is not None:
        command = pipeline.code(model_arg, suggestion.launch, suggestion.changes)   # the script's rewrite
        diff = [_as_config_field(d) for d in diff]
    failed = pred.failed
    report: Dict[str, Any] = {
        "verdict": verdict,
        "job": "serve",
        "entry": entry,
        "reason": _reason(pred, idle_fits),
        "predicted_peak_mib": round(pred.peak_mib),
        "predicted_ready_mib": round(pred.ready_mib),
        "available_mib": round(hw.available_mib),
        "total_mib": round(hw.total_mib),
        "headroom_mib": round(pred.headroom_mib),
        "breakdown": pred.breakdown(),
        "kv_capacity_tokens": pred.kv_capacity_tokens,
        "session_len": launch.session_len,
        "image_tokens": pred.image_tokens or None,
        "failed_stage": failed.name if failed else None,
        "category": (CATEGORY[failed.name] if failed else None) if not idle_fits else "oom_other_process",
        "stages": [s.to_json() for s in pred.stages],
        "suggested_command": command,
        "suggested_changes": diff,
        "suggestion": _suggestion_json(suggestion),
        "suggested_pipeline": None,
        "quantize": qplan.to_json() if qplan is not None else None,
        "min_vram_mib": round(minimum) if minimum else None,
        "model": {"name": shape.name, "source": shape.source, "source_kind": shape.source_kind,
                  "family": shape.family, "architecture": shape.architecture, "weight_format": launch.weight_format,
                  "params": {"llm_linear": shape.counts.linear, "llm_other": shape.counts.other,
                             "vision": shape.counts.vision, "plora": shape.counts.plora},
                  "layers": shape.llm.layers, "kv_heads": shape.llm.kv_heads, "head_dim": shape.llm.head_dim,
                  "vocab": shape.llm.vocab},
        "engine": {"backend": launch.backend, "lmdeploy_version": version, "version_source": version_source,
                   "settings": _settings_json(launch), "kv_bytes_per_token": round(pred.kv_bytes_per_token),
                   "kv_blocks": pred.blocks, "flash_attn": flash},
        "hardware": {"source": hw.source, "name": hw.name, "gpus": hw.count, "other_processes_mib": round(hw.other_mib),
                     "other_processes": hw.processes, "fits_when_idle": idle_fits},
        "notes": notes,
    }
    if suggestion is not None or pred.fits:
        chosen = suggestion.launch if suggestion is not None else launch
        report["suggested_pipeline"] = pipeline.code(model_arg, chosen, suggestion.changes if suggestion else None)
    facts = _serve_facts(report, pred, suggestion, qplan)
    return Assessment(report, facts)


def _as_config_field(diff: str) -> str:
    """'--cache-max-entry-count 0.8 → 0.4' as the engine-config field 'cache_max_entry_count 0.8 → 0.4'."""
    flag, rest = diff.split(" ", 1)
    return flag.lstrip("-").replace("-", "_") + " " + rest


def _settings_json(launch: Launch) -> Dict[str, Any]:
    return {"cache_max_entry_count": launch.ratio, "quant_policy": launch.quant_policy,
            "model_format": launch.weight_format, "tp": launch.tp, "session_len": launch.session_len,
            "max_batch_size": launch.max_batch_size, "max_prefill_token_num": launch.prefill,
            "block_len": launch.block_len, "eager_mode": launch.eager, "vision_max_batch_size": launch.vision_batch,
            "given": sorted(f for f, g in launch.given.items() if g)}


def _suggestion_json(s: Optional[Suggestion]) -> Optional[Dict[str, Any]]:
    if s is None:
        return None
    return {"kind": s.kind, "changes": s.changes, "argv": list(s.command.argv) if s.command is not None else None,
            "predicted_peak_mib": round(s.prediction.peak_mib), "kv_capacity_tokens": s.prediction.kv_capacity_tokens,
            "holds_session": s.holds_session, "holds_image": s.holds_image, "tight": s.tight}


def _serve_facts(report: Dict[str, Any], pred: Prediction, suggestion: Optional[Suggestion], qplan) -> Dict[str, Any]:
    b = report["breakdown"]
    hw = report["hardware"]
    facts: Dict[str, Any] = {
        "fit.verdict": report["verdict"], "fit.job": "serve", "fit.reason": report["reason"], "fit.report": report,
        "fit.predicted_peak_mib": report["predicted_peak_mib"], "fit.predicted_ready_mib": report["predicted_ready_mib"],
        "fit.available_mib": report["available_mib"], "fit.total_mib": report["total_mib"],
        "fit.headroom_mib": report["headroom_mib"],
        "fit.weights_mib": b["weights_mib"], "fit.vision_mib": b["vision_mib"], "fit.kv_cache_mib": b["kv_cache_mib"],
        "fit.runtime_mib": b["runtime_mib"], "fit.overhead_mib": b["overhead_mib"],
        "fit.image_activation_mib": b["image_activation_mib"],
        "fit.kv_capacity_tokens": report["kv_capacity_tokens"], "fit.session_len": report["session_len"],
        "fit.failed_stage": report["failed_stage"] or "none",
        "fit.fits_text": pred.fits_text,
        "fit.model": report["model"]["name"], "fit.model_source": report["model"]["source"],
        "fit.backend": report["engine"]["backend"], "fit.lmdeploy_version": report["engine"]["lmdeploy_version"],
        "fit.hardware": hw["source"], "fit.other_mib": hw["other_processes_mib"],
        "fit.margin_mib": round(margin_mib(pred.hardware)),
    }
    if pred.failed is not None:
        facts["fit.failed_detail"] = pred.failed.detail
        facts["fit.need_mib"] = round(pred.failed.need_mib)
        facts["fit.have_mib"] = round(pred.failed.have_mib)
    if report["image_tokens"]:
        facts["fit.image_tokens"] = report["image_tokens"]
    if hw["fits_when_idle"] is not None:
        facts["fit.fits_when_idle"] = hw["fits_when_idle"]
    if report["min_vram_mib"]:
        facts["fit.min_vram_mib"] = report["min_vram_mib"]
    if report["suggested_command"]:
        facts["fit.suggested_command"] = report["suggested_command"]
        facts["fit.suggested_changes"] = report["suggested_changes"]
    if suggestion is not None and (report.get("suggestion") or {}).get("changes"):
        facts["fit.suggestion_flags"] = dict(report["suggestion"]["changes"])
    if suggestion is not None:
        facts["fit.suggestion_kind"] = suggestion.kind
        facts["fit.suggestion_holds_session"] = suggestion.holds_session
        facts["fit.suggestion_holds_image"] = suggestion.holds_image
        facts["fit.suggested_kv_tokens"] = suggestion.prediction.kv_capacity_tokens
    if report["suggested_pipeline"]:
        facts["fit.suggested_pipeline"] = report["suggested_pipeline"]
    if qplan is not None:
        facts.update(_quantize_facts(qplan))
    return facts


def _quantize_facts(qplan) -> Dict[str, Any]:
    out: Dict[str, Any] = {"fit.quantize_command": qplan.command.shell(), "fit.quantize_work_dir": qplan.work_dir,
                           "fit.quantize_host_ram_mib": round(qplan.host_ram.need_mib),
                           "fit.quantize_gpu_mib": round(qplan.gpu.need_mib),
                           "fit.quantize_disk_mib": round(qplan.disk.need_mib)}
    for name, res in (("host_ram", qplan.host_ram), ("gpu", qplan.gpu), ("disk", qplan.disk)):
        if res.ok is not None:
            out[f"fit.quantize_{name}_ok"] = res.ok
            out[f"fit.quantize_{name}_have_mib"] = round(res.have_mib)
    if qplan.serve_command is not None:
        out["fit.quantized_serve_command"] = qplan.serve_command.shell()
    if qplan.serve_prediction is not None:
        out["fit.quantized_fits"] = qplan.serve_prediction.fits
        out["fit.quantized_fits_text"] = qplan.serve_prediction.fits_text
        out["fit.quantized_peak_mib"] = round(qplan.serve_prediction.peak_mib)
    return out
