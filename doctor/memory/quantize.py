""""Quantize first": the exact ``lmdeploy lite auto_awq`` command for a version, its own needs, and the
serving command for the quantized folder.

When the 16-bit weights cannot fit, AWQ (4-bit weights, 0.53 B/param) is the change that helps. The
command is built from the version's flag table: only flags that exist there, never
``--search-scale False`` (in 0.5.x-0.6.x ``type=bool`` turns any non-empty string, "False" included,
into True: hours of extra search; from 0.7.0 the same words are an argparse error), and no
``--calib-dataset`` (the version's own default: ``ptb`` until 0.11, ``wikitext2`` from 0.12.0, which
rejects ``ptb``). Its host RAM (the whole model in fp16 on CPU), GPU (one layer plus calibration
activations) and disk (the quantized folder) needs are checked where this machine is the target.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from doctor.command import parse
from doctor.memory import mib, semantics, terms
from doctor.memory.hardware import Hardware
from doctor.memory.launch import Launch
from doctor.memory.predict import Prediction, predict
from doctor.memory.search import Suggestion, acceptable, margin_mib, search
from doctor.memory.semantics import Semantics
from doctor.memory.shapes import ModelShape

SUB = "lite auto_awq"
CALIB_STEPS = [(128, 2048), (64, 2048), (128, 1024), (64, 1024), (32, 1024), (32, 512)]


@dataclass
class Resource:
    need_mib: float
    have_mib: Optional[float] = None       # None: not checked (planning for another machine)

    @property
    def ok(self) -> Optional[bool]:
        return None if self.have_mib is None else self.need_mib <= self.have_mib

    def to_json(self) -> dict:
        return {"need_mib": round(self.need_mib), "have_mib": None if self.have_mib is None else round(self.have_mib),
                "ok": self.ok}


@dataclass
class QuantizePlan:
    command: object                          # doctor.command.Command of `lite auto_awq`
    work_dir: str
    host_ram: Resource
    gpu: Resource
    disk: Resource
    calib: Dict[str, int] = field(default_factory=dict)
    serve_command: Optional[object] = None
    serve_prediction: Optional[Prediction] = None
    serve_diff: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return all(r.ok is not False for r in (self.host_ram, self.gpu, self.disk))

    def to_json(self) -> dict:
        return {"command": self.command.shell(), "work_dir": self.work_dir,
                "needs": {"host_ram": self.host_ram.to_json(), "gpu": self.gpu.to_json(), "disk": self.disk.to_json()},
                "calibration": self.calib,
                "serve_command": self.serve_command.shell() if self.serve_command is not None else None,
                "serve_predicted_peak_mib": round(self.serve_prediction.peak_mib) if self.serve_prediction else None,
                "notes": self.notes}


def work_dir_for(model: str) -> str:
    """Where the quantized model goes: next to the original (the tutorials' ``-w4a16-4bit`` convention)."""
    path = model.rstrip("/")
    if os.path.isabs(path) or path.startswith("."):
        return f"{path}-w4a16-4bit"
    return f"./{os.path.basename(path)}-w4a16-4bit"


def disk_free_mib(path: str, facts) -> Optional[float]:
    """Free space where ``path`` will be written: statvfs of its nearest existing folder on the live
    machine; from a snapshot (tests, bug reports) its working directory's free space for a relative
    path, else unknown."""
    if getattr(facts, "source", "live") != "live":
        if os.path.isabs(path):
            return None
        value = facts.value("disk.cwd.free_mib")
        return float(value) if value is not None else None
    probe = os.path.abspath(path)
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return None
        probe = parent
    try:
        return shutil.disk_usage(probe).free / (1 << 20)
    except OSError:
        return None


def lite_command(cmd, model: str, version: str):
    """``lmdeploy lite auto_awq MODEL`` with the planned command's launcher (env, python -m), or None."""
    base = cmd.with_subcommand(SUB, [model]) if cmd is not None else parse(["lmdeploy"] + SUB.split() + [model],
                                                                           version=version)
    if base.table is None or not base.table.has_subcommand(SUB, version):
        return None
    return base


def _with_if_known(cmd, flag: str, value: str):
    return cmd.with_flag(flag, value) if cmd.spec(flag) is not None else cmd


def plan(shape: ModelShape, cmd, launch: Launch, hw: Hardware, sem_for: Callable[[str], Semantics], flash: bool,
         host_available_mib: Optional[float], facts=None) -> Optional[QuantizePlan]:
    """The quantize-first plan for a 16-bit model, or None when lmdeploy cannot quantize it here.

    ``host_available_mib`` / ``facts`` are None when planning for another machine (nothing to check)."""
    model = cmd.model if cmd is not None else shape.name
    lite = lite_command(cmd, model, launch.version)
    if lite is None or shape.weight_format != "hf":
        return None
    work_dir = work_dir_for(model)
    lite = _with_if_known(lite, "--work-dir", work_dir)
    sem = sem_for("pytorch")
    awq = semantics.auto_awq_settings()
    defaults = awq.get("defaults") or {}
    calib: Dict[str, int] = {}
    default_samples = int(lite.default("--calib-samples") or defaults.get("calib_samples", 128))
    default_seqlen = int(lite.default("--calib-seqlen") or defaults.get("calib_seqlen", 2048))
    # Smaller calibration runs are only an option where the version has the flags to ask for them.
    steps = [(default_samples, default_seqlen)] + [
        (n, s) for n, s in CALIB_STEPS
        if (n == default_samples or lite.spec("--calib-samples") is not None)
        and (s == default_seqlen or lite.spec("--calib-seqlen") is not None) and n * s < default_samples * default_seqlen]
    for samples, seqlen in steps:
        gpu_need = mib(terms.auto_awq_gpu_bytes(shape.llm, samples, seqlen, int(defaults.get("batch_size", 1)),
                                                sem.cuda_context_mib))
        if gpu_need + margin_mib(hw) <= hw.available_mib:
            break
    else:
        samples, seqlen = steps[0]
        gpu_need = mib(terms.auto_awq_gpu_bytes(shape.llm, samples, seqlen, int(defaults.get("batch_size", 1)),
                                                sem.cuda_context_mib))
    for flag, value, default in (("--calib-samples", samples, default_samples), ("--calib-seqlen", seqlen, default_seqlen)):
        if value != default:
            lite = lite.with_flag(flag, str(value))
            calib[flag.lstrip("-").replace("-", "_")] = value
    disk_need = mib(terms.awq_checkpoint_bytes(shape.counts, sem.awq_bytes_per_param))
    out = QuantizePlan(command=lite, work_dir=work_dir,
                       host_ram=Resource(mib(terms.auto_awq_host_bytes(shape.counts, float(awq.get("host_overhead_mib", 2048)))),
                                         host_available_mib),
                       gpu=Resource(gpu_need, hw.available_mib),
                       disk=Resource(disk_need, disk_free_mib(work_dir, facts) if facts is not None else None),
                       calib=calib)
    out.notes.append("the calibration set is downloaded from the Hugging Face hub at run time "
                     "(set HF_ENDPOINT to a mirror when offline)")
    _serve_quantized(out, shape, cmd, launch, hw, sem_for, flash, work_dir)
    return out


def _serve_quantized(out: QuantizePlan, shape: ModelShape, cmd, launch: Launch, hw: Hardware,
                     sem_for: Callable[[str], Semantics], flash: bool, work_dir: str) -> None:
    """The serving command for the quantized folder, searched like any other launch."""
    qshape = shape.with_format("awq")
    qlaunch = launch.but(weight_format="awq")
    serve = None
    if cmd is not None and cmd.model:
        serve = cmd.with_positional(0, work_dir)
        if serve.spec("--model-format") is not None:
            serve = serve.with_flag("--model-format", "awq")
    sem = sem_for(qlaunch.backend)
    pred = predict(qshape, qlaunch, hw, sem, flash)
    if acceptable(pred, margin_mib(hw)):
        out.serve_command, out.serve_prediction = serve, pred
        return
    found: Optional[Suggestion] = search(qshape, qlaunch, hw, sem_for, serve, flash)
    if found is not None:
        out.serve_command, out.serve_prediction, out.serve_diff = found.command, found.prediction, found.diff
        if not found.holds_image:
            out.notes.append("quantized, it serves text; an image of the largest tiling does not fit on this GPU")
        if found.tight:
            out.notes.append(f"quantized, it fits with only {found.prediction.text_headroom_mib:.0f} MiB to spare")
        return
    out.serve_command, out.serve_prediction = serve, pred
    out.notes.append("even quantized, the model does not fit here: " + (pred.failed.detail if pred.failed else
                                                                       "too little headroom"))
