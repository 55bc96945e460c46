"""Put the terms together in the order lmdeploy allocates them, and say which stage runs out first.

Order (lmdeploy.md §2.1): CUDA context, then the weights (the vision tower first for VLMs), then the KV
cache sized from the free memory that is left (TurboMind: ``ratio x free``; PyTorch engine:
``ratio x (free - runtime reserve)``, halving ``max_prefill_token_num`` when fewer than 16 blocks
fit), then runtime buffers (TurboMind: out of what the ratio left; PyTorch: CUDA graphs and the
reserve), then, for a VLM, the vision activations of an image. Each stage is checked against the
memory available per GPU; the first that does not fit is where the launch fails.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from doctor.memory import MIB, mib, terms
from doctor.memory.hardware import Hardware
from doctor.memory.launch import Launch
from doctor.memory.semantics import Semantics
from doctor.memory.shapes import ModelShape

# Failing stages and the failure category each means (rules/taxonomy.yaml).
CATEGORY = {"weights": "oom_weight_load", "kv_cache": "oom_kv_cache", "runtime": "oom_kv_cache",
            "image": "oom_vlm_activation", "image_tokens": "session_len_exceeded", "settings": "oom_kv_cache"}
PROMPT_TOKENS_WITH_IMAGE = 256     # text around an image in the smallest useful VLM request
IMAGE_STAGES = ("image", "image_tokens")


@dataclass
class Stage:
    name: str
    ok: bool
    need_mib: float
    have_mib: float
    detail: str = ""

    def to_json(self) -> dict:
        return {"stage": self.name, "ok": self.ok, "need_mib": round(self.need_mib),
                "have_mib": round(self.have_mib), "detail": self.detail}


@dataclass
class Prediction:
    shape: ModelShape
    launch: Launch
    hardware: Hardware
    overhead_mib: float = 0.0
    weights_mib: float = 0.0
    vision_mib: float = 0.0
    free_after_weights_mib: float = 0.0
    kv_cache_mib: float = 0.0
    runtime_mib: float = 0.0          # TurboMind buffers / PyTorch CUDA graphs + reserve (at a full prefill)
    graph_mib: float = 0.0            # PyTorch: part of runtime_mib held right after start-up
    reserve_mib: float = 0.0          # PyTorch: part of runtime_mib used by a full prefill
    image_activation_mib: float = 0.0
    kv_bytes_per_token: float = 0.0
    block_mib: float = 0.0
    blocks: int = 0
    kv_capacity_tokens: int = 0
    prefill: int = 0                  # PyTorch may halve it when memory is short
    image_tokens: int = 0
    stages: List[Stage] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def failed(self) -> Optional[Stage]:
        return next((s for s in self.stages if not s.ok), None)

    @property
    def fits(self) -> bool:
        return self.failed is None

    @property
    def fits_text(self) -> bool:
        """Everything but images fits (a VLM that serves text requests)."""
        return all(s.ok for s in self.stages if s.name not in IMAGE_STAGES)

    @property
    def session_ok(self) -> bool:
        return self.kv_capacity_tokens >= self.launch.session_len

    @property
    def ready_mib(self) -> float:
        """Held right after start-up (what the calibration compares with measured memory)."""
        held = self.runtime_mib - self.reserve_mib
        return self.overhead_mib + self.weights_mib + self.vision_mib + self.kv_cache_mib + held

    @property
    def peak_mib(self) -> float:
        """Worst case while serving: a full prefill, and for a VLM one image of the largest tiling."""
        return (self.overhead_mib + self.weights_mib + self.vision_mib + self.kv_cache_mib + self.runtime_mib
                + self.image_activation_mib)

    @property
    def headroom_mib(self) -> float:
        return self.hardware.available_mib - self.peak_mib

    @property
    def text_headroom_mib(self) -> float:
        return self.headroom_mib + self.image_activation_mib

    def breakdown(self) -> dict:
        return {"weights_mib": round(self.weights_mib), "vision_mib": round(self.vision_mib),
                "kv_cache_mib": round(self.kv_cache_mib), "runtime_mib": round(self.runtime_mib),
                "overhead_mib": round(self.overhead_mib), "image_activation_mib": round(self.image_activation_mib)}


def predict(shape: ModelShape, launch: Launch, hw: Hardware, sem: Semantics, flash_attn: bool = False) -> Prediction:
    p = Prediction(shape=shape, launch=launch, hardware=hw, prefill=launch.prefill)
    llm = shape.llm
    tp = launch.tp
    avail = hw.available_mib
    p.overhead_mib = sem.cuda_context_mib + (sem.tp_comm_mib if tp > 1 else 0.0)
    p.weights_mib = mib(terms.llm_weight_bytes(shape.counts, llm, launch.weight_format, tp, sem.embeddings_split,
                                               sem.awq_bytes_per_param))
    if shape.is_vlm:
        spread = tp if (sem.backend == "turbomind" and sem.tm_vision_in_pytorch) else 1
        p.vision_mib = mib(terms.vision_weight_bytes(shape.counts.vision, spread))
        p.image_tokens = shape.vision.image_tokens
    loaded = p.overhead_mib + p.weights_mib + p.vision_mib
    p.stages.append(Stage("weights", loaded <= avail, loaded, avail,
                          "CUDA context + weights" + (" + vision tower" if shape.is_vlm else "")))
    free = avail - loaded
    p.free_after_weights_mib = free
    p.kv_bytes_per_token = terms.kv_bytes_per_token(llm, tp, launch.quant_policy)
    block = terms.block_bytes(llm, tp, launch.quant_policy, launch.block_len)
    p.block_mib = mib(block)
    if not p.stages[-1].ok:
        return p
    if launch.quant_policy not in (0, 4, 8, 16, 17) or (launch.quant_policy and not sem.kv_quant):
        p.stages.append(Stage("settings", False, 0, 0, f"--quant-policy {launch.quant_policy} is not supported by "
                                                       f"the {sem.backend} engine of lmdeploy {sem.version}"))
        return p
    if sem.backend == "pytorch":
        _pytorch(p, launch, sem, free, block)
    else:
        _turbomind(p, launch, sem, free, block, hw)
    if p.failed is not None:
        return p
    if shape.is_vlm:
        p.image_activation_mib = mib(terms.image_activation_bytes(shape.vision, launch.vision_batch, flash_attn))
        left = free - p.kv_cache_mib - p.runtime_mib
        p.stages.append(Stage("image", p.image_activation_mib <= left, p.image_activation_mib, left,
                              f"vision activations of {launch.vision_batch} image(s) of "
                              f"{shape.vision.tiles_per_image} tiles ({'flash' if flash_attn else 'eager'} attention)"))
        need = p.image_tokens + PROMPT_TOKENS_WITH_IMAGE
        p.stages.append(Stage("image_tokens", p.kv_capacity_tokens >= need, need, p.kv_capacity_tokens,
                              f"KV cache tokens for one image ({p.image_tokens} tokens) and its prompt"))
    return p


def _turbomind(p: Prediction, launch: Launch, sem: Semantics, free: float, block: float, hw: Hardware) -> None:
    r = launch.ratio
    if r >= 1 and sem.ratio_at_least_one == "rejected":
        p.stages.append(Stage("settings", False, 0, 0, f"lmdeploy {sem.version} rejects --cache-max-entry-count {r:g} "
                                                       "(assert 0 < cache_max_entry_count < 1)"))
        return
    if r >= 1:
        kv_bytes = int(r) * block
        how = f"{int(r)} blocks (a value >= 1 is a block count in lmdeploy {sem.version})"
    elif sem.ratio_of == "total":
        kv_bytes = r * hw.total_mib * MIB
        how = f"{r:g} x total GPU memory (lmdeploy {sem.version} semantics)"
    else:
        kv_bytes = r * free * MIB
        how = f"{r:g} x free memory after weights"
    p.blocks = terms.blocks_in(kv_bytes, block)
    p.kv_cache_mib = p.blocks * p.block_mib
    p.kv_capacity_tokens = p.blocks * launch.block_len
    p.stages.append(Stage("kv_cache", p.blocks > 0 and p.kv_cache_mib <= free, p.kv_cache_mib, free, how))
    if not p.stages[-1].ok:
        return
    p.runtime_mib = mib(terms.turbomind_runtime_bytes(p.shape.llm, launch.tp, launch.max_batch_size, launch.session_len,
                                                      launch.prefill, sem.tm_ctx_tokens, sem.cublas_workspace_mib))
    left = free - p.kv_cache_mib
    when = "at start-up (warm-up)" if sem.tm_warmup_at_start else "on the first request"
    p.stages.append(Stage("runtime", p.runtime_mib <= left, p.runtime_mib, left,
                          f"TurboMind runtime buffers, allocated {when} out of what the KV cache left"))


def _pytorch(p: Prediction, launch: Launch, sem: Semantics, free: float, block: float) -> None:
    r = launch.ratio
    if not 0 < r < 1:
        p.stages.append(Stage("settings", False, 0, 0, f"lmdeploy {sem.version} rejects --cache-max-entry-count {r:g} "
                                                       "(assert 0 < cache_max_entry_count < 1)"))
        return
    vocab = p.shape.llm.vocab
    prefill = launch.prefill
    reserve = 0.0
    while prefill > 0:
        reserve = terms.pytorch_reserve_bytes(sem.pt_reserve_formula, prefill, launch.max_batch_size, vocab)
        blocks = terms.blocks_in(int((free * MIB - reserve) * r), block)
        if sem.pt_fail_inside_halving and blocks <= sem.pt_fail_at_or_below:
            p.reserve_mib = mib(reserve)
            p.stages.append(Stage("kv_cache", False, mib(reserve) + p.block_mib * (sem.pt_fail_at_or_below + 1) / r,
                                  free, f"No enough gpu memory for kv cache: {r:g} x (free after weights - "
                                        f"{mib(reserve):.0f} MiB runtime reserve) holds {blocks} blocks"))
            return
        if blocks >= sem.pt_min_blocks:
            break
        prefill //= 2
    if prefill <= 0:
        p.stages.append(Stage("kv_cache", False, mib(reserve), free,
                              "No enough gpu memory for runtime: even max_prefill_token_num 1 leaves < "
                              f"{sem.pt_min_blocks} KV blocks"))
        return
    if prefill != launch.prefill:
        p.notes.append(f"the PyTorch engine will lower max_prefill_token_num to {prefill} "
                       "('No enough memory. update max_prefill_token_num')")
    p.prefill = prefill
    p.reserve_mib = mib(reserve)
    p.blocks = terms.blocks_in(int((free * MIB - reserve) * r), block)
    p.kv_cache_mib = p.blocks * p.block_mib
    p.kv_capacity_tokens = p.blocks * launch.block_len
    ok = p.blocks > sem.pt_fail_at_or_below
    p.stages.append(Stage("kv_cache", ok, p.kv_cache_mib, free,
                          f"{r:g} x (free after weights - {p.reserve_mib:.0f} MiB runtime reserve)"
                          + ("" if ok else ": No enough gpu memory for kv cache")))
    if not ok:
        return
    graphs = sem.pt_graphs and not launch.eager
    p.graph_mib = mib(terms.pytorch_graph_bytes(launch.max_batch_size, vocab, p.blocks)) if graphs else 0.0
    p.runtime_mib = p.graph_mib + p.reserve_mib
    left = free - p.kv_cache_mib
    p.stages.append(Stage("runtime", p.runtime_mib <= left, p.runtime_mib, left,
                          ("CUDA graphs + " if graphs else "") + "the runtime reserve a full prefill uses"))


def min_available_mib(shape: ModelShape, launch: Launch, hw: Hardware, sem: Semantics, flash_attn: bool,
                      need_session: bool = False) -> Optional[float]:
    """The least memory per GPU on which this exact launch fits (bisection over ``predict``)."""
    def ok(avail: float) -> bool:
        pred = predict(shape, launch, hw.with_available(avail), sem, flash_attn)
        return pred.fits and (pred.session_ok or not need_session)

    lo, hi = 0.0, 4 * 1024 * 1024.0
    if not ok(hi):
        return None
    for _ in range(40):
        mid = (lo + hi) / 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi
