"""Model shapes: what the memory model needs to know about a model, from its folder or the catalogue.

A shape is the language model's dimensions (layers, hidden size, heads, KV heads, vocabulary...), the
vision tower of a VLM, XComposer2's Partial-LoRA, the weight format (hf / awq / gptq) and the
parameter counts by component. From a local folder it is read from ``config.json`` (``llm_config`` /
``vision_config`` for VLMs, ``quantization_config`` for AWQ/GPTQ) and, when the weights are
safetensors, the exact counts come from the file headers. Nothing here loads weights.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional

from doctor import knowledge

# Keys lmdeploy's _get_and_verify_max_len takes the minimum over (lmdeploy/archs.py, utils.py).
MAX_LEN_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "model_max_length",
                "max_sequence_length", "max_seq_length", "seq_len")
LLM_KEYS = {"layers": "num_hidden_layers", "hidden": "hidden_size", "heads": "num_attention_heads",
            "intermediate": "intermediate_size", "vocab": "vocab_size"}
QKV_BIAS_ARCHS = ("Qwen2ForCausalLM",)


class ShapeError(ValueError):
    """The shape cannot be known; the message is the one-line reason shown as "unknown: ..."."""


@dataclass(frozen=True)
class LLMShape:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    max_position: Optional[int]
    dtype: str = "bfloat16"
    tie: bool = False
    qkv_bias: bool = False
    arch: str = ""

    @property
    def attention_params(self) -> int:
        q = self.heads * self.head_dim
        kv = self.kv_heads * self.head_dim
        return self.hidden * q + 2 * self.hidden * kv + q * self.hidden

    @property
    def mlp_params(self) -> int:
        return 3 * self.hidden * self.intermediate        # gate, up, down

    @property
    def layer_linear_params(self) -> int:
        return self.attention_params + self.mlp_params

    @property
    def linear_params(self) -> int:
        """The decoder linears: what AWQ/GPTQ quantises and tensor parallelism splits."""
        return self.layers * self.layer_linear_params

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def lm_head_params(self) -> int:
        return 0 if self.tie else self.vocab * self.hidden

    @property
    def other_params(self) -> int:
        """Embedding, LM head, norms and biases: kept in 16 bits even in an AWQ model."""
        norms = self.layers * 2 * self.hidden + self.hidden
        bias = self.layers * (self.heads + 2 * self.kv_heads) * self.head_dim if self.qkv_bias else 0
        return self.embedding_params + self.lm_head_params + norms + bias


@dataclass(frozen=True)
class VisionShape:
    tower: str
    layers: int
    hidden: int
    heads: int
    intermediate: int
    params: int                 # tower + projector
    patch_tokens: int           # tokens one tile makes inside the tower (patches + class token)
    tokens_per_tile: int        # tokens one tile becomes in the language model
    max_tiles: int

    @property
    def tiles_per_image(self) -> int:
        """InternVL's dynamic tiling: up to max_tiles tiles plus a thumbnail when there is more than one."""
        return self.max_tiles + (1 if self.max_tiles > 1 else 0)

    @property
    def image_tokens(self) -> int:
        return self.tokens_per_tile * self.tiles_per_image


@dataclass
class ParamCounts:
    """Logical parameter counts by component (packed int4 counted unpacked)."""

    linear: int
    other: int
    vision: int = 0
    plora: int = 0

    @property
    def total(self) -> int:
        return self.linear + self.other + self.vision + self.plora


@dataclass
class ModelShape:
    name: str
    family: str                 # llm | internvl | xcomposer2
    architecture: str
    llm: LLMShape
    counts: ParamCounts
    vision: Optional[VisionShape] = None
    weight_format: str = "hf"   # hf | awq | gptq
    source: str = ""            # where the shape came from, for people
    source_kind: str = ""       # config | catalogue
    engines: Dict[str, str] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    @property
    def is_vlm(self) -> bool:
        return self.vision is not None

    def with_format(self, fmt: str, why: str = "") -> "ModelShape":
        out = replace(self, weight_format=fmt, notes=list(self.notes))
        if why:
            out.notes.append(why)
        return out


# -- building blocks ----------------------------------------------------------------------------------
def llm_from_dict(cfg: Dict[str, Any], arch: str, where: str) -> LLMShape:
    """An LLMShape from config.json keys (HF names) or catalogue keys (short names)."""
    def pick(short: str) -> Any:
        return cfg.get(short, cfg.get(LLM_KEYS.get(short, short)))

    missing = [LLM_KEYS.get(k, k) for k in ("layers", "hidden", "heads", "intermediate", "vocab") if pick(k) is None]
    if missing:
        raise ShapeError(f"{where} lacks {', '.join(missing)}")
    try:
        heads = int(pick("heads"))
        hidden = int(pick("hidden"))
        kv = cfg.get("kv_heads", cfg.get("num_key_value_heads")) or heads
        head_dim = cfg.get("head_dim") or hidden // heads
        lengths = [int(cfg[k]) for k in MAX_LEN_KEYS if isinstance(cfg.get(k), (int, float)) and cfg[k] > 0]
        max_position = cfg.get("max_position") or (min(lengths) if lengths else None)
        return LLMShape(layers=int(pick("layers")), hidden=hidden, heads=heads, kv_heads=int(kv),
                        head_dim=int(head_dim), intermediate=int(pick("intermediate")), vocab=int(pick("vocab")),
                        max_position=int(max_position) if max_position else None,
                        dtype=str(cfg.get("dtype") or cfg.get("torch_dtype") or "bfloat16"),
                        tie=bool(cfg.get("tie", cfg.get("tie_word_embeddings", False))),
                        qkv_bias=bool(cfg.get("qkv_bias", cfg.get("bias", False)) or arch in QKV_BIAS_ARCHS),
                        arch=arch)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ShapeError(f"{where} has non-numeric shape values") from None


def vit_params(layers: int, hidden: int, intermediate: int, patch_tokens: int, patch: int = 14) -> int:
    """A ViT's parameters: per layer qkv+proj (4h^2) and the MLP (2hi), plus patch and position embeddings."""
    return layers * (4 * hidden * hidden + 2 * hidden * intermediate) + 3 * patch * patch * hidden + patch_tokens * hidden


def projector_params(inp: int, out: int) -> int:
    """LayerNorm(in) -> Linear(in, out) -> GELU -> Linear(out, out), as InternVL's mlp1."""
    return 2 * inp + inp * out + out + out * out + out


def plora_params(llm: LLMShape, rank: int) -> int:
    """XComposer2's Partial-LoRA: A (in x r) and B (r x out) on wqkv, wo, w1, w2, w3 of every layer."""
    q = llm.heads * llm.head_dim
    qkv_out = q + 2 * llm.kv_heads * llm.head_dim
    pairs = [(llm.hidden, qkv_out), (q, llm.hidden), (llm.hidden, llm.intermediate),
             (llm.intermediate, llm.hidden), (llm.hidden, llm.intermediate)]
    return llm.layers * sum(rank * (i + o) for i, o in pairs)


def architectures() -> Dict[str, Any]:
    return knowledge.table("model-shapes").get("architectures", {})


def family_of(arch: str, where: str) -> str:
    """llm / internvl / xcomposer2, or ShapeError for architectures the model does not cover."""
    table = architectures()
    if arch in (table.get("vlm") or {}):
        return table["vlm"][arch]
    if arch in (table.get("dense") or []):
        return "llm"
    why = (table.get("not_modelled") or {}).get(arch)
    if why:
        raise ShapeError(f"{where}: architecture {arch} is {why}")
    raise ShapeError(f"{where}: architecture {arch or '(none)'} is not in lmdoctor's memory model "
                     "(rules/knowledge/model-shapes.yaml)")


def tower(name: str) -> Dict[str, Any]:
    return (knowledge.table("model-shapes").get("vision_towers") or {})[name]


# -- from a local folder -------------------------------------------------------------------------------
def _quant_format(cfg: Dict[str, Any], where: str) -> str:
    quant = cfg.get("quantization_config")
    if not isinstance(quant, dict):
        return "hf"
    method = str(quant.get("quant_method", "")).lower()
    if method in ("awq", "gptq"):
        if int(quant.get("bits", 4) or 4) != 4:
            raise ShapeError(f"{where}: {method} with {quant.get('bits')} bits is not modelled (only 4-bit)")
        return method
    raise ShapeError(f"{where}: quantization {method or '(unnamed)'} is not modelled (only awq/gptq 4-bit)")


def _internvl_vision(cfg: Dict[str, Any], llm: LLMShape) -> VisionShape:
    vc = cfg.get("vision_config") or {}
    hidden = int(vc.get("hidden_size", 1024))
    layers = int(vc.get("num_hidden_layers", 24))
    inter = int(vc.get("intermediate_size", 4 * hidden))
    image = int(cfg.get("force_image_size") or vc.get("image_size") or 448)
    patch = int(vc.get("patch_size", 14))
    ds = float(cfg.get("downsample_ratio", 0.5))
    patches = (image // patch) ** 2
    tiles = int(cfg.get("max_dynamic_patch", 12)) if cfg.get("dynamic_image_size", True) else 1
    params = vit_params(layers, hidden, inter, patches + 1, patch) + projector_params(int(hidden / (ds * ds)), llm.hidden)
    return VisionShape(tower="InternViT", layers=layers, hidden=hidden, heads=int(vc.get("num_attention_heads", 16)),
                       intermediate=inter, params=params, patch_tokens=patches + 1,
                       tokens_per_tile=int(patches * ds * ds), max_tiles=tiles)


def _catalogue_vision(spec: Dict[str, Any], llm: LLMShape) -> VisionShape:
    t = tower(spec["tower"])
    proj = spec.get("projector") or {}
    params = int(t["params"]) + (projector_params(int(proj["in"]), int(proj["out"])) if proj else 0)
    return VisionShape(tower=spec["tower"], layers=int(t["layers"]), hidden=int(t["hidden"]), heads=int(t["heads"]),
                       intermediate=int(t["intermediate"]), params=params, patch_tokens=int(t["patch_tokens"]),
                       tokens_per_tile=int(spec["tokens_per_tile"]), max_tiles=int(spec.get("max_tiles", 1)))


def _xcomposer_defaults() -> Dict[str, Any]:
    for entry in knowledge.table("model-shapes").get("models", []):
        if entry.get("architecture") == "InternLMXComposer2ForCausalLM":
            return entry
    raise ShapeError("the catalogue has no XComposer2 entry")  # pragma: no cover - data error


def from_config(cfg: Dict[str, Any], folder: str) -> ModelShape:
    """The shape of a local model folder from its config.json (and safetensors headers when present).

    Any malformed value (a string where a number belongs, a list where a mapping belongs, a broken
    safetensors header) is a ShapeError naming the file: the fit becomes "unknown", never a traceback.
    """
    where = os.path.join(folder, "config.json")
    try:
        return _from_config(cfg, folder, where)
    except ShapeError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        raise ShapeError(f"{where}: unexpected content ({type(exc).__name__}: {exc})") from None


def _from_config(cfg: Dict[str, Any], folder: str, where: str) -> ModelShape:
    from doctor.memory.safetensors_header import count_dir
    archs = cfg.get("architectures") or []
    arch = str(archs[0]) if isinstance(archs, list) and archs else ""
    family = family_of(arch, where)
    fmt = _quant_format(cfg, where)
    vision: Optional[VisionShape] = None
    plora = 0
    if family == "internvl":
        llm_cfg = cfg.get("llm_config") or {}
        llm_arch = str((llm_cfg.get("architectures") or [""])[0])
        family_of(llm_arch, f"{where} llm_config")
        llm = llm_from_dict(llm_cfg, llm_arch, f"{where} llm_config")
        vision = _internvl_vision(cfg, llm)
        fmt = fmt if fmt != "hf" else _quant_format(llm_cfg, where)
    else:
        llm = llm_from_dict(cfg, arch, where)
        if family == "xcomposer2":
            entry = _xcomposer_defaults()
            vision = _catalogue_vision(entry["vision"], llm)
            plora = plora_params(llm, int(entry.get("plora_rank", 256)))
    counts = ParamCounts(linear=llm.linear_params, other=llm.other_params,
                         vision=vision.params if vision else 0, plora=plora)
    source = f"config.json of {folder}"
    headers = count_dir(folder)
    if headers is not None and headers.llm:
        counts = ParamCounts(linear=headers.linear, other=headers.other,
                             vision=headers.vision or counts.vision, plora=headers.plora or counts.plora)
        source += f" + safetensors headers ({headers.files} file{'s' if headers.files != 1 else ''})"
        if headers.packed and fmt == "hf":
            fmt = "awq"
    name = os.path.basename(os.path.normpath(folder))
    return ModelShape(name=name, family=family, architecture=arch, llm=llm, counts=counts, vision=vision,
                      weight_format=fmt, source=source, source_kind="config")


@functools.lru_cache(maxsize=32)
def _from_dir_cached(folder: str, stamp: tuple) -> ModelShape:
    from doctor.facts.model_dir import read_config
    try:
        cfg = read_config(folder)
    except ValueError as exc:
        raise ShapeError(str(exc)) from None
    return from_config(cfg, folder)


def from_dir(folder: str) -> ModelShape:
    """Shape of a local folder (cached per folder and config.json mtime/size: check reads it twice)."""
    try:
        st = os.stat(os.path.join(folder, "config.json"))
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = (0, 0)
    shape = _from_dir_cached(os.path.abspath(folder), stamp)
    return replace(shape, notes=list(shape.notes))


def from_catalogue_entry(entry: Dict[str, Any]) -> ModelShape:
    """A ModelShape from one model-shapes.yaml entry."""
    arch = str(entry["architecture"])
    family = family_of(arch, f"model-shapes.yaml {entry['name']}")
    llm_spec = dict(entry["llm"])
    llm = llm_from_dict(llm_spec, str(llm_spec.get("arch", arch)), f"model-shapes.yaml {entry['name']}")
    vision = _catalogue_vision(entry["vision"], llm) if entry.get("vision") else None
    plora = plora_params(llm, int(entry["plora_rank"])) if entry.get("plora_rank") else 0
    counts = ParamCounts(linear=llm.linear_params, other=llm.other_params,
                         vision=vision.params if vision else 0, plora=plora)
    notes = [str(entry["note"])] if entry.get("note") else []
    return ModelShape(name=str(entry["name"]), family=family, architecture=arch, llm=llm, counts=counts,
                      vision=vision, source=f"built-in catalogue: {entry.get('repo', entry['name'])} "
                                            f"({entry.get('source', 'model-shapes.yaml')})",
                      source_kind="catalogue", engines=dict(entry.get("engines") or {}), notes=notes)
