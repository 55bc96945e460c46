"""Real model folders for the memory-model tests: config.json and real safetensors files.

The safetensors files have real headers (8-byte length, JSON tensor table) and are extended to their
full size as sparse files, so a "7B" checkpoint costs no disk and the reader sees exactly what it would
see in a downloaded model. The tensor names follow the real checkpoints (InternLM2: wqkv/wo/w1/w2/w3,
tok_embeddings, output; AWQ: qweight/qzeros/scales).
"""
from __future__ import annotations

import json
import os
import struct
from typing import Dict, List, Tuple

DTYPE_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "I32": 4}

INTERNLM2_18B = {"architectures": ["InternLM2ForCausalLM"], "model_type": "internlm2", "num_hidden_layers": 24,
                 "hidden_size": 2048, "num_attention_heads": 16, "num_key_value_heads": 8, "intermediate_size": 8192,
                 "vocab_size": 92544, "max_position_embeddings": 32768, "torch_dtype": "bfloat16",
                 "tie_word_embeddings": False, "bias": False}


def write_safetensors(path: str, tensors: List[Tuple[str, str, List[int]]]) -> int:
    """Write a safetensors file (header + sparse data); returns the parameter count it declares."""
    header: Dict[str, dict] = {}
    offset = 0
    params = 0
    for name, dtype, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        size = n * DTYPE_BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
        params += n
    raw = json.dumps(header).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        fh.truncate(8 + len(raw) + offset)
    return params


def internlm2_tensors(cfg: dict, prefix: str = "", awq: bool = False) -> List[Tuple[str, str, List[int]]]:
    h, i, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    d = h // cfg["num_attention_heads"]
    qkv = (cfg["num_attention_heads"] + 2 * cfg["num_key_value_heads"]) * d
    out = [(f"{prefix}model.tok_embeddings.weight", "BF16", [v, h]), (f"{prefix}output.weight", "BF16", [v, h]),
           (f"{prefix}model.norm.weight", "BF16", [h])]
    for layer in range(cfg["num_hidden_layers"]):
        base = f"{prefix}model.layers.{layer}"
        linears = [("attention.wqkv", h, qkv), ("attention.wo", h, h), ("feed_forward.w1", h, i),
                   ("feed_forward.w3", h, i), ("feed_forward.w2", i, h)]
        for name, fan_in, fan_out in linears:
            if awq:
                out += [(f"{base}.{name}.qweight", "I32", [fan_in, fan_out // 8]),
                        (f"{base}.{name}.qzeros", "I32", [fan_in // 128, fan_out // 8]),
                        (f"{base}.{name}.scales", "F16", [fan_in // 128, fan_out])]
            else:
                out.append((f"{base}.{name}.weight", "BF16", [fan_out, fan_in]))
        out += [(f"{base}.attention_norm.weight", "BF16", [h]), (f"{base}.ffn_norm.weight", "BF16", [h])]
    return out


def make_model(folder: str, cfg: dict, tensors: List[Tuple[str, str, List[int]]], shards: int = 2) -> int:
    """A model folder: config.json and the tensors spread over ``shards`` safetensors files."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as fh:
        json.dump(cfg, fh)
    per = (len(tensors) + shards - 1) // shards
    total = 0
    for n in range(shards):
        part = tensors[n * per:(n + 1) * per]
        if part:
            total += write_safetensors(os.path.join(folder, f"model-{n + 1:05d}-of-{shards:05d}.safetensors"), part)
    return total
