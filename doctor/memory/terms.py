"""The memory terms of an lmdeploy launch, one pure function each (bytes, per GPU).

Each formula follows what lmdeploy allocates (sources in each docstring; the reference notes are
shared/docs/lmdeploy.md §2). Version differences are not decided here: the caller passes the variant
(``semantics.Semantics``), so every function can be unit-tested on its own.
"""
from __future__ import annotations

from typing import List

from doctor.memory.shapes import LLMShape, ParamCounts, VisionShape

FP16 = 2


def local_heads(heads: int, tp: int) -> int:
    """Heads on one rank (at least one: small-KV models replicate KV heads when tp > kv_heads)."""
    return max(1, heads // max(1, tp))


def llm_weight_bytes(counts: ParamCounts, llm: LLMShape, weight_format: str, tp: int,
                     embeddings_split: bool, awq_bytes_per_param: float) -> float:
    """Language-model weights on one GPU.

    Decoder linears are split by tp; in 16 bits they take 2 B/param, AWQ/GPTQ int4 with group 128 take
    0.5 B + one fp16 scale and zero per 128 inputs = 0.53125 B/param (lmdeploy.md §2.3). Embedding,
    LM head and norms stay 16-bit; the embedding and LM head are split by tp only where the version
    does it (TurboMind >= 0.6.0), else each rank holds both. XComposer2's PLoRA stays fp16, split by tp.
    """
    tp = max(1, tp)
    per_linear = awq_bytes_per_param if weight_format in ("awq", "gptq") else FP16
    vocab_part = min(counts.other, llm.embedding_params + llm.lm_head_params)
    rest = counts.other - vocab_part
    vocab_bytes = vocab_part * FP16 / (tp if embeddings_split else 1)
    return counts.linear * per_linear / tp + counts.plora * FP16 / tp + vocab_bytes + rest * FP16


def vision_weight_bytes(vision_params: int, spread_over: int = 1) -> float:
    """Vision tower + projector in fp16 (TurboMind <= 0.15 loads it with accelerate across the tp GPUs)."""
    return vision_params * FP16 / max(1, spread_over)


def kv_bytes_per_token(llm: LLMShape, tp: int, quant_policy: int) -> float:
    """K and V of one token over all layers on one GPU (TurboMind block.h and PyTorch cache_engine).

    quant_policy 8: 1 byte per element plus an fp16 scale and zero per head per token for K and for V;
    4: half a byte per element plus the same scale/zero; 16/17 (FP8): 1 byte, per-tensor scale.
    """
    kv = local_heads(llm.kv_heads, tp)
    d = llm.head_dim
    if quant_policy == 8:
        per_head = d * 1 + 4
    elif quant_policy == 4:
        per_head = d * 0.5 + 4
    elif quant_policy in (16, 17):
        per_head = d * 1
    else:
        per_head = d * FP16
    return 2 * kv * per_head * llm.layers


def block_bytes(llm: LLMShape, tp: int, quant_policy: int, block_len: int) -> float:
    """One KV block: block_len tokens (``--cache-block-seq-len`` / PyTorch ``block_size``, 64)."""
    return kv_bytes_per_token(llm, tp, quant_policy) * block_len


def blocks_in(nbytes: float, block: float) -> int:
    return int(max(0.0, nbytes) // block) if block > 0 else 0


def turbomind_runtime_bytes(llm: LLMShape, tp: int, batch: int, session_len: int, prefill: int,
                            ctx_tokens: str, cublas_mib: float) -> float:
    """TurboMind's runtime buffers, allocated out of ``(1 - ratio) x free`` (lmdeploy.md §2.5).

    Context buffers (sized by session_len in 0.5.1-0.5.2, by prefill + batch from 0.5.3), the
    q/k/v and attention outputs and the FFN of one prefill chunk, the linear K/V staging of a whole
    context, fp32 logits (local + gathered), the split-K decode workspace, per-sequence token buffers
    and the cuBLAS workspace.
    """
    h = llm.hidden
    hq = local_heads(llm.heads, tp)
    hkv = local_heads(llm.kv_heads, tp)
    d = llm.head_dim
    inter = llm.intermediate / max(1, tp)
    n_ctx = session_len if ctx_tokens == "session_len" else prefill + batch
    ctx_bufs = 2 * n_ctx * h * FP16
    qkv = prefill * (hq + 2 * hkv) * d * FP16
    attn_out = prefill * hq * d * FP16
    tmp_kv = 2 * hkv * (session_len + 64) * d * FP16
    ffn = 2 * prefill * inter * FP16
    logits = 2 * batch * llm.vocab * 4
    attn_ws = 4096 * hq * (d + 2) * 4
    per_seq = batch * session_len * 4 * 6
    return ctx_bufs + qkv + attn_out + tmp_kv + ffn + logits + attn_ws + per_seq + cublas_mib * (1 << 20)


def pytorch_reserve_bytes(formula: str, prefill: int, batch: int, vocab: int) -> float:
    """Runtime memory the PyTorch engine sets aside before applying the ratio (executor/base.py).

    0.5.1-0.9.1: ``P x V x 7`` (fp16 logits + fp32 copy + misc); 0.9.2+: ``(P + 2B) x V x 2``.
    """
    if formula == "prefill_x_vocab_x7":
        return prefill * vocab * 7.0
    return (prefill + 2 * batch) * vocab * 2.0


def capture_batch_sizes(max_batches: int) -> List[int]:
    """Decode batch sizes the PyTorch engine captures CUDA graphs for (0.18 graph_runner/runner.py):
    powers of two up to min(256, B), then every 256 up to B, and B itself."""
    sizes: List[int] = []
    size = 1
    while size <= min(256, max_batches):
        sizes.append(size)
        size *= 2
    sizes += list(range(size, max_batches + 1, 256))
    if not sizes or sizes[-1] != max_batches:
        sizes.append(max_batches)
    return sizes


def pytorch_graph_bytes(max_batches: int, vocab: int, num_blocks: int) -> float:
    """CUDA-graph memory of the PyTorch engine after start-up.

    Every captured decode graph keeps a ``block_offsets`` buffer of ``batch x num_blocks`` int32
    (models/utils/cudagraph.py make_buffers_cudagraph), and the shared graph pool keeps the largest
    graph's output logits, ``B x V`` in 16 bits.
    """
    per_block = sum(capture_batch_sizes(max_batches)) * 4
    return max_batches * vocab * FP16 + per_block * num_blocks


def image_activation_bytes(vision: VisionShape, images: int = 1, flash_attn: bool = False) -> float:
    """Vision-tower activations for ``images`` images of the largest tiling (lmdeploy.md §2.6).

    Per tile of n tokens: n x (4H + I) x 2 B of hidden states and MLP, plus heads x n^2 x 2 x 2 B of
    attention scores when the tower runs eager attention (InternViT falls back to it without flash-attn).
    The torch caching allocator keeps the peak, so it counts against what the KV ratio left.
    """
    n = vision.patch_tokens
    per_tile = n * (4 * vision.hidden + vision.intermediate) * FP16
    if not flash_attn:
        per_tile += vision.heads * n * n * FP16 * 2
    return per_tile * vision.tiles_per_image * max(1, images)


def capacity_tokens(kv_bytes: float, block: float, block_len: int) -> int:
    """Tokens the KV cache holds: whole blocks only."""
    return blocks_in(kv_bytes, block) * block_len


# -- lmdeploy lite auto_awq ----------------------------------------------------------------------------
def auto_awq_gpu_bytes(llm: LLMShape, samples: int, seqlen: int, batch: int, context_mib: float) -> float:
    """GPU peak of ``lite auto_awq`` (lmdeploy.md §2.7b): embedding on GPU, one decoder layer at a time
    (its fp16 weights and a quantised copy), the layer's calibration inputs and outputs
    (samples x seqlen x hidden, fp16, twice), one batch's attention scores (eager) and MLP activations."""
    layer = llm.layer_linear_params * FP16 * 2
    embed = llm.embedding_params * FP16
    act_io = 2 * samples * seqlen * llm.hidden * FP16
    scores = batch * llm.heads * seqlen * seqlen * FP16 * 2
    mlp = batch * seqlen * llm.intermediate * FP16 * 3
    return context_mib * (1 << 20) + layer + embed + act_io + scores + mlp


def auto_awq_host_bytes(counts: ParamCounts, overhead_mib: float) -> float:
    """Host RAM of ``lite auto_awq``: the whole model on CPU in fp16, plus Python/torch/calibration data."""
    return counts.total * FP16 + overhead_mib * (1 << 20)


def awq_checkpoint_bytes(counts: ParamCounts, awq_bytes_per_param: float) -> float:
    """Disk size of the quantised folder: int4 linears with scales/zeros, everything else fp16."""
    return counts.linear * awq_bytes_per_param + (counts.other + counts.plora + counts.vision) * FP16
