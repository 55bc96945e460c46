"""Model shapes: the built-in catalogue against model-card totals, name matching, and local folders."""
from __future__ import annotations

import json
import os

import pytest

from doctor.memory import catalogue
from doctor.memory.shapes import ShapeError, from_dir

from fit_models import INTERNLM2_18B, internlm2_tensors, make_model, write_safetensors

# Parameter totals the model cards state (billions), and how close the shape-derived count must be.
CARD_TOTALS = [
    ("internlm2-chat-1_8b", 1.89, 0.01), ("internlm2_5-7b-chat", 7.74, 0.01), ("internlm2-chat-20b", 19.86, 0.01),
    ("InternVL2-1B", 0.94, 0.03), ("InternVL2-2B", 2.21, 0.02), ("InternVL2-4B", 4.15, 0.02),
    ("InternVL2-8B", 8.08, 0.01), ("InternVL2-26B", 25.51, 0.01), ("InternVL2-40B", 40.07, 0.02),
    ("Qwen2-0.5B", 0.49, 0.02), ("Qwen2-1.5B", 1.54, 0.01), ("Qwen2-7B", 7.62, 0.01), ("Qwen2-72B", 72.71, 0.01),
    ("Qwen2.5-0.5B", 0.49, 0.02), ("Qwen2.5-1.5B", 1.54, 0.01), ("Qwen2.5-3B", 3.09, 0.01),
    ("Qwen2.5-7B", 7.62, 0.01), ("Qwen2.5-14B", 14.77, 0.01), ("Qwen2.5-32B", 32.76, 0.01),
    ("Qwen2.5-72B", 72.71, 0.01), ("Llama-3-8B", 8.03, 0.01), ("Llama-3-70B", 70.55, 0.01),
    ("Llama-3.1-8B", 8.03, 0.01), ("Llama-3.1-70B", 70.55, 0.01),
]


@pytest.mark.parametrize("name,billions,rel", CARD_TOTALS)
def test_catalogue_parameter_totals_match_model_cards(name, billions, rel):
    shape, _ = catalogue.lookup(name)
    assert shape.counts.total / 1e9 == pytest.approx(billions, rel=rel)


def test_xcomposer2_is_the_1_8b_llm_plus_plora_and_a_clip_tower():
    shape, _ = catalogue.lookup("internlm-xcomposer2-vl-1_8b")
    assert (shape.counts.linear + shape.counts.other) / 1e9 == pytest.approx(1.89, rel=0.01)
    assert shape.counts.plora / 1e9 == pytest.approx(0.25, rel=0.02)
    assert shape.family == "xcomposer2" and shape.engines == {"turbomind": "<0.14.0", "pytorch": "never"}


def test_catalogue_has_every_model_the_issue_names():
    wanted = ["internlm2-chat-1_8b", "internlm2_5-1_8b-chat", "internlm2-chat-7b", "internlm2_5-7b-chat",
              "internlm2-chat-20b", "internlm2_5-20b-chat", "internlm-xcomposer2-vl-1_8b"] + \
             [f"InternVL2-{s}" for s in ("1B", "2B", "4B", "8B", "26B", "40B")] + \
             [f"Qwen2-{s}" for s in ("0.5B", "1.5B", "7B", "72B")] + \
             [f"Qwen2.5-{s}" for s in ("0.5B", "1.5B", "3B", "7B", "14B", "32B", "72B")] + \
             ["Llama-3-8B", "Llama-3-70B", "Llama-3.1-8B", "Llama-3.1-70B"]
    missing = [w for w in wanted if catalogue.lookup(w) is None]
    assert not missing


@pytest.mark.parametrize("model,name,fmt", [
    ("/root/models/InternVL2-26B-w4a16-4bit", "InternVL2-26B", "awq"),
    ("/root/models/InternVL2-26B-w4a16-4bit/", "InternVL2-26B", "awq"),
    ("OpenGVLab/InternVL2-26B-AWQ", "InternVL2-26B", "awq"),
    ("internlm/internlm2_5-7b-chat", "internlm2_5-7b-chat", None),
    ("/root/models/internlm2_5-7b-chat-4bit", "internlm2_5-7b-chat", "awq"),
    ("/root/share/new_models/Shanghai_AI_Laboratory/internlm2-chat-1_8b", "internlm2-chat-1_8b", None),
    ("/share/new_models/Shanghai_AI_Laboratory/internlm-xcomposer2-vl-1_8b", "internlm-xcomposer2-vl-1_8b", None),
    ("/share/new_models/OpenGVLab/InternVL2-2B", "InternVL2-2B", None),
    ("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", "Qwen2.5-7B", "gptq"),
    ("meta-llama/Meta-Llama-3.1-8B-Instruct", "Llama-3.1-8B", None),
    ("meta-llama/Meta-Llama-3-8B-Instruct", "Llama-3-8B", None),
    ("Qwen/Qwen2-1.5B-Instruct", "Qwen2-1.5B", None),
])
def test_catalogue_matches_hub_ids_and_folder_names(model, name, fmt):
    shape, implied = catalogue.lookup(model)
    assert shape.name == name and implied == fmt
    assert shape.source.startswith("built-in catalogue: ")


@pytest.mark.parametrize("model", ["someone/Mystery-13B", "/root/models/internvl3-9b", "Qwen/Qwen2.5-7.5B", ""])
def test_catalogue_does_not_guess(model):
    assert catalogue.lookup(model) is None


def test_local_folder_counts_come_from_safetensors_headers(tmp_path):
    folder = str(tmp_path / "internlm2-chat-1_8b")
    declared = make_model(folder, INTERNLM2_18B, internlm2_tensors(INTERNLM2_18B))
    shape = from_dir(folder)
    assert shape.counts.linear + shape.counts.other == declared == 1889110016
    assert shape.weight_format == "hf" and shape.family == "llm"
    assert "safetensors headers (2 files)" in shape.source and shape.source_kind == "config"
    assert shape.llm.max_position == 32768 and shape.llm.kv_heads == 8


def test_local_awq_folder_is_detected_and_counted_unpacked(tmp_path):
    cfg = dict(INTERNLM2_18B, quantization_config={"quant_method": "awq", "bits": 4, "group_size": 128,
                                                   "version": "gemm", "zero_point": True})
    folder = str(tmp_path / "m-awq")
    make_model(folder, cfg, internlm2_tensors(cfg, awq=True))
    shape = from_dir(folder)
    assert shape.weight_format == "awq"
    assert shape.counts.linear == 24 * (2048 * 4096 + 2048 * 2048 + 3 * 2048 * 8192)


def test_packed_int4_tensors_mean_awq_even_without_quantization_config(tmp_path):
    folder = str(tmp_path / "renamed")
    make_model(folder, INTERNLM2_18B, internlm2_tensors(INTERNLM2_18B, awq=True), shards=1)
    assert from_dir(folder).weight_format == "awq"


def test_internvl_folder_reads_llm_config_and_vision_tensors(tmp_path):
    llm = dict(INTERNLM2_18B, vocab_size=92553)
    cfg = {"architectures": ["InternVLChatModel"], "llm_config": llm, "downsample_ratio": 0.5, "force_image_size": 448,
           "max_dynamic_patch": 12, "dynamic_image_size": True,
           "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                             "intermediate_size": 4096, "patch_size": 14, "image_size": 448}}
    tensors = internlm2_tensors(llm, prefix="language_model.") + [
        ("vision_model.encoder.layers.0.mlp.fc1.weight", "BF16", [4096, 1024]),
        ("mlp1.1.weight", "BF16", [2048, 4096])]
    folder = str(tmp_path / "InternVL2-2B")
    make_model(folder, cfg, tensors)
    shape = from_dir(folder)
    assert shape.family == "internvl" and shape.llm.vocab == 92553
    assert shape.counts.vision == 4096 * 1024 + 2048 * 4096
    assert shape.vision.image_tokens == 13 * 256 and shape.vision.patch_tokens == 1025


def test_config_only_folder_computes_params_from_the_shape(tmp_path):
    folder = tmp_path / "cfg-only"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(INTERNLM2_18B))
    shape = from_dir(str(folder))
    assert shape.counts.linear + shape.counts.other == 1889110016
    assert shape.source == f"config.json of {folder}"


@pytest.mark.parametrize("content,reason", [
    (None, "config.json not found"),
    ("{not json", "is not valid JSON"),
    ('["a list"]', "does not hold a JSON object"),
    (json.dumps({"architectures": ["FancyNewForCausalLM"], "num_hidden_layers": 2}), "not in lmdoctor's memory model"),
    (json.dumps(dict(INTERNLM2_18B, architectures=["Qwen2MoeForCausalLM"])), "mixture-of-experts"),
    (json.dumps({k: v for k, v in INTERNLM2_18B.items() if k != "num_hidden_layers"}), "lacks num_hidden_layers"),
    (json.dumps(dict(INTERNLM2_18B, hidden_size="wide")), "non-numeric"),
    (json.dumps(dict(INTERNLM2_18B, quantization_config={"quant_method": "fp8"})), "quantization fp8 is not modelled"),
    (json.dumps({"architectures": ["InternVLChatModel"], "llm_config": ["oops"]}), "unexpected content"),
])
def test_unreadable_shapes_give_a_reason(tmp_path, content, reason):
    folder = tmp_path / "m"
    folder.mkdir()
    if content is not None:
        (folder / "config.json").write_text(content)
    with pytest.raises(ShapeError) as err:
        from_dir(str(folder))
    assert reason in str(err.value)


def test_broken_safetensors_header_is_a_shape_error(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(INTERNLM2_18B))
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{bad")
    with pytest.raises(ShapeError, match="safetensors"):
        from_dir(str(folder))


def test_safetensors_writer_is_a_real_format(tmp_path):
    path = str(tmp_path / "x.safetensors")
    assert write_safetensors(path, [("a.weight", "BF16", [4, 8])]) == 32
    assert os.path.getsize(path) > 64


def test_model_probe_reports_the_shape_of_the_planned_folder(tmp_path):
    from doctor.command import parse
    from doctor.facts import ProbeContext
    from doctor.facts.model_dir import model_facts
    folder = tmp_path / "internlm2-chat-1_8b"
    make_model(str(folder), INTERNLM2_18B, internlm2_tensors(INTERNLM2_18B))
    facts = model_facts(ProbeContext(planned=parse(["lmdeploy", "serve", "api_server", str(folder)]))).facts
    assert facts["model.layers"] == 24 and facts["model.kv_heads"] == 8 and facts["model.params"] == 1889110016
    assert facts["model.weight_format"] == "hf" and facts["model.max_position"] == 32768
    assert "safetensors headers" in facts["model.shape_source"] and "model.shape_error" not in facts
    (folder / "config.json").write_text(json.dumps({"architectures": ["MysteryLM"]}))
    facts = model_facts(ProbeContext(planned=parse(["lmdeploy", "serve", "api_server", str(folder)]))).facts
    assert "not in lmdoctor's memory model" in facts["model.shape_error"]
