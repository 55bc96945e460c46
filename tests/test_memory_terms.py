"""One test per memory term, against the numbers of the reference notes (lmdeploy.md §2, §6.2).

Expected values are the notes' tables (computed from the configs and cross-checked with model-card
parameter totals); tolerances are the notes' rounding.
"""
from __future__ import annotations

import pytest

from doctor.memory import GIB, MIB, catalogue, terms


def shape(name):
    found = catalogue.lookup(name)
    assert found is not None, name
    return found[0]


S18, S7, S20 = shape("internlm2-chat-1_8b"), shape("internlm2_5-7b-chat"), shape("internlm2-chat-20b")
VL2B, VL26B, XC = shape("InternVL2-2B"), shape("InternVL2-26B"), shape("internlm-xcomposer2-vl-1_8b")
AWQ = 0.53125


@pytest.mark.parametrize("s,fp16_kib,int8_kib,int4_kib", [(S18, 96, 49.5, 25.5), (S7, 128, 66, 34), (S20, 192, 99, 51)])
def test_kv_bytes_per_token_with_quant_policy_overhead(s, fp16_kib, int8_kib, int4_kib):
    assert terms.kv_bytes_per_token(s.llm, 1, 0) == fp16_kib * 1024
    assert terms.kv_bytes_per_token(s.llm, 1, 8) == int8_kib * 1024     # + fp16 scale and zero per head per token
    assert terms.kv_bytes_per_token(s.llm, 1, 4) == int4_kib * 1024


def test_kv_heads_split_by_tp_and_fp8_has_no_per_token_scale():
    assert terms.kv_bytes_per_token(S7.llm, 2, 0) == 64 * 1024
    assert terms.kv_bytes_per_token(S7.llm, 16, 0) == 16 * 1024        # 8 KV heads: at least one per rank
    assert terms.kv_bytes_per_token(S7.llm, 1, 16) == 64 * 1024


def test_block_bytes_and_capacity_count_whole_blocks():
    block = terms.block_bytes(S18.llm, 1, 0, 64)
    assert block == 6 * MIB
    assert terms.capacity_tokens(6 * MIB * 10 + 5 * MIB, block, 64) == 640
    assert terms.capacity_tokens(-1.0, block, 64) == 0


@pytest.mark.parametrize("s,fp16_gib,awq_gib", [(S18, 3.52, 1.45), (S7, 14.41, 4.87), (S20, 36.99, 11.38)])
def test_llm_weights_fp16_and_awq_group_overhead(s, fp16_gib, awq_gib):
    fp16 = terms.llm_weight_bytes(s.counts, s.llm, "hf", 1, False, AWQ) / GIB
    awq = terms.llm_weight_bytes(s.counts, s.llm, "awq", 1, False, AWQ) / GIB
    assert fp16 == pytest.approx(fp16_gib, abs=0.01)
    assert awq == pytest.approx(awq_gib, abs=0.01)
    assert terms.llm_weight_bytes(s.counts, s.llm, "gptq", 1, False, AWQ) == pytest.approx(awq * GIB)


def test_embeddings_split_by_tp_only_where_the_version_does():
    split = terms.llm_weight_bytes(S7.counts, S7.llm, "hf", 2, True, AWQ)
    replicated = terms.llm_weight_bytes(S7.counts, S7.llm, "hf", 2, False, AWQ)
    vocab = (S7.llm.embedding_params + S7.llm.lm_head_params) * 2
    assert replicated - split == pytest.approx(vocab / 2)
    assert split == pytest.approx(S7.counts.linear + (S7.counts.other - S7.llm.embedding_params - S7.llm.lm_head_params) * 2
                                  + vocab / 2)


def test_plora_of_xcomposer2_is_fp16():
    assert XC.counts.plora * 2 / GIB == pytest.approx(0.47, abs=0.01)
    fp16 = terms.llm_weight_bytes(XC.counts, XC.llm, "hf", 1, False, AWQ) / GIB
    assert fp16 == pytest.approx(3.52 + 0.47, abs=0.02)


@pytest.mark.parametrize("s,gib", [(VL2B, 0.59), (VL26B, 10.53), (XC, 0.58)])
def test_vision_tower_fp16(s, gib):
    assert terms.vision_weight_bytes(s.counts.vision) / GIB == pytest.approx(gib, abs=0.02)
    assert terms.vision_weight_bytes(s.counts.vision, 2) == pytest.approx(terms.vision_weight_bytes(s.counts.vision) / 2)


@pytest.mark.parametrize("s,s8k,s32k_old,s32k_new", [(S18, 0.64, 1.00, 0.81), (S7, 0.99, 1.53, 1.15), (S20, 1.21, 1.93, 1.37)])
def test_turbomind_runtime_buffers_by_version(s, s8k, s32k_old, s32k_new):
    def r(session, ctx):
        return terms.turbomind_runtime_bytes(s.llm, 1, 128, session, 8192, ctx, 64) / GIB
    assert r(8192, "prefill_plus_batch") == pytest.approx(s8k, abs=0.02)
    assert r(32768, "session_len") == pytest.approx(s32k_old, abs=0.02)        # 0.5.1-0.5.2
    assert r(32768, "prefill_plus_batch") == pytest.approx(s32k_new, abs=0.02)  # 0.5.3+


def test_turbomind_runtime_shrinks_with_batch_prefill_and_tp():
    base = terms.turbomind_runtime_bytes(S7.llm, 1, 128, 32768, 8192, "prefill_plus_batch", 64)
    assert terms.turbomind_runtime_bytes(S7.llm, 1, 16, 32768, 8192, "prefill_plus_batch", 64) < base
    assert terms.turbomind_runtime_bytes(S7.llm, 1, 128, 32768, 2048, "prefill_plus_batch", 64) < base
    assert terms.turbomind_runtime_bytes(S7.llm, 2, 128, 32768, 8192, "prefill_plus_batch", 64) < base


def test_pytorch_reserve_formulas():
    v = 92544
    assert terms.pytorch_reserve_bytes("prefill_x_vocab_x7", 4096, 128, v) == 4096 * v * 7
    assert terms.pytorch_reserve_bytes("prefill_plus_2_batches_x_vocab_x2", 8192, 1024, v) == (8192 + 2048) * v * 2


@pytest.mark.parametrize("batches,sizes", [
    (1024, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024]),
    (384, [1, 2, 4, 8, 16, 32, 64, 128, 256, 384]),
    (128, [1, 2, 4, 8, 16, 32, 64, 128]),
    (100, [1, 2, 4, 8, 16, 32, 64, 100]),
])
def test_cuda_graph_capture_sizes(batches, sizes):
    assert terms.capture_batch_sizes(batches) == sizes


def test_pytorch_graph_memory_logits_plus_block_tables():
    assert terms.pytorch_graph_bytes(1024, 92544, 0) == 1024 * 92544 * 2
    assert terms.pytorch_graph_bytes(1024, 92544, 100) - terms.pytorch_graph_bytes(1024, 92544, 0) == 2815 * 4 * 100


@pytest.mark.parametrize("s,eager,flash", [(VL2B, 1.1, 0.2), (VL26B, 2.0, 0.7), (XC, 0.1, 0.03)])
def test_image_activations_eager_and_flash(s, eager, flash):
    assert terms.image_activation_bytes(s.vision, 1, False) / GIB == pytest.approx(eager, abs=0.12)
    assert terms.image_activation_bytes(s.vision, 1, True) / GIB == pytest.approx(flash, abs=0.07)  # notes round to 0.1
    assert terms.image_activation_bytes(s.vision, 2, False) == pytest.approx(2 * terms.image_activation_bytes(s.vision))


def test_image_tokens_per_model():
    assert VL2B.vision.image_tokens == 13 * 256
    assert XC.vision.image_tokens == 1225


@pytest.mark.parametrize("s,low,high", [(S7, 5, 8), (S20, 8, 12)])
def test_auto_awq_gpu_peak_at_default_calibration(s, low, high):
    assert low <= terms.auto_awq_gpu_bytes(s.llm, 128, 2048, 1, 512) / GIB <= high


def test_auto_awq_calibration_activations_scale_with_samples_and_seqlen():
    full = terms.auto_awq_gpu_bytes(S7.llm, 128, 2048, 1, 512)
    assert terms.auto_awq_gpu_bytes(S7.llm, 64, 2048, 1, 512) == pytest.approx(full - 128 * 2048 * 4096 * 2)


def test_auto_awq_host_ram_is_the_fp16_model_plus_overhead_and_disk_is_the_awq_checkpoint():
    assert terms.auto_awq_host_bytes(S7.counts, 2048) / GIB == pytest.approx(14.41 + 2, abs=0.02)
    assert terms.auto_awq_host_bytes(VL26B.counts, 0) / GIB == pytest.approx(47.5, abs=0.2)
    assert terms.awq_checkpoint_bytes(S7.counts, AWQ) / GIB == pytest.approx(4.87, abs=0.01)
