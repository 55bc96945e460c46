"""Compare the memory model with real launches: records of ``fixtures/measurements/*.jsonl``.

A record (format: the GPU lab's measurement format, see fixtures/measurements/README.md) says what was
launched (model shape, lmdeploy version, engine, settings), on which GPU with how much free memory,
and what it took. Each record is predicted exactly as ``check`` would predict that launch, with no
per-record knobs: a ready launch is compared with the memory it held after start-up (``ready_used_mib -
base_used_mib``, else the peak ``engine_mib``), a failed one must be predicted to fail, with the same
failure category. Used by tests/test_fit_calibration.py and bench/fit_calibration.py.
"""
from __future__ import annotations

import glob
import json
import os
import statistics
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from doctor.memory import semantics
from doctor.memory.hardware import Hardware
from doctor.memory.launch import Launch, from_settings
from doctor.memory.predict import CATEGORY, Prediction, predict
from doctor.memory.shapes import LLMShape, ModelShape, ParamCounts, family_of, llm_from_dict

REQUIRED = ("id", "source", "lmdeploy_version", "backend", "entry", "model", "settings", "command", "gpu",
            "versions", "ballast_mib", "free_mib_at_start", "base_used_mib", "peak_used_mib", "engine_mib",
            "outcome", "log")


class RecordError(ValueError):
    """A measurement record that cannot be used (missing field, unknown model)."""


@dataclass
class Row:
    record: Dict[str, Any]
    prediction: Prediction
    predicted_mib: Optional[float]
    measured_mib: Optional[float]
    measured_kind: str                # ready | engine | failed
    predicted_outcome: str            # ready | failed
    predicted_category: Optional[str]  # category of the stage that runs out first
    fits_without_ballast: bool = False

    @property
    def error_pct(self) -> Optional[float]:
        if self.predicted_mib is None or not self.measured_mib:
            return None
        return 100.0 * (self.predicted_mib - self.measured_mib) / self.measured_mib

    @property
    def outcome_ok(self) -> bool:
        rec = self.record
        if rec["outcome"] == "ready":
            return self.predicted_outcome == "ready"
        if rec["outcome"] == "failed":
            # The lab's ballast emulates a small slice, and it is also another process holding memory:
            # a log may be labelled either way (the real logs' README labels one of each).
            expected = rec.get("category")
            return self.predicted_outcome == "failed" and (
                not expected or expected == self.predicted_category
                or (expected == "oom_other_process" and self.fits_without_ballast))
        return True                    # timeouts say nothing about memory


def load(folder: str) -> List[Dict[str, Any]]:
    """Every record of every ``*.jsonl`` in ``folder`` (any number of files and lines)."""
    records: List[Dict[str, Any]] = []
    for path in sorted(glob.glob(os.path.join(folder, "*.jsonl"))):
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise RecordError(f"{path}:{n}: not JSON ({exc.msg})") from None
                missing = [k for k in REQUIRED if k not in rec]
                if missing:
                    raise RecordError(f"{path}:{n}: record lacks {', '.join(missing)}")
                rec["_file"] = f"{os.path.basename(path)}:{n}"
                records.append(rec)
    return records


def shape_of(rec: Dict[str, Any]) -> ModelShape:
    """The record's model: its shape fields, or a catalogue name when it only names one."""
    m = rec["model"]
    if "layers" not in m:
        from doctor.memory.catalogue import lookup
        found = lookup(str(m.get("name", "")))
        if found is None:
            raise RecordError(f"{rec['id']}: model {m.get('name')!r} has no shape fields and is not in the catalogue")
        return found[0]
    arch = str(m.get("architecture", "LlamaForCausalLM"))
    family_of(arch, rec["id"])
    llm: LLMShape = llm_from_dict(dict(m, tie=m.get("tie_embeddings", False)), arch, rec["id"])
    counts = ParamCounts(linear=llm.linear_params, other=llm.other_params)
    return ModelShape(name=str(m.get("name")), family="llm", architecture=arch, llm=llm, counts=counts,
                      weight_format=str(m.get("weight_format", "hf")), source=f"record {rec['id']}",
                      source_kind="record")


def launch_of(rec: Dict[str, Any], shape: ModelShape) -> Launch:
    """The record's settings, with the version's defaults where it says null (as lmdeploy would)."""
    sub = {"api_server": "serve api_server", "pipeline": "pipeline"}.get(rec["entry"], rec["entry"])
    return from_settings(rec["settings"], shape, str(rec["lmdeploy_version"]), str(rec["backend"]),
                         rec["gpu"].get("name"), sub)


def compare(rec: Dict[str, Any]) -> Row:
    shape = shape_of(rec)
    launch = launch_of(rec, shape)
    gpu = rec["gpu"]
    hw = Hardware(source=f"record {rec['id']}", name=gpu.get("name"), total_mib=float(gpu["total_mib"]),
                  available_mib=float(rec["free_mib_at_start"]), count=launch.tp, cc=gpu.get("cc"))
    sem = semantics.for_version(launch.version, launch.backend)
    pred = predict(shape, launch, hw, sem, flash_attn=False)
    failed = pred.failed if not shape.is_vlm else next((s for s in pred.stages if not s.ok and s.name != "image_tokens"), None)
    category = CATEGORY[failed.name] if failed is not None else None
    ballast = float(rec.get("ballast_mib") or 0)
    idle_fits = bool(failed and ballast and predict(shape, launch, hw.with_available(hw.available_mib + ballast), sem).fits)
    if rec.get("ready_used_mib") is not None:
        measured, kind = float(rec["ready_used_mib"]) - float(rec["base_used_mib"]), "ready"
    elif rec.get("engine_mib") is not None:
        measured, kind = float(rec["engine_mib"]), "engine"
    else:
        measured, kind = None, "failed"
    return Row(record=rec, prediction=pred, predicted_mib=None if failed else pred.ready_mib, measured_mib=measured,
               measured_kind=kind, predicted_outcome="failed" if failed else "ready", predicted_category=category,
               fits_without_ballast=idle_fits)


def summary(rows: List[Row]) -> Dict[str, Any]:
    errors = [abs(r.error_pct) for r in rows if r.error_pct is not None]
    return {"records": len(rows), "compared": len(errors),
            "median_abs_error_pct": statistics.median(errors) if errors else None,
            "max_abs_error_pct": max(errors) if errors else None,
            "outcomes_ok": sum(1 for r in rows if r.outcome_ok)}
