"""Version semantics, the stage-by-stage prediction, the search for the cheapest change, quantize-first."""
from __future__ import annotations

import os

import pytest

from doctor import command as command_mod
from doctor.command import parse_shell
from doctor.facts import FactSet
from doctor.memory import catalogue, hardware, launch as launch_mod, pipeline, quantize, semantics, terms
from doctor.memory.hardware import Hardware, HardwareError
from doctor.memory.predict import min_available_mib, predict
from doctor.memory.search import margin_mib, search
from doctor.programs import ProgramTable
from doctor.selftest import load_snapshot

# A flag table in the format of rules/programs/lmdeploy.yaml, so these tests do not depend on which
# flags the generated table lists: "serve api_server" has every memory flag, "chat" only the ratio,
# "lite auto_awq" gained --calib-samples in a made-up 0.6.0 and lost --calib-dataset ptb in 0.12.0.
TABLE = {
    "program": "lmdeploy",
    "subcommands": {
        "serve api_server": {"positionals": ["model_path"], "flags": {
            "--backend": [{"nargs": 1, "choices": ["pytorch", "turbomind"], "default": "turbomind"}],
            "--tp": [{"nargs": 1, "type": "int", "default": 1}],
            "--cache-max-entry-count": [{"nargs": 1, "type": "float", "default": 0.8}],
            "--quant-policy": [{"nargs": 1, "type": "int", "default": 0}],
            "--model-format": [{"nargs": 1}],
            "--session-len": [{"nargs": 1, "type": "int"}],
            "--max-batch-size": [{"nargs": 1, "type": "int"}],
            "--max-prefill-token-num": [{"since": "0.6.0", "nargs": 1, "type": "int", "default": 8192}],
            "--server-port": [{"nargs": 1, "type": "int", "default": 23333}]}},
        "chat": {"positionals": ["model_path"], "flags": {
            "--cache-max-entry-count": [{"nargs": 1, "type": "float", "default": 0.8}]}},
        "lite auto_awq": {"positionals": ["model"], "flags": {
            "--work-dir": [{"nargs": 1, "default": "./work_dir"}],
            "--calib-samples": [{"since": "0.6.0", "nargs": 1, "type": "int", "default": 128}],
            "--calib-seqlen": [{"since": "0.6.0", "nargs": 1, "type": "int", "default": 2048}],
            "--calib-dataset": [{"until": "0.12.0", "nargs": 1, "default": "ptb"},
                                {"since": "0.12.0", "nargs": 1, "default": "wikitext2",
                                 "choices": ["wikitext2", "c4", "pileval"]}],
            "--search-scale": [{"until": "0.7.0", "nargs": 1, "type": "bool", "default": False},
                               {"since": "0.7.0", "nargs": 0, "default": False}]}},
    },
}


@pytest.fixture
def table(monkeypatch):
    """Parse commands with TABLE instead of the generated rules/programs/lmdeploy.yaml."""
    t = ProgramTable(TABLE, "tests/test_memory_model.py")
    monkeypatch.setattr(command_mod, "load_program", lambda program: t if program == "lmdeploy" else None)
    return t


def planned(gib: float, name: str = None) -> Hardware:
    return Hardware(source="test", name=name, total_mib=gib * 1024, available_mib=gib * 1024, count=1)


def setup(line: str, version: str, gib: float, name: str = None):
    cmd = parse_shell(line, version=version)
    shape, fmt = catalogue.lookup(cmd.model)
    if fmt:
        shape = shape.with_format(fmt)
    backend, _ = launch_mod.choose_backend(cmd, shape, version, None)
    hw = planned(gib, name)
    return cmd, shape, launch_mod.from_command(cmd, shape, version, backend, hw.name), hw


def sem_for(version):
    return lambda backend: semantics.for_version(version, backend)


# -- semantics --------------------------------------------------------------------------------------------
def test_ratio_semantics_by_version():
    old = semantics.for_version("0.2.1", "turbomind")
    assert (old.ratio_of, old.default_ratio, old.ratio_at_least_one) == ("total", 0.5, "blocks")
    assert semantics.for_version("0.4.2", "turbomind").ratio_at_least_one == "blocks"
    new = semantics.for_version("0.5.1", "turbomind")
    assert (new.ratio_of, new.default_ratio, new.ratio_at_least_one) == ("free", 0.8, "rejected")


@pytest.mark.parametrize("version,device,expected", [
    ("0.5.3", "NVIDIA A100-SXM4-80GB", 128), ("0.7.3", "NVIDIA A100-SXM4-80GB", 256),
    ("0.7.3", "NVIDIA H100 80GB HBM3", 512), ("0.9.2", "NVIDIA H200", 128), ("0.18.0", "NVIDIA H200", 1024),
    ("0.18.0", "NVIDIA A100-SXM4-40GB", 384), ("0.18.0", None, 128),
])
def test_default_max_batch_size_by_version_and_gpu(version, device, expected):
    assert semantics.for_version(version, "turbomind").max_batch_size(device) == expected


def test_chat_runs_one_sequence_in_old_turbomind_only():
    assert semantics.for_version("0.5.3", "turbomind").max_batch_size("x", "chat") == 1
    assert semantics.for_version("0.12.0", "turbomind").max_batch_size("x", "chat") == 128


def test_version_boundaries_from_the_sources():
    assert not semantics.for_version("0.5.3", "turbomind").embeddings_split
    assert semantics.for_version("0.6.0", "turbomind").embeddings_split
    assert not semantics.for_version("0.18.0", "pytorch").embeddings_split
    assert semantics.for_version("0.9.1", "pytorch").pt_reserve_formula == "prefill_x_vocab_x7"
    assert semantics.for_version("0.9.2", "pytorch").pt_reserve_formula == "prefill_plus_2_batches_x_vocab_x2"
    assert not semantics.for_version("0.12.3", "pytorch").pt_fail_inside_halving
    assert semantics.for_version("0.13.0", "pytorch").pt_fail_inside_halving
    assert not semantics.for_version("0.6.1", "pytorch").kv_quant and semantics.for_version("0.6.2", "pytorch").kv_quant
    assert semantics.for_version("0.5.1", "pytorch").default_prefill == 4096
    assert semantics.for_version("0.5.2", "turbomind").tm_ctx_tokens == "session_len"
    assert semantics.for_version("0.5.3", "turbomind").tm_ctx_tokens == "prefill_plus_batch"


def test_turbomind_head_dims_pick_the_engine():
    vl4b, _ = catalogue.lookup("InternVL2-4B")
    backend, notes = launch_mod.choose_backend(None, vl4b, "0.5.3", None)
    assert backend == "pytorch" and "falls back to the PyTorch engine" in notes[0]
    vl1b, _ = catalogue.lookup("InternVL2-1B")
    assert launch_mod.choose_backend(None, vl1b, "0.6.2", None)[0] == "pytorch"
    assert launch_mod.choose_backend(None, vl1b, "0.6.3", None)[0] == "turbomind"
    xc, _ = catalogue.lookup("internlm-xcomposer2-vl-1_8b")
    with pytest.raises(launch_mod.LaunchError, match="neither engine"):
        launch_mod.choose_backend(None, xc, "0.15.0", None)


def test_session_len_defaults(table):
    _, _, la, _ = setup("lmdeploy serve api_server /m/internlm2_5-7b-chat", "0.5.3", 80)
    assert la.session_len == 32776
    _, _, la, _ = setup("lmdeploy serve api_server /m/internlm2_5-7b-chat", "0.7.3", 80)
    assert la.session_len == 32768
    _, _, la, _ = setup("lmdeploy serve gradio /m/InternVL2-2B", "0.5.1", 8)
    assert la.session_len == 8192


def test_quant_policy_names_of_0_18():
    assert launch_mod.quant_policy_of("int4") == 4 and launch_mod.quant_policy_of("8") == 8
    with pytest.raises(launch_mod.LaunchError):
        launch_mod.quant_policy_of("lots")



def test_a_value_that_is_not_a_number_is_named_in_the_error():
    with pytest.raises(launch_mod.LaunchError, match=r"--cache-max-entry-count 'abc' is not a number"):
        setup("lmdeploy serve api_server /m/internlm2_5-7b-chat --cache-max-entry-count abc", "0.7.3", 24)
    shape, _ = catalogue.lookup("/m/internlm2_5-7b-chat")
    with pytest.raises(launch_mod.LaunchError, match=r"session_len='long' is not a number"):
        launch_mod.from_settings({"session_len": "long"}, shape, "0.7.3", "turbomind", None)
    la = launch_mod.from_settings({"session_len": None, "cache_max_entry_count": "0.5"}, shape, "0.7.3", "turbomind", None)
    assert la.ratio == 0.5

# -- prediction -------------------------------------------------------------------------------------------
def test_ratio_of_total_in_0_2_1_overflows_where_0_5_fits(table):
    cmd, shape, la, hw = setup("lmdeploy serve api_server /m/internlm2_5-7b-chat --cache-max-entry-count 0.5",
                               "0.2.1", 24)
    old = predict(shape, la, hw, semantics.for_version("0.2.1", "turbomind"))
    assert old.failed.name == "kv_cache" and "total GPU memory" in old.failed.detail
    new = predict(shape, la, hw, semantics.for_version("0.5.3", "turbomind"))
    assert new.stages[1].ok


def test_a_ratio_of_one_or_more_is_a_block_count_before_0_5_and_rejected_after(table):
    cmd, shape, la, hw = setup("lmdeploy serve api_server /m/internlm2-chat-1_8b --cache-max-entry-count 100",
                               "0.4.2", 24)
    p = predict(shape, la, hw, semantics.for_version("0.4.2", "turbomind"))
    assert p.blocks == 100 and p.kv_capacity_tokens == 6400
    p = predict(shape, la, hw, semantics.for_version("0.5.3", "turbomind"))
    assert p.failed.name == "settings" and "rejects" in p.failed.detail


def test_pytorch_engine_halves_the_prefill_when_few_blocks_fit(table):
    cmd, shape, la, _ = setup("lmdeploy serve api_server /m/internlm2-chat-1_8b --backend pytorch", "0.12.0", 8)
    sem = semantics.for_version("0.12.0", "pytorch")
    # free after weights chosen so that the full reserve leaves ~10 blocks and a halved one more than 16
    reserve = terms.pytorch_reserve_bytes(sem.pt_reserve_formula, 8192, la.max_batch_size, shape.llm.vocab) / 2 ** 20
    hw = planned(0)
    hw.available_mib = sem.cuda_context_mib + predict(shape, la, planned(80), sem).weights_mib + reserve + 80
    p = predict(shape, la, hw, sem)
    assert p.fits_text and p.prefill < 8192 and "lower max_prefill_token_num" in p.notes[0]
    p13 = predict(shape, la, hw, semantics.for_version("0.13.0", "pytorch"))
    assert p13.fits_text and p13.prefill < 8192
    hw.available_mib -= 60            # now the first try holds <= 2 blocks: 0.13+ fails at once, 0.12 halves
    assert predict(shape, la, hw, semantics.for_version("0.18.0", "pytorch")).failed.name == "kv_cache"
    assert predict(shape, la, hw, sem).fits_text


def test_turbomind_runtime_failure_happens_at_warmup_from_0_6_2(table):
    cmd, shape, la, hw = setup("lmdeploy serve api_server /m/InternVL2-2B --cache-max-entry-count 0.95", "0.5.3", 8)
    assert "first request" in predict(shape, la, hw, semantics.for_version("0.5.3", "turbomind")).failed.detail
    la = la.but(version="0.6.2")
    assert "start-up" in predict(shape, la, hw, semantics.for_version("0.6.2", "turbomind")).failed.detail


def test_min_available_is_where_the_command_starts_to_fit(table):
    cmd, shape, la, hw = setup("lmdeploy serve gradio /m/InternVL2-2B", "0.5.1", 8)
    sem = semantics.for_version("0.5.1", "turbomind")
    need = min_available_mib(shape, la, hw, sem, False)
    assert predict(shape, la, hw.with_available(need + 1), sem).fits
    assert not predict(shape, la, hw.with_available(need - 16), sem).fits


# -- search -----------------------------------------------------------------------------------------------
def test_search_finds_the_largest_ratio_holding_a_session_and_an_image(table):
    cmd, shape, la, hw = setup("lmdeploy serve gradio /m/InternVL2-2B", "0.5.1", 8)
    found = search(shape, la, hw, sem_for("0.5.1"), None, False)
    assert found.kind == "ratio" and found.holds_image and found.holds_session
    r = found.launch.ratio
    assert 0.1 < r < 0.8
    worse = predict(shape, la.but(ratio=round(r + 0.01, 2)), hw, semantics.for_version("0.5.1", "turbomind"))
    assert not worse.fits or worse.headroom_mib < margin_mib(hw)


def test_search_uses_only_flags_of_the_version(table):
    cmd, shape, la, hw = setup("lmdeploy serve api_server /m/internlm2_5-7b-chat-4bit --model-format awq", "0.5.3", 8)
    found = search(shape, la, hw, sem_for("0.5.3"), cmd, False)
    assert "--max-prefill-token-num" not in found.changes            # added in 0.6.0 in TABLE
    cmd6, shape6, la6, hw6 = setup("lmdeploy serve api_server /m/internlm2_5-7b-chat-4bit --model-format awq",
                                   "0.6.0", 8)
    assert search(shape6, la6, hw6, sem_for("0.6.0"), cmd6, False).command.argv[:4] == \
        ["lmdeploy", "serve", "api_server", "/m/internlm2_5-7b-chat-4bit"]
    chat, cshape, cla, chw = setup("lmdeploy chat /m/internlm2_5-7b-chat-4bit --model-format awq", "0.5.3", 8)
    found = search(cshape, cla, chw, sem_for("0.5.3"), chat, False)
    assert set(found.changes) == {"--cache-max-entry-count"} and not found.holds_session


def test_search_quantizes_the_kv_cache_when_the_ratio_alone_cannot_hold_a_session(table):
    cmd, shape, la, hw = setup("lmdeploy serve api_server /m/internlm2_5-7b-chat-4bit --model-format awq "
                               "--session-len 32768 --max-batch-size 4", "0.7.3", 8)
    found = search(shape, la, hw, sem_for("0.7.3"), cmd, False)
    assert found.kind in ("quant_policy", "session_len") and found.holds_session
    assert found.command.get_flag(next(iter(found.changes))) is not None


def test_search_spreads_over_visible_gpus_with_tp(table):
    cmd, shape, la, hw = setup("lmdeploy serve api_server /m/internlm2_5-7b-chat", "0.7.3", 12)
    hw.count = 2
    found = search(shape, la, hw, sem_for("0.7.3"), cmd, False)
    assert found.kind == "tp" and found.changes["--tp"] == "2"


def test_nothing_is_suggested_when_no_rewrite_fits(table):
    cmd, shape, la, hw = setup("lmdeploy serve api_server /m/Qwen2.5-72B-Instruct", "0.7.3", 24)
    assert search(shape, la, hw, sem_for("0.7.3"), cmd, False) is None


# -- quantize first ------------------------------------------------------------------------------------------
def test_quantize_command_uses_the_version_flags_and_never_search_scale(table):
    cmd, shape, la, hw = setup("lmdeploy serve api_server /root/models/InternVL2-26B --server-port 23333", "0.5.3", 8)
    plan = quantize.plan(shape, cmd, la, hw, sem_for("0.5.3"), False, None)
    text = plan.command.shell()
    assert text.startswith("lmdeploy lite auto_awq /root/models/InternVL2-26B --work-dir /root/models/InternVL2-26B-w4a16-4bit")
    assert "--search-scale" not in text and "ptb" not in text and "--calib-dataset" not in text
    assert "--calib-samples" not in text               # not in 0.5.3's table: the GPU need is reported instead
    assert plan.gpu.ok is False
    cmd6, shape6, la6, hw6 = setup("lmdeploy serve api_server /root/models/InternVL2-26B", "0.6.0", 8)
    plan6 = quantize.plan(shape6, cmd6, la6, hw6, sem_for("0.6.0"), False, None)
    assert "--calib-samples" in plan6.command.shell() or "--calib-seqlen" in plan6.command.shell()
    assert plan6.gpu.need_mib + margin_mib(hw6) <= hw6.available_mib


def test_quantize_plan_serves_the_quantized_folder_and_checks_host_and_disk(table, tmp_path):
    cmd, shape, la, hw = setup(f"lmdeploy serve api_server {tmp_path}/internlm2_5-7b-chat", "0.7.3", 8)
    facts = FactSet({"disk.cwd.free_mib": 1}, source="live")
    plan = quantize.plan(shape, cmd, la, hw, sem_for("0.7.3"), False, 8192.0, facts)
    assert plan.host_ram.ok is False and plan.host_ram.need_mib > 16000
    # live: statvfs of tmp_path, not the 1 MiB fact (compared with what is free there now, so a nearly
    # full disk on the test machine does not make this fail)
    st = os.statvfs(tmp_path)
    assert plan.disk.have_mib > 1
    assert plan.disk.ok is (st.f_bavail * st.f_frsize / 2**20 >= plan.disk.need_mib)
    assert plan.serve_command.argv[3] == f"{tmp_path}/internlm2_5-7b-chat-w4a16-4bit"
    assert plan.serve_command.get_flag("--model-format") == "awq"
    assert plan.serve_prediction.fits


def test_no_plan_for_an_already_quantized_model_or_without_lite(table, monkeypatch):
    cmd, shape, la, hw = setup("lmdeploy serve api_server /m/internlm2_5-7b-chat-4bit", "0.7.3", 8)
    assert quantize.plan(shape, cmd, la, hw, sem_for("0.7.3"), False, None) is None
    cmd, shape, la, hw = setup("lmdeploy serve api_server /m/internlm2_5-7b-chat", "0.7.3", 8)
    monkeypatch.setitem(TABLE["subcommands"]["lite auto_awq"], "until", "0.7.0")
    t = ProgramTable(TABLE, "test")
    monkeypatch.setattr(command_mod, "load_program", lambda program: t)
    assert quantize.plan(shape, parse_shell(cmd.shell(), "0.7.3"), la, hw, sem_for("0.7.3"), False, None) is None


# -- pipeline equivalent ------------------------------------------------------------------------------------
def test_pipeline_code_carries_the_memory_settings(table):
    cmd, shape, la, hw = setup("lmdeploy serve api_server /m/InternVL2-26B-w4a16-4bit --model-format awq "
                               "--quant-policy 4 --cache-max-entry-count 0.1", "0.5.3", 24)
    code = pipeline.code("/m/InternVL2-26B-w4a16-4bit", la)
    assert code.splitlines()[0] == "from lmdeploy import pipeline, TurbomindEngineConfig"
    assert "TurbomindEngineConfig(cache_max_entry_count=0.1, quant_policy=4, session_len=32776, model_format='awq')" in code
    cmd, shape, la, hw = setup("lmdeploy chat /m/internlm2_5-7b-chat", "0.5.3", 24)
    assert "max_batch_size=1" in pipeline.code("/m/internlm2_5-7b-chat", la)


# -- hardware ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,mib", [("24GiB", 24576), ("24G", 24576), ("24", 24576), ("8192MiB", 8192),
                                      ("80GB", 80e9 / 2 ** 20), ("0.5 TiB", 524288)])
def test_vram_sizes(text, mib):
    assert hardware.parse_size_mib(text) == pytest.approx(mib)


@pytest.mark.parametrize("kwargs,message", [
    ({"vram": "lots"}, "expected a size"), ({"vram": "0GiB"}, "more than zero"),
    ({"gpu": "Z9000"}, "unknown GPU"), ({"gpu_slice": "1.5"}, "(0, 1]"), ({"gpu_slice": "a third"}, "fraction"),
])
def test_bad_planning_options(kwargs, message):
    args = {"vram": None, "gpu": None, "gpu_slice": None, "backend": None}
    args.update(kwargs)
    with pytest.raises(HardwareError, match=message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        hardware.plan_facts(**args)


def test_gpu_card_and_slice_plan_like_internstudio():
    facts = FactSet(hardware.plan_facts(None, "a100", "0.3", None))
    hw = hardware.from_facts(facts)
    assert hw.total_mib == hw.available_mib == pytest.approx(0.3 * 81920)
    assert hw.name == "NVIDIA A100-SXM4-80GB" and not hw.live
    h100 = hardware.from_facts(FactSet(hardware.plan_facts(None, "H100", None, None)))
    assert h100.available_mib == 81559 - 480


def test_live_gpu_reports_other_processes():
    hw = hardware.from_facts(load_snapshot("h100-ballast-8gib-free"))
    assert hw.live and hw.available_mib == 8190 and hw.other_mib == 72880
    assert "ballast.py" in hw.processes[0]
    assert hardware.from_facts(load_snapshot("cpu-no-gpu")) is None
    sliced = hardware.from_facts(load_snapshot("h100").with_values({"plan.gpu_slice": 0.1}))
    assert sliced.total_mib == pytest.approx(8155.9) and "this machine's GPU 0" in sliced.source


@pytest.mark.parametrize("line,version,gib", [
    ("lmdeploy serve gradio /m/InternVL2-2B", "0.5.1", 8),
    ("lmdeploy serve gradio /m/internlm-xcomposer2-vl-1_8b", "0.5.1", 8),
    ("lmdeploy serve api_server /m/InternVL2-26B-w4a16-4bit --quant-policy 4", "0.5.3", 24),
    ("lmdeploy serve api_server /m/InternVL2-26B-w4a16-4bit --quant-policy 4", "0.5.3", 27),
    ("lmdeploy serve api_server /m/internlm2_5-7b-chat --backend pytorch", "0.18.0", 18),
    ("lmdeploy serve api_server /m/internlm2_5-7b-chat --cache-max-entry-count 0.5", "0.2.1", 24),
    ("lmdeploy serve api_server /m/internlm2-chat-1_8b --backend pytorch", "0.12.0", 6),
])
@pytest.mark.parametrize("need_session,need_image", [(True, True), (False, True), (True, False), (False, False)])
def test_best_ratio_equals_the_exhaustive_scan(table, line, version, gib, need_session, need_image):
    from doctor.memory.search import RATIOS, acceptable, best_ratio
    cmd, shape, la, hw = setup(line, version, gib)
    sem = semantics.for_version(version, la.backend)
    margin = margin_mib(hw)
    exhaustive = next((r for r in RATIOS if acceptable(predict(shape, la.but(ratio=r), hw, sem), margin,
                                                       need_session, need_image)), None)
    found = best_ratio(shape, la, hw, sem, False, margin, need_session, need_image)
    assert (found.launch.ratio if found else None) == exhaustive
