"""Facts about the planned model folder, read from config.json and file sizes (weights never loaded)."""
from __future__ import annotations

import json
import os
from typing import Any, Dict

from doctor.facts import ProbeContext, ProbeResult, probe

MIB = 1 << 20
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def read_config(folder: str) -> Dict[str, Any]:
    """config.json as a dict; raises ValueError with a one-line reason when missing or broken."""
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"{path} not found")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def weights_mib(folder: str) -> int:
    total = 0
    try:
        for entry in os.scandir(folder):
            if entry.is_file() and entry.name.endswith(WEIGHT_SUFFIXES) and "training_args" not in entry.name:
                total += entry.stat().st_size
    except OSError:
        return 0
    return total // MIB


@probe("model", {
    "model.path": "planned model folder",
    "model.config_error": "why config.json could not be read",
    "model.architectures": "config.json architectures",
    "model.arch": "first architecture",
    "model.model_type": "config.json model_type",
    "model.torch_dtype": "checkpoint dtype (bfloat16, float16...)",
    "model.quant_method": "quantization_config.quant_method (awq, gptq...)",
    "model.quant_bits": "quantization bits",
    "model.quant_group_size": "quantization group size",
    "model.auto_map": "whether the model ships its own code (auto_map: needs trust_remote_code)",
    "model.llm_arch": "architecture of the language model inside a VLM",
    "model.weights_mib": "size of the weight files on disk (MiB)",
    "model.family": "llm | internvl | xcomposer2 (memory model's view of the architecture)",
    "model.layers": "decoder layers of the language model",
    "model.hidden_size": "hidden size of the language model",
    "model.kv_heads": "key/value heads of the language model",
    "model.head_dim": "attention head dimension",
    "model.vocab_size": "vocabulary size",
    "model.max_position": "max_position_embeddings (lmdeploy's default session_len)",
    "model.params": "parameters of the language model (from safetensors headers when present)",
    "model.vision_params": "parameters of the vision tower and projector (VLMs)",
    "model.weight_format": "hf | awq | gptq (quantization_config, or int4-packed tensors)",
    "model.shape_source": "where the shape came from (config.json, safetensors headers)",
    "model.shape_error": "why the memory model cannot read this model's shape",
})
def model_facts(ctx: ProbeContext) -> ProbeResult:
    planned = ctx.planned
    folder = planned.model if planned is not None and planned.model_is_local else None
    if not folder:
        return ProbeResult({})
    facts: Dict[str, Any] = {"model.path": os.path.abspath(folder), "model.weights_mib": weights_mib(folder)}
    try:
        cfg = read_config(folder)
    except ValueError as exc:
        facts["model.config_error"] = str(exc)
        return ProbeResult(facts)
    archs = cfg.get("architectures") or []
    if isinstance(archs, list) and archs:
        facts["model.architectures"] = [str(a) for a in archs]
        facts["model.arch"] = str(archs[0])
    if cfg.get("model_type"):
        facts["model.model_type"] = str(cfg["model_type"])
    if cfg.get("torch_dtype") or cfg.get("dtype"):
        facts["model.torch_dtype"] = str(cfg.get("torch_dtype") or cfg.get("dtype"))
    if cfg.get("auto_map"):
        facts["model.auto_map"] = True
    quant = cfg.get("quantization_config")
    if isinstance(quant, dict):
        if quant.get("quant_method"):
            facts["model.quant_method"] = str(quant["quant_method"])
        if quant.get("bits") is not None:
            facts["model.quant_bits"] = quant["bits"]
        if quant.get("group_size") is not None:
            facts["model.quant_group_size"] = quant["group_size"]
    llm = cfg.get("llm_config") or cfg.get("language_config") or cfg.get("text_config")
    if isinstance(llm, dict) and llm.get("architectures"):
        facts["model.llm_arch"] = str(llm["architectures"][0])
    facts.update(_shape_facts(folder))
    return ProbeResult(facts)


def _shape_facts(folder: str) -> Dict[str, Any]:
    """The memory model's reading of the folder (also what `check -- CMD` predicts the fit from)."""
    from doctor.memory.shapes import ShapeError, from_dir
    try:
        shape = from_dir(folder)
    except ShapeError as exc:
        return {"model.shape_error": str(exc)}
    out: Dict[str, Any] = {
        "model.family": shape.family, "model.layers": shape.llm.layers, "model.hidden_size": shape.llm.hidden,
        "model.kv_heads": shape.llm.kv_heads, "model.head_dim": shape.llm.head_dim, "model.vocab_size": shape.llm.vocab,
        "model.params": shape.counts.linear + shape.counts.other + shape.counts.plora,
        "model.weight_format": shape.weight_format, "model.shape_source": shape.source,
    }
    if shape.llm.max_position:
        out["model.max_position"] = shape.llm.max_position
    if shape.counts.vision:
        out["model.vision_params"] = shape.counts.vision
    return out
