"""Parameter counts from safetensors headers: the exact tensor list of a checkpoint without its data.

A ``.safetensors`` file starts with an 8-byte little-endian header length and a JSON header mapping
tensor names to ``{dtype, shape, data_offsets}``. Reading those few kilobytes per shard tells how many
parameters the language model, the vision tower and the PLoRA adapters have, and whether the linears
are AWQ/GPTQ-packed, exactly as the checkpoint has them, at no cost (the weights are never read).
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

MAX_HEADER = 64 << 20           # a header larger than this is not a safetensors file we trust
# Tensor-name prefixes of vision towers and projectors (InternVL: vision_model/mlp1; XComposer2: vit/vision_proj).
VISION_PREFIXES = ("vision_model.", "mlp1.", "vit.", "vision_proj.", "visual.", "vision_tower.",
                   "multi_modal_projector.")
OTHER_MARKERS = ("embed", "tok_embeddings", "lm_head", "output.weight", "norm", "wte", "bias")
PACKED_INT4 = ("qweight",)      # AWQ/GPTQ: int32 holding 8 int4 values
QUANT_AUX = ("qzeros", "scales", "g_idx")


@dataclass
class HeaderCounts:
    """Logical (unpacked) parameter counts by component, plus what the files say about packing."""

    linear: int = 0             # quantisable decoder linears of the language model
    other: int = 0              # embeddings, LM head, norms, biases of the language model
    vision: int = 0             # vision tower and projector
    plora: int = 0              # XComposer2 Partial-LoRA adapters
    packed: bool = False        # int4-packed linears found (AWQ/GPTQ checkpoint)
    files: int = 0

    @property
    def llm(self) -> int:
        return self.linear + self.other


def read_header(path: str) -> Dict[str, dict]:
    """The JSON header of one safetensors file; ValueError with a one-line reason when it is not one."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise ValueError(f"{path}: too short for a safetensors file")
            (length,) = struct.unpack("<Q", raw)
            if length <= 1 or length > MAX_HEADER:
                raise ValueError(f"{path}: not a safetensors file (header length {length})")
            data = json.loads(fh.read(length).decode("utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path}: unreadable safetensors header") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: unreadable safetensors header")
    return {k: v for k, v in data.items() if k != "__metadata__" and isinstance(v, dict)}


def _numel(shape: Iterable[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def classify(name: str, dtype: str, shape: List[int]) -> Tuple[str, int]:
    """(component, logical params) of one tensor; component is linear|other|vision|plora|skip."""
    numel = _numel(shape)
    if name.startswith(VISION_PREFIXES) or ".vision_model." in name:
        return "vision", numel
    if "plora" in name.lower():
        return "plora", numel
    leaf = name.rsplit(".", 1)[-1]
    if leaf in PACKED_INT4 and dtype.upper() in ("I32", "U32"):
        return "linear", numel * 8
    if leaf in QUANT_AUX:
        return "skip", 0        # scales/zeros: counted by the AWQ bytes-per-parameter factor
    lowered = name.lower()
    if len(shape) == 2 and not any(m in lowered for m in OTHER_MARKERS):
        return "linear", numel
    return "other", numel


def count_dir(folder: str) -> Optional[HeaderCounts]:
    """Counts over every ``*.safetensors`` shard of a folder; None when it has none."""
    try:
        shards = sorted(e.path for e in os.scandir(folder) if e.is_file() and e.name.endswith(".safetensors"))
    except OSError:
        return None
    if not shards:
        return None
    counts = HeaderCounts()
    for shard in shards:
        for name, meta in read_header(shard).items():
            shape = meta.get("shape") or []
            kind, n = classify(name, str(meta.get("dtype", "")), list(shape))
            if kind == "skip":
                continue
            if kind == "linear" and name.rsplit(".", 1)[-1] in PACKED_INT4:
                counts.packed = True
            setattr(counts, kind, getattr(counts, kind) + n)
        counts.files += 1
    return counts
