"""What a fit prediction starts from: the model's shape, the lmdeploy version, the GPU, the options.

Shared by the serving assessment (``assess``) and the ``lite auto_awq`` one (``lite``). Anything that
cannot be known raises :class:`CannotTell` with the reason the user sees ("unknown: ...").
"""
from __future__ import annotations

import os
from typing import Any, Optional, Tuple

from doctor.facts import ABSENT, FactSet, Unknown
from doctor.memory import catalogue, hardware, semantics
from doctor.memory.hardware import Hardware, HardwareError
from doctor.memory.shapes import ModelShape, ShapeError, from_dir


class CannotTell(Exception):
    """The fit cannot be predicted; the message is the reason shown to the user."""


def known(facts: FactSet, name: str) -> Any:
    value = facts.get(name)
    return None if value is ABSENT or isinstance(value, Unknown) else value


def resolve_shape(model: Optional[str]) -> ModelShape:
    """The model's shape from its local folder, else from the built-in catalogue (CannotTell when neither)."""
    if not model:
        raise CannotTell("the command names no model")
    if os.path.isdir(model):
        try:
            return from_dir(model)
        except ShapeError as exc:
            raise CannotTell(str(exc)) from None
    if os.path.exists(model):
        raise CannotTell(f"{model} is a file, not a model folder")
    found = catalogue.lookup(model)
    if found is None:
        raise CannotTell(f"{model} is not a folder on this machine and not in the built-in catalogue "
                         "(rules/knowledge/model-shapes.yaml); run the check where the model folder is")
    shape, fmt = found
    shape.source += f"; matched by name ({os.path.basename(model.rstrip('/'))}), the path is not on this machine"
    if fmt and fmt != shape.weight_format:
        shape = shape.with_format(fmt, f"{fmt.upper()} weights assumed from the name")
    return shape


def version_of(facts: FactSet, cmd) -> Tuple[str, str]:
    given = known(facts, "cmd.lmdeploy_version") or (cmd.version if cmd is not None else None)
    if given:
        source = "installed" if given == known(facts, "pkg.lmdeploy.version") else "--lmdeploy-version"
        return str(given), source
    return semantics.NEWEST_KNOWN, "assumed: lmdeploy is not installed here; pass --lmdeploy-version"


def flash_attn(facts: FactSet) -> bool:
    return known(facts, "pkg.flash-attn.version") is not None


def planning(facts: FactSet) -> bool:
    return any(known(facts, f"plan.{k}") is not None for k in ("vram_mib", "gpu", "gpu_slice"))


def hardware_for(facts: FactSet, tp: int) -> Hardware:
    try:
        hw = hardware.from_facts(facts, tp)
    except HardwareError as exc:
        raise CannotTell(str(exc)) from None
    if hw is None:
        count = known(facts, "gpu.count")
        why = "no NVIDIA GPU is visible here" if count == 0 else "the GPU's memory could not be read"
        raise CannotTell(f"{why}; plan for a GPU with --vram SIZE, --gpu NAME or --gpu-slice FRACTION")
    if hw.count < tp:
        raise CannotTell(f"--tp {tp} needs {tp} GPUs, {hw.count} visible")
    return hw


def tp_of(cmd) -> int:
    raw = cmd.get_flag("--tp") if cmd is not None else None
    try:
        return max(1, int(raw)) if raw else 1
    except ValueError:
        raise CannotTell(f"--tp {raw!r} is not a number") from None


# -- serving -----------------------------------------------------------------------------------------------
