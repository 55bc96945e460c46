"""`lmdoctor check [--vram/--gpu/--gpu-slice] -- PLANNED COMMAND` as a child process, on the seed scenarios.

The seeds are the InternLM camp3 tutorials (shared/seeds): internlm2_5-7b-chat on a 10% A100 (8 GiB),
InternVL2-26B in 16 bits (~75 GB on an 80 GB A100; far too big for a 30% slice), its AWQ + KV int4 +
ratio 0.1 launch on 24 GiB (starts at ~23.8 GB, an image runs out of memory), and the L1 demo's
InternVL2-2B / XComposer2-VL-1.8B on 8 GiB (ratio 0.8 fails on the first image, 0.1 works). GPU facts
come from the real H100 snapshots so the results do not depend on this machine.
"""
from __future__ import annotations

import json

import pytest

from conftest import REPO, lmdoctor
from fit_models import INTERNLM2_18B, internlm2_tensors, make_model

H100 = str(REPO / "fixtures" / "facts" / "h100.json")
BALLAST = str(REPO / "fixtures" / "facts" / "h100-ballast-8gib-free.json")
CPU = str(REPO / "fixtures" / "facts" / "cpu-no-gpu.json")
GIB = 1024


def check(*args, facts=H100):
    run = lmdoctor("check", "--json", "--facts", facts, *args)
    assert "Traceback" not in run.err, run.err
    assert run.code in (0, 1, 3, 4), (run.code, run.err)
    doc = run.json()
    return run, doc, doc.get("fit")


def rules_of(doc):
    return {f["rule"]: f for f in doc["findings"]}


def test_7b_chat_on_an_8gib_slice_does_not_fit_at_weight_load_quantize_first():
    run, doc, fit = check("--vram", "8GiB", "--lmdeploy-version", "0.5.3", "--",
                          "lmdeploy", "chat", "/root/models/internlm2_5-7b-chat")
    assert fit["verdict"] == "does_not_fit" and fit["failed_stage"] == "weights"
    assert fit["breakdown"]["weights_mib"] == pytest.approx(14.41 * GIB, abs=10)
    lite, serve = fit["suggested_command"].splitlines()
    assert lite.startswith("lmdeploy lite auto_awq /root/models/internlm2_5-7b-chat --work-dir "
                           "/root/models/internlm2_5-7b-chat-w4a16-4bit")
    assert "--search-scale" not in lite and "ptb" not in lite
    assert serve.startswith("lmdeploy chat /root/models/internlm2_5-7b-chat-w4a16-4bit")
    q = fit["quantize"]
    assert q["needs"]["gpu"]["ok"] is True and q["needs"]["host_ram"]["ok"] is None   # planning: host not checked
    assert q["serve_predicted_peak_mib"] <= 8 * GIB
    finding = rules_of(doc)["MEM001"]
    assert finding["category"] == "oom_weight_load" and run.code == 1
    assert any("lmdeploy lite auto_awq" in (f.get("command") or "") for f in finding["fixes"])


def test_internvl2_26b_fp16_on_an_80gb_a100_takes_about_75_gb():
    _, doc, fit = check("--gpu", "A100-80G", "--lmdeploy-version", "0.5.3", "--",
                        "lmdeploy", "serve", "api_server", "/root/models/InternVL2-26B")
    assert fit["verdict"] == "fits"
    assert 74 * GIB <= fit["predicted_ready_mib"] <= 76 * GIB
    assert fit["predicted_peak_mib"] <= fit["available_mib"] == 80 * GIB
    b = fit["breakdown"]
    assert b["vision_mib"] == pytest.approx(10.53 * GIB, abs=20) and b["kv_cache_mib"] > 25 * GIB
    assert not {"MEM001", "MEM003", "MEM004"} & set(rules_of(doc))


def test_internvl2_26b_fp16_on_a_24gib_slice_does_not_fit():
    run, doc, fit = check("--gpu", "A100-80G", "--gpu-slice", "0.3", "--lmdeploy-version", "0.5.3", "--",
                          "lmdeploy", "serve", "api_server", "/root/models/InternVL2-26B")
    assert fit["verdict"] == "does_not_fit" and fit["failed_stage"] == "weights"
    assert fit["available_mib"] == round(0.3 * 81920)
    assert fit["suggested_command"].startswith("lmdeploy lite auto_awq /root/models/InternVL2-26B")
    assert fit["min_vram_mib"] > 48 * GIB
    assert "MEM001" in rules_of(doc) and run.code == 1


def test_awq_kv_int4_ratio_0_1_on_24gib_starts_but_an_image_runs_out_of_memory():
    run, doc, fit = check("--vram", "24GiB", "--lmdeploy-version", "0.5.3", "--",
                          "lmdeploy", "serve", "api_server", "/root/models/InternVL2-26B-w4a16-4bit",
                          "--model-format", "awq", "--quant-policy", "4", "--cache-max-entry-count", "0.1",
                          "--server-name", "0.0.0.0", "--server-port", "23333", "--tp", "1")
    stages = {s["stage"]: s["ok"] for s in fit["stages"]}
    assert stages["weights"] and stages["kv_cache"] and stages["runtime"] and not stages["image"]
    assert 23 * GIB <= fit["predicted_ready_mib"] <= 24 * GIB       # the tutorial saw ~23.8 GB after start-up
    assert fit["model"]["weight_format"] == "awq" and fit["engine"]["settings"]["quant_policy"] == 4
    assert fit["reason"].startswith("starts and serves text, but")
    assert fit["verdict"] == "does_not_fit"                          # no setting leaves room for an image here
    finding = rules_of(doc)["MEM004"]
    assert finding["category"] == "oom_vlm_activation"
    assert any("use one with at least" in f["summary"] for f in finding["fixes"])


@pytest.mark.parametrize("model", ["/share/new_models/OpenGVLab/InternVL2-2B",
                                   "/share/new_models/Shanghai_AI_Laboratory/internlm-xcomposer2-vl-1_8b"])
def test_l1_demo_vlms_on_8gib_fail_at_0_8_and_work_at_0_1(model):
    _, doc, fit = check("--vram", "8GiB", "--lmdeploy-version", "0.5.1", "--", "lmdeploy", "serve", "gradio", model)
    assert fit["verdict"] == "fits_with_changes"
    assert fit["failed_stage"] in ("image", "runtime")               # XComposer2's runtime buffers alone overflow
    assert {"MEM003", "MEM004"} & set(rules_of(doc))
    suggested = fit["suggestion"]
    assert suggested["kind"] == "ratio" and suggested["holds_image"]
    assert 0.1 <= float(suggested["changes"]["--cache-max-entry-count"]) < 0.8
    assert fit["suggested_command"].startswith(f"lmdeploy serve gradio {model} --cache-max-entry-count 0.")
    assert "TurbomindEngineConfig(cache_max_entry_count=" in fit["suggested_pipeline"]
    _, doc01, fit01 = check("--vram", "8GiB", "--lmdeploy-version", "0.5.1", "--", "lmdeploy", "serve", "gradio",
                            model, "--cache-max-entry-count", "0.1")
    assert fit01["verdict"] == "fits" and fit01["failed_stage"] is None
    assert not {"MEM003", "MEM004", "MEM005"} & set(rules_of(doc01))


def test_json_fit_object_contract():
    _, doc, fit = check("--vram", "8GiB", "--", "lmdeploy", "serve", "api_server", "internlm/internlm2-chat-1_8b")
    for key in ("verdict", "predicted_peak_mib", "available_mib", "breakdown", "kv_capacity_tokens", "suggested_command"):
        assert key in fit
    assert set(fit["breakdown"]) == {"weights_mib", "vision_mib", "kv_cache_mib", "runtime_mib", "overhead_mib",
                                     "image_activation_mib"}
    assert fit["model"]["source"].startswith("built-in catalogue: internlm/internlm2-chat-1_8b")
    assert fit["engine"]["lmdeploy_version"] == "0.18.0" and "assumed" in fit["engine"]["version_source"]
    _, plain, _ = check()
    assert "fit" not in plain


def test_other_processes_holding_the_gpu_are_told_apart():
    run, doc, fit = check("--lmdeploy-version", "0.5.3", "--", "lmdeploy", "serve", "api_server",
                          "/root/models/internlm2_5-7b-chat", facts=BALLAST)
    assert fit["hardware"]["fits_when_idle"] is True and fit["hardware"]["other_processes_mib"] == 72880
    assert fit["category"] == "oom_other_process"
    found = rules_of(doc)
    assert found["MEM002"]["category"] == "oom_other_process" and "MEM001" not in found
    assert any("ballast.py" in e["text"] for e in found["MEM002"]["evidence"])


def test_a_real_local_model_folder_is_read_not_looked_up(tmp_path):
    folder = tmp_path / "my-finetune"
    make_model(str(folder), INTERNLM2_18B, internlm2_tensors(INTERNLM2_18B))
    _, doc, fit = check("--vram", "24GiB", "--", "lmdeploy", "serve", "api_server", str(folder))
    assert fit["model"]["source"] == f"config.json of {folder} + safetensors headers (2 files)"
    assert fit["model"]["params"]["llm_linear"] + fit["model"]["params"]["llm_other"] == 1889110016
    assert fit["verdict"] == "fits"


@pytest.mark.parametrize("content,reason", [
    (None, "config.json not found"),
    ("{broken", "is not valid JSON"),
    (json.dumps({"architectures": ["MysteryForCausalLM"]}), "not in lmdoctor's memory model"),
])
def test_broken_or_unknown_model_folders_give_unknown_with_the_reason(tmp_path, content, reason):
    folder = tmp_path / "m"
    folder.mkdir()
    if content is not None:
        (folder / "config.json").write_text(content)
    run, doc, fit = check("--vram", "24GiB", "--", "lmdeploy", "serve", "api_server", str(folder))
    assert fit["verdict"] == "unknown" and reason in fit["reason"]
    unchecked = {u["rule"]: u for u in doc["unchecked"]}
    assert "MEM001" in unchecked and reason in unchecked["MEM001"]["reasons"][0]
    human = lmdoctor("check", "--facts", H100, "--vram", "24GiB", "--", "lmdeploy", "serve", "api_server", str(folder))
    assert "couldn't predict" in human.out and reason in human.out and "Traceback" not in human.err


def test_no_gpu_here_and_no_plan_is_unknown():
    _, doc, fit = check("--", "lmdeploy", "serve", "api_server", "internlm/internlm2_5-7b-chat", facts=CPU)
    assert fit["verdict"] == "unknown" and "--vram" in fit["reason"]


def test_lite_auto_awq_as_the_planned_command():
    run, doc, fit = check("--vram", "8GiB", "--lmdeploy-version", "0.5.3", "--", "lmdeploy", "lite", "auto_awq",
                          "/root/models/internlm2_5-7b-chat", "--work-dir", "/root/models/internlm2_5-7b-chat-4bit")
    assert fit["job"] == "quantize" and fit["verdict"] == "fits"
    assert fit["quantize"]["needs"]["gpu"]["need_mib"] < 8 * GIB
    _, _, big = check("--vram", "8GiB", "--lmdeploy-version", "0.5.3", "--", "lmdeploy", "lite", "auto_awq",
                      "/root/models/InternVL2-26B")
    # at the defaults the calibration of a 20B LLM needs more than 8 GiB; fewer calibration samples fit
    assert big["quantize"]["needs"]["gpu"]["ok"] is False
    assert big["verdict"] == "fits_with_changes" and "--calib-samples" in big["suggested_command"]


@pytest.mark.parametrize("args,message", [
    (["--vram", "lots"], "expected a size"), (["--gpu", "Z9000"], "unknown GPU"), (["--gpu-slice", "2"], "(0, 1]"),
    (["--backend", "tensorrt"], "Invalid value"),
])
def test_bad_planning_options_are_usage_errors(args, message):
    run = lmdoctor("check", "--facts", H100, *args, "--", "lmdeploy", "serve", "api_server", "x")
    assert run.code == 2 and message in run.err and "Traceback" not in run.err


def test_human_output_shows_the_breakdown_table():
    run = lmdoctor("check", "--facts", H100, "--vram", "8GiB", "--lmdeploy-version", "0.5.1", "--",
                   "lmdeploy", "serve", "gradio", "/share/new_models/OpenGVLab/InternVL2-2B")
    area = run.out[run.out.index("GPU memory fit"):]
    for label in ("weights", "vision tower", "KV cache", "runtime buffers", "CUDA context", "one image", "peak"):
        assert f"      {label}" in area
    assert "fits with changes: peak ~8.98 GiB, 8.00 GiB available (planned: --vram 8 GiB)" in area
    assert "$ lmdeploy serve gradio /share/new_models/OpenGVLab/InternVL2-2B --cache-max-entry-count 0." in area


def test_backend_option_plans_for_the_pytorch_engine():
    _, _, fit = check("--vram", "24GiB", "--backend", "pytorch", "--lmdeploy-version", "0.18.0", "--",
                      "lmdeploy", "serve", "api_server", "internlm/internlm2_5-7b-chat")
    assert fit["engine"]["backend"] == "pytorch" and fit["breakdown"]["overhead_mib"] == 790
    assert fit["engine"]["settings"]["max_batch_size"] == 128        # no GPU name: lmdeploy's default
