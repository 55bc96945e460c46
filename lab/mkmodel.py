"""Write a random-weight checkpoint with a real model's shape, fast and with no hub access.

Usage: python3 lab/mkmodel.py OUT SHAPE [--fill random|zeros] [--shapes lab/shapes.yaml] [--shard-gb 5]

GPU memory depends on tensor shapes and dtype, not on values, so a checkpoint with the real shape shows the
real model's memory behaviour. Everything here is the standard library (plus PyYAML for the shape table),
so it runs anywhere, tests included:
- safetensors files are written directly (8-byte header length, JSON header, raw bf16 data), sharded
  with a model.safetensors.index.json like hub checkpoints; no torch, no GPU.
- fill "random": one 64 MiB block of random bf16 values in +-[0.008, 0.031] (random bits with the
  exponent pinned, so no NaN/Inf) is reused for every tensor: the cost is the disk write (~2 GB/s).
  Norm weights are 1.0 so activations stay finite and generation produces tokens.
- fill "zeros": a sparse file (holes read back as zeros, no disk used, instant). Right for launches that
  fail before reading weights (too big for the GPU) and for any launch where only memory matters.
- the tokenizer is a byte-level BPE without merges (one token per UTF-8 byte, 3 special tokens, filler
  words up to the model's vocab) with a chat template, written as plain tokenizer.json: a prompt of N
  ASCII characters is N tokens.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
SHAPES_FILE = HERE / "shapes.yaml"
STAMP = "lab_shape.json"
BLOCK_BYTES = 64 << 20
ONE_BF16 = b"\x80\x3f"  # 1.0 in bfloat16, little-endian
CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant: {% endif %}")
SPECIALS = ["<unk>", "<s>", "</s>"]


class ShapeError(ValueError):
    """A shape name or field that the table does not define."""


def load_shapes(path: Path = SHAPES_FILE) -> Dict[str, dict]:
    import yaml
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)["shapes"]


def get_shape(name: str, path: Path = SHAPES_FILE) -> dict:
    shapes = load_shapes(path)
    if name not in shapes:
        raise ShapeError(f"unknown shape {name!r}; known: {', '.join(sorted(shapes))}")
    shape = dict(shapes[name], name=name)
    for key in ("architecture", "layers", "hidden", "heads", "kv_heads", "intermediate", "vocab"):
        if key not in shape:
            raise ShapeError(f"shape {name!r} lacks {key!r}")
    if shape["architecture"] not in ("LlamaForCausalLM", "Qwen2ForCausalLM"):
        raise ShapeError(f"shape {name!r}: architecture {shape['architecture']!r} is not supported")
    shape.setdefault("head_dim", shape["hidden"] // shape["heads"])
    shape.setdefault("tie_embeddings", False)
    shape.setdefault("qkv_bias", False)
    shape.setdefault("max_position_embeddings", 32768)
    shape.setdefault("rope_theta", 10000.0)
    return shape


def tensor_specs(shape: dict) -> List[Tuple[str, Tuple[int, ...]]]:
    """(name, shape) of every weight, in the order and naming of a transformers checkpoint."""
    h, hd, inter = shape["hidden"], shape["head_dim"], shape["intermediate"]
    q, kv = shape["heads"] * hd, shape["kv_heads"] * hd
    specs: List[Tuple[str, Tuple[int, ...]]] = [("model.embed_tokens.weight", (shape["vocab"], h))]
    for i in range(shape["layers"]):
        p = f"model.layers.{i}."
        specs += [(p + "input_layernorm.weight", (h,)),
                  (p + "self_attn.q_proj.weight", (q, h)),
                  (p + "self_attn.k_proj.weight", (kv, h)),
                  (p + "self_attn.v_proj.weight", (kv, h))]
        if shape["qkv_bias"]:
            specs += [(p + "self_attn.q_proj.bias", (q,)), (p + "self_attn.k_proj.bias", (kv,)),
                      (p + "self_attn.v_proj.bias", (kv,))]
        specs += [(p + "self_attn.o_proj.weight", (h, q)),
                  (p + "post_attention_layernorm.weight", (h,)),
                  (p + "mlp.gate_proj.weight", (inter, h)),
                  (p + "mlp.up_proj.weight", (inter, h)),
                  (p + "mlp.down_proj.weight", (h, inter))]
    specs.append(("model.norm.weight", (h,)))
    if not shape["tie_embeddings"]:
        specs.append(("lm_head.weight", (shape["vocab"], h)))
    return specs


def numel(dims: Tuple[int, ...]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def param_count(shape: dict) -> int:
    return sum(numel(d) for _, d in tensor_specs(shape))


def hf_config(shape: dict) -> dict:
    """config.json as transformers writes it for this architecture (fields lmdeploy and transformers read)."""
    cfg = {
        "architectures": [shape["architecture"]],
        "model_type": "qwen2" if shape["architecture"] == "Qwen2ForCausalLM" else "llama",
        "hidden_size": shape["hidden"], "intermediate_size": shape["intermediate"],
        "num_hidden_layers": shape["layers"], "num_attention_heads": shape["heads"],
        "num_key_value_heads": shape["kv_heads"], "head_dim": shape["head_dim"], "vocab_size": shape["vocab"],
        "max_position_embeddings": shape["max_position_embeddings"], "rope_theta": shape["rope_theta"],
        "rms_norm_eps": 1e-6, "hidden_act": "silu", "initializer_range": 0.02,
        "tie_word_embeddings": shape["tie_embeddings"], "torch_dtype": "bfloat16", "use_cache": True,
        "bos_token_id": 1, "eos_token_id": 2, "attention_dropout": 0.0,
        # Hub checkpoints carry the version that wrote them; without it transformers 5 warns about a
        # Mistral tokenizer regex, a line no real checkpoint of these models would produce.
        "transformers_version": "4.57.1",
    }
    if cfg["model_type"] == "llama":
        cfg.update(attention_bias=False, mlp_bias=False, pretraining_tp=1)
    else:
        cfg.update(use_sliding_window=False, sliding_window=None, max_window_layers=shape["layers"])
    return cfg


def _byte_alphabet() -> List[str]:
    """The byte-to-unicode table of byte-level BPE (GPT-2): printable bytes map to themselves."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


def tokenizer_files(vocab_size: int) -> Dict[str, str]:
    """tokenizer.json, tokenizer_config.json, special_tokens_map.json and chat_template.jinja contents.

    Ids past the 259 byte tokens are filler words (" w<id>") up to the model's vocab size, so every id the
    random model generates decodes to text: answers are non-empty, as a real model's would be.
    """
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for ch in _byte_alphabet():
        vocab[ch] = len(vocab)
    for i in range(len(vocab), vocab_size):
        vocab[f"\u0120w{i}"] = i
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, t in enumerate(SPECIALS)],
        "normalizer": None, "pre_tokenizer": byte_level, "post_processor": None, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": []},
    }
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    config = dict(specials, tokenizer_class="PreTrainedTokenizerFast", model_max_length=1 << 20,
                  clean_up_tokenization_spaces=False, chat_template=CHAT_TEMPLATE)
    return {"tokenizer.json": json.dumps(tok, ensure_ascii=False), "tokenizer_config.json": json.dumps(config),
            "special_tokens_map.json": json.dumps(specials), "chat_template.jinja": CHAT_TEMPLATE}


def random_block(size: int = BLOCK_BYTES) -> bytes:
    """Random bf16 values of magnitude 2^-7..2^-5 with random sign: random bits, exponent pinned."""
    buf = bytearray(os.urandom(size))
    high = bytes(((b & 0x80) | 0x3C) for b in range(256))  # sign kept, exponent 0b0111100x
    buf[1::2] = bytes(buf[1::2]).translate(high)
    return bytes(buf)


def _shards(specs: List[Tuple[str, Tuple[int, ...]]], shard_bytes: int) -> List[List[Tuple[str, Tuple[int, ...]]]]:
    shards: List[List[Tuple[str, Tuple[int, ...]]]] = [[]]
    size = 0
    for name, dims in specs:
        nbytes = numel(dims) * 2
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((name, dims))
        size += nbytes
    return shards


def _header(tensors: List[Tuple[str, Tuple[int, ...]]]) -> bytes:
    meta: Dict[str, dict] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dims in tensors:
        nbytes = numel(dims) * 2
        meta[name] = {"dtype": "BF16", "shape": list(dims), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(meta, separators=(",", ":")).encode()
    raw += b" " * (-(len(raw) + 8) % 8)  # data starts 8-byte aligned
    return struct.pack("<Q", len(raw)) + raw


def _write_shard(path: Path, tensors: List[Tuple[str, Tuple[int, ...]]], block: Optional[bytes]) -> int:
    """Write one safetensors file; block None writes holes (zeros) except the 1.0 norm weights."""
    header = _header(tensors)
    total = len(header) + sum(numel(d) * 2 for _, d in tensors)
    with open(path, "wb") as f:
        f.write(header)
        for name, dims in tensors:
            nbytes = numel(dims) * 2
            if name.endswith("norm.weight"):
                f.write(ONE_BF16 * (nbytes // 2))
            elif block is None:
                f.seek(nbytes, os.SEEK_CUR)
            else:
                view = memoryview(block)
                left = nbytes
                while left:
                    n = min(left, len(block))
                    f.write(view[:n])
                    left -= n
        f.truncate(total)
    return total


def write_model(out: Path, shape: dict, fill: str = "random", shard_gb: float = 5.0) -> dict:
    """Write config, tokenizer and weights into OUT; skip when OUT already holds this shape and fill."""
    out = Path(out)
    stamp = {"shape": shape, "fill": fill, "params": param_count(shape), "weights_bytes": param_count(shape) * 2}
    stamp_path = out / STAMP
    if stamp_path.is_file():
        try:
            if json.loads(stamp_path.read_text()) == stamp:
                return dict(stamp, model=str(out), seconds=0.0, reused=True)
        except ValueError:
            pass
    t0 = time.time()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if fill == "random":
        free = shutil.disk_usage(out).free
        if free < stamp["weights_bytes"] * 1.05:
            raise OSError(f"{out}: {free >> 30} GiB free on disk, {stamp['weights_bytes'] >> 30} GiB needed "
                          "(use --fill zeros for a sparse checkpoint)")
    block = random_block() if fill == "random" else None
    shards = _shards(tensor_specs(shape), int(shard_gb * 1e9))
    if len(shards) == 1:
        _write_shard(out / "model.safetensors", shards[0], block)
    else:
        weight_map = {}
        for i, tensors in enumerate(shards, 1):
            fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            _write_shard(out / fname, tensors, block)
            weight_map.update({name: fname for name, _ in tensors})
        index = {"metadata": {"total_size": stamp["weights_bytes"]}, "weight_map": weight_map}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))
    (out / "config.json").write_text(json.dumps(hf_config(shape), indent=2))
    (out / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}))
    for fname, text in tokenizer_files(shape["vocab"]).items():
        (out / fname).write_text(text, encoding="utf-8")
    stamp_path.write_text(json.dumps(stamp))
    return dict(stamp, model=str(out), seconds=round(time.time() - t0, 2), reused=False)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output folder")
    ap.add_argument("shape", help="shape name from the shapes table")
    ap.add_argument("--fill", choices=("random", "zeros"), default="random")
    ap.add_argument("--shapes", default=str(SHAPES_FILE), help="shapes table (YAML)")
    ap.add_argument("--shard-gb", type=float, default=5.0, help="max shard size in GB (default 5)")
    args = ap.parse_args(argv)
    try:
        info = write_model(Path(args.out), get_shape(args.shape, Path(args.shapes)), args.fill, args.shard_gb)
    except (ShapeError, OSError) as e:
        print(f"mkmodel: {e}", file=sys.stderr)
        return 2
    info.pop("shape")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
