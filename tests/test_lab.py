"""Self-test of the GPU lab (lab/) on a CPU machine, so GPU minutes are not lost to a runner bug.

The launched process is a real HTTP server (a stand-in `lmdeploy` package on PYTHONPATH, written below)
that answers /v1/models and /v1/chat/completions like lmdeploy's api_server and can crash, hang after a
fatal line, fail to bind, or miss a dependency. NVML is switched off (LAB_NO_NVML=1), so memory fields are
null; everything else (ready detection, requests, clients, kills, budget, records, packing) is real.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAB = REPO / "lab"
sys.path.insert(0, str(LAB))

import matrix  # noqa: E402
import mkmodel  # noqa: E402

TINY_SHAPES = """
shapes:
  tiny:
    architecture: LlamaForCausalLM
    layers: 2
    hidden: 64
    heads: 4
    kv_heads: 2
    intermediate: 128
    vocab: 300
    tie_embeddings: false
  tiny-qwen:
    architecture: Qwen2ForCausalLM
    layers: 1
    hidden: 32
    heads: 2
    kv_heads: 1
    intermediate: 64
    vocab: 270
    tie_embeddings: true
    qkv_bias: true
"""

# A stand-in for `python3 -m lmdeploy serve api_server MODEL ...`: a real HTTP server with lmdeploy's
# endpoints and error texts (fixtures/apps/openai_stub.py); --fake-mode picks a failure.
FAKE_MAIN = r'''
import json, os, subprocess, sys, time
from openai_stub import serve   # fixtures/apps/openai_stub.py, copied into the fake site folder

argv = sys.argv[1:]
assert argv[:2] == ["serve", "api_server"], argv
model = argv[2]
def opt(name, default=None):
    return argv[argv.index(name) + 1] if name in argv else default
port = int(opt("--server-port", "23333"))
session_len = int(opt("--session-len", "100000"))
mode = opt("--fake-mode", "ok")
print("fake lmdeploy: serving", model, "mode", mode, flush=True)
if mode == "import":
    import labfake_dep  # noqa: F401  (hidden by the scenario)
if mode == "crash":
    print("Traceback (most recent call last):\nRuntimeError: No enough gpu memory for kv cache.", flush=True)
    sys.exit(1)
if mode in ("hang-fatal", "hang"):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    escaped = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    with open(os.path.join(model, "children.json"), "w") as f:
        json.dump([child.pid, escaped.pid], f)
    if mode == "hang-fatal":
        print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 32.00 MiB.", flush=True)
    time.sleep(300)
time.sleep(0.3)

def chat(req):
    n = len(req["messages"][0]["content"]) + 20
    if n >= session_len:
        return 400, {"object": "error", "code": 400, "type": "invalid_request_error",
                     "message": f"Input length ({n}) must be smaller than the model context length ({session_len})."}
    return 200, {"choices": [{"message": {"role": "assistant", "content": " w1 w2 w3"}}],
                 "usage": {"prompt_tokens": n, "completion_tokens": 3}}

serve("0.0.0.0", port, model, chat)
'''

FAKE_PIPELINE = r'''
import sys, time
print("fake pipeline for", sys.argv[1:], flush=True)
time.sleep(0.3)
print("LAB_READY", flush=True)
time.sleep(0.3)
print("LAB_DONE {}", flush=True)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A fake site folder (stand-in lmdeploy + a dependency), a tiny shapes table and a run helper."""
    site = tmp_path / "site"
    (site / "lmdeploy").mkdir(parents=True)
    (site / "lmdeploy" / "__init__.py").write_text("")
    (site / "lmdeploy" / "__main__.py").write_text(FAKE_MAIN)
    shutil.copy(REPO / "fixtures" / "apps" / "openai_stub.py", site)
    (site / "labfake_dep").mkdir()
    (site / "labfake_dep" / "__init__.py").write_text("")
    (site / "labfake_dep-1.0.dist-info").mkdir()
    (tmp_path / "shapes.yaml").write_text(TINY_SHAPES)
    (tmp_path / "fake_pipeline.py").write_text(FAKE_PIPELINE)
    port = free_port()

    def run(scenario: dict, *extra: str, timeout: float = 120):
        path = tmp_path / f"{scenario['name']}.yaml"
        import yaml
        path.write_text(yaml.safe_dump(scenario))
        env = dict(os.environ, PYTHONPATH=str(site), LAB_NO_NVML="1")
        env.pop("LAB_T0", None)
        proc = subprocess.run([sys.executable, str(LAB / "matrix.py"), str(path), "--out", str(tmp_path / "out"),
                               "--work", str(tmp_path / "work"), "--models-dir", str(tmp_path / "models"),
                               "--shapes", str(tmp_path / "shapes.yaml"), "--port", str(port), *extra],
                              capture_output=True, text=True, env=env, timeout=timeout, cwd=str(REPO))
        return proc

    def records(name: str, kind: str = "failures"):
        work = tmp_path / "work" / name
        if kind == "failures":
            path = work / "fixtures" / "lab" / name / "records.jsonl"
        else:
            path = next((work / "fixtures" / "measurements").glob("*.jsonl"))
        return [json.loads(line) for line in path.read_text().splitlines()]

    class Lab:
        pass
    obj = Lab()
    obj.tmp, obj.site, obj.port, obj.run, obj.records = tmp_path, site, port, run, records
    obj.pipeline = str(tmp_path / "fake_pipeline.py")
    return obj


def scenario(name, launches, kind="failures", **defaults):
    return {"name": name, "kind": kind, "defaults": dict({"timeout_s": 30, "est_s": 5}, **defaults),
            "models": {"m": {"shape": "tiny", "fill": "random"}}, "launches": launches}


# ----------------------------------------------------------------------------------------------- runner
def test_ready_launch_records_requests_log_and_tarball(lab):
    sc = scenario("calib-t", [{"id": "ok1", "model": "m", "engine": {"cache_max_entry_count": 0.5,
                                                                       "session_len": 4096, "max_batch_size": 8}}],
                  kind="calibration")
    proc = lab.run(sc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [rec] = lab.records("calib-t", "calibration")
    assert rec["outcome"] == "ready" and rec["seconds_to_ready"] > 0
    assert rec["requests_ok"] == rec["requests_total"] == 6
    # long prompt: min(2000, session_len // 2) characters + the stand-in's 20 template tokens
    assert rec["prompt_tokens_max"] == 2020
    assert rec["settings"] == {"cache_max_entry_count": 0.5, "quant_policy": 0, "session_len": 4096,
                               "max_batch_size": 8, "max_prefill_token_num": None, "eager_mode": False, "tp": 1}
    assert rec["model"]["params"] == mkmodel.param_count(mkmodel.get_shape("tiny", lab.tmp / "shapes.yaml"))
    assert rec["gpu"] is None and rec["peak_used_mib"] is None and rec["engine_mib"] is None
    assert "--cache-max-entry-count 0.5 --session-len 4096 --max-batch-size 8" in rec["command"]
    assert rec["command"].split()[1:5] == ["-m", "lmdeploy", "serve", "api_server"]
    assert rec["log"] == "fixtures/lab/calib-t/ok1.log"
    log = (lab.tmp / "work" / "calib-t" / rec["log"]).read_text()
    assert "Uvicorn running on" in log and "POST /v1/chat/completions" in log
    with tarfile.open(lab.tmp / "out" / "lab-calib-t.tar.gz") as tf:
        names = tf.getnames()
    assert "fixtures/lab/calib-t/ok1.log" in names and "fixtures/lab/calib-t/summary.txt" in names
    assert any(n.startswith("fixtures/measurements/lab-") and n.endswith("-nogpu-calib-t.jsonl") for n in names)
    assert (lab.tmp / "out" / "summary-calib-t.txt").read_text().count("ok1: ready") == 1


def test_failures_exit_fatal_line_timeout_and_process_tree_killed(lab):
    sc = scenario("fail-t", [
        {"id": "crash", "model": "m", "extra_args": ["--fake-mode", "crash"], "category": "oom_kv_cache"},
        {"id": "fatal", "model": "m", "extra_args": ["--fake-mode", "hang-fatal"], "fatal_grace_s": 1},
        {"id": "slow", "model": "m", "extra_args": ["--fake-mode", "hang"], "timeout_s": 3, "expect": "timeout"},
    ], expect="failed")
    proc = lab.run(sc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    crash, fatal, slow = lab.records("fail-t")
    assert crash["outcome"] == "failed" and crash["exit_code"] == 1 and crash["category"] == "oom_kv_cache"
    assert crash["seconds_to_ready"] is None
    assert "No enough gpu memory" in (lab.tmp / "work" / "fail-t" / crash["log"]).read_text()
    assert fatal["outcome"] == "failed" and "CUDA out of memory" in fatal["notes"]
    assert slow["outcome"] == "timeout"
    for rec in (fatal, slow):
        pids = json.loads((lab.tmp / "models" / "m" / "children.json").read_text())
        for pid in pids:  # the child in the group and the one that left it are both gone
            assert not matrix._alive(pid), (rec["id"], pid)
    assert "UNEXPECTED" not in proc.stdout


def test_client_failures_are_appended_to_the_server_log(lab):
    sc = scenario("client-t", [
        {"id": "too-long", "model": "m", "engine": {"session_len": 128},
         "client": {"openai": False, "prompt_chars": 3000}, "category": "session_len_exceeded"},
        {"id": "bad-name", "model": "m", "client": {"openai": False, "model": "internlm2-chat-1_8b"},
         "category": "openai_model_name_mismatch"},
        {"id": "good", "model": "m", "client": {"openai": False}, "expect": "ready"},
    ], expect="failed")
    proc = lab.run(sc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    too_long, bad_name, good = lab.records("client-t")
    assert too_long["outcome"] == "failed" and too_long["seconds_to_ready"] is not None
    log = (lab.tmp / "work" / "client-t" / too_long["log"]).read_text()
    server, client = log.split("===== lab client: ", 1)
    assert "Uvicorn running on" in server and "400" in server
    assert "(exit 1) =====" in client and "must be smaller than the model context length (128)" in client
    log = (lab.tmp / "work" / "client-t" / bad_name["log"]).read_text()
    assert "--model internlm2-chat-1_8b" in log and "does not exist" in log
    assert good["outcome"] == "ready" and "(exit 0) =====" in (lab.tmp / "work" / "client-t" / good["log"]).read_text()


def test_port_taken_hidden_package_and_pipeline_entry(lab):
    sc = scenario("misc-t", [
        {"id": "port", "model": "m", "block_port": True, "category": "port_in_use"},
        {"id": "hidden", "model": "m", "extra_args": ["--fake-mode", "import"],
         "hide_site_entries": ["labfake_dep", "labfake_dep-*"], "category": "missing_python_dependency"},
        {"id": "pipe", "model": "m", "entry": "pipeline", "script": lab.pipeline,
         "engine": {"cache_max_entry_count": 0.2}, "expect": "ready"},
    ], expect="failed")
    proc = lab.run(sc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    port, hidden, pipe = lab.records("misc-t")
    assert port["outcome"] == "failed" and "address already in use" in port["notes"]
    assert hidden["outcome"] == "failed" and hidden["command"].startswith("PYTHONPATH=")
    log = (lab.tmp / "work" / "misc-t" / hidden["log"]).read_text()
    assert "No module named 'labfake_dep'" in log
    farm = Path(hidden["command"].split()[0].split("=", 1)[1])
    assert (farm / "lmdeploy").is_symlink() and not (farm / "labfake_dep").exists()
    assert not (farm / "labfake_dep-1.0.dist-info").exists()
    assert pipe["outcome"] == "ready" and pipe["entry"] == "pipeline"
    assert "--cache-max-entry-count 0.2" in pipe["command"] and "LAB_DONE" in \
        (lab.tmp / "work" / "misc-t" / pipe["log"]).read_text()


def test_budget_skips_launches_instead_of_running_past_it(lab):
    sc = scenario("budget-t", [{"id": "a", "model": "m", "est_s": 30}, {"id": "b", "model": "m"}])
    proc = lab.run(sc, "--budget", "20")
    assert proc.returncode == 1
    assert "SKIP a: needs ~30 s" in proc.stdout and "done: 1/2 launches recorded" in proc.stdout
    assert [r["id"] for r in lab.records("budget-t")] == ["budget-t/b"]


def test_runner_gives_up_when_the_first_launches_all_go_wrong(lab):
    crash = {"model": "m", "extra_args": ["--fake-mode", "crash"], "expect": "ready"}
    sc = scenario("giveup-t", [dict(crash, id="a"), dict(crash, id="b"), {"id": "c", "model": "m"}])
    proc = lab.run(sc)
    assert proc.returncode == 1 and "GIVING UP: the first 2 launches" in proc.stdout
    assert [r["id"] for r in lab.records("giveup-t")] == ["giveup-t/a", "giveup-t/b"]
    sc = scenario("nogiveup-t", [{"id": "ok", "model": "m", "expect": "ready"}, dict(crash, id="a"),
                                 dict(crash, id="b"), {"id": "c", "model": "m"}])
    proc = lab.run(sc)
    assert proc.returncode == 0 and "GIVING UP" not in proc.stdout and proc.stdout.count("UNEXPECTED") == 2


def test_dry_run_and_only(lab):
    sc = scenario("dry-t", [{"id": "a", "model": "m"}, {"id": "b", "model": "m"}])
    proc = lab.run(sc, "--dry-run")
    assert proc.returncode == 0 and "total ~" in proc.stdout
    assert not (lab.tmp / "models" / "m").exists()
    proc = lab.run(sc, "--only", "zzz")
    assert proc.returncode == 2 and "unknown launch id(s): zzz" in proc.stderr


# --------------------------------------------------------------------------------------------- scenarios
@pytest.mark.parametrize("path", sorted((LAB / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_scenarios_validate_and_plan_within_budget(path):
    sc = matrix.load_scenario(path)
    assert sc["kind"] in ("calibration", "failures")
    if sc["kind"] == "failures":
        import yaml
        taxonomy = yaml.safe_load((REPO / "rules" / "taxonomy.yaml").read_text())["categories"]
        for launch in sc["launches"]:
            assert launch["category"] in taxonomy, launch["id"]
    proc = subprocess.run([sys.executable, str(LAB / "matrix.py"), str(path), "--dry-run"], capture_output=True,
                          text=True, cwd=str(REPO), env=dict(os.environ, LAB_NO_NVML="1"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "python3" in proc.stdout or sys.executable in proc.stdout


def test_calibration_design_covers_the_issue_matrix():
    launches = [la for name in ("calib-a", "calib-b")
                for la in matrix.load_scenario(LAB / "scenarios" / f"{name}.yaml")["launches"]]
    shapes = {la["model"] for la in launches}
    assert {"internlm2-1.8b", "internlm2.5-7b"} <= shapes and len(shapes) >= 3
    ratios = {la["engine"]["cache_max_entry_count"] for la in launches}
    assert min(ratios) == 0.05 and max(ratios) == 0.9
    assert {la["engine"].get("quant_policy") for la in launches} == {0, 4, 8}
    assert {(la["engine"].get("session_len"), la["engine"].get("max_batch_size")) for la in launches} == \
        {(None, None), (4096, 128)}
    assert {8, 24, 40} <= {la.get("slice_gib") for la in launches}
    assert len(launches) >= 18


@pytest.mark.parametrize("bad, message", [
    ({"launches": [{"id": "a", "model": "m", "engine": {"cache_max_entry": 0.5}}]}, "unknown key(s) cache_max_entry"),
    ({"launches": [{"id": "a", "model": "m", "slice": 8}]}, "unknown key(s) slice"),
    ({"launches": [{"id": "a", "model": "nope"}]}, "model 'nope' is not in models"),
    ({"launches": [{"id": "a", "model": "m"}, {"id": "a", "model": "m"}]}, "id missing, repeated"),
    ({"models": {"m": {"shape": "tiny-x"}}}, "unknown shape 'tiny-x'"),
    ({"kind": "bench"}, "kind must be calibration or failures"),
])
def test_scenario_mistakes_are_caught_before_any_launch(tmp_path, bad, message):
    import yaml
    (tmp_path / "shapes.yaml").write_text(TINY_SHAPES)
    doc = dict(scenario("bad", [{"id": "a", "model": "m"}]), **bad)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(matrix.ScenarioError, match=message.replace("(", r"\(").replace(")", r"\)")):
        matrix.load_scenario(path, tmp_path / "shapes.yaml")


def test_ballast_protocol(tmp_path):
    fake = tmp_path / "ballast_fake.py"
    fake.write_text(textwrap.dedent('''
        import json, sys
        print(json.dumps({"ready": True, "free_mib": 80000}), flush=True)
        for line in sys.stdin:
            w = line.strip()
            if w == "666":
                print(json.dumps({"error": "CUDA out of memory", "held_mib": 0}), flush=True)
            else:
                leave = 80000 if w == "none" else int(w)
                print(json.dumps({"held_mib": 80000 - leave, "free_mib": leave}), flush=True)
    '''))
    proc = matrix.BallastProc(tmp_path / "ballast.log", [sys.executable, str(fake)])
    assert proc.set(8192) == {"held_mib": 71808, "free_mib": 8192}
    assert proc.set(None)["held_mib"] == 0
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        proc.set(666)
    pid = proc.pid
    proc.stop()
    assert proc.pid is None and not matrix._alive(pid)


# ------------------------------------------------------------------------------------------------ mkmodel
def _read_safetensors(path: Path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    return header, raw[8 + n:], n


def test_mkmodel_writes_valid_safetensors_config_and_tokenizer(tmp_path):
    shape = mkmodel.get_shape("tiny-qwen", _shapes(tmp_path))
    info = mkmodel.write_model(tmp_path / "m", shape, "random")
    header, data, n = _read_safetensors(tmp_path / "m" / "model.safetensors")
    assert (8 + n) % 8 == 0
    specs = mkmodel.tensor_specs(shape)
    assert [k for k in header if k != "__metadata__"] == [name for name, _ in specs]
    assert "lm_head.weight" not in header and "model.layers.0.self_attn.q_proj.bias" in header
    end = 0
    for name, dims in specs:
        meta = header[name]
        assert meta["dtype"] == "BF16" and meta["shape"] == list(dims) and meta["data_offsets"][0] == end
        end = meta["data_offsets"][1]
    assert end == len(data) == info["weights_bytes"] == 2 * info["params"]
    lo, hi = header["model.norm.weight"]["data_offsets"]
    assert data[lo:hi] == b"\x80\x3f" * ((hi - lo) // 2)  # norms are 1.0
    lo, hi = header["model.embed_tokens.weight"]["data_offsets"]
    assert {b & 0x7E for b in data[lo + 1:hi:2]} == {0x3C}  # random values: exponent pinned, no NaN/Inf
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["architectures"] == ["Qwen2ForCausalLM"] and cfg["model_type"] == "qwen2"
    assert cfg["tie_word_embeddings"] is True and cfg["head_dim"] == 16 and cfg["vocab_size"] == 270
    tok = json.loads((tmp_path / "m" / "tokenizer.json").read_text())
    assert len(tok["model"]["vocab"]) == 270 and tok["model"]["vocab"]["</s>"] == 2
    tcfg = json.loads((tmp_path / "m" / "tokenizer_config.json").read_text())
    assert tcfg["eos_token"] == "</s>" and "add_generation_prompt" in tcfg["chat_template"]
    again = mkmodel.write_model(tmp_path / "m", shape, "random")
    assert again["reused"] is True


def test_mkmodel_zeros_is_sparse_and_sharded(tmp_path):
    shape = mkmodel.get_shape("tiny", _shapes(tmp_path))
    mkmodel.write_model(tmp_path / "z", shape, "zeros", shard_gb=100e3 / 1e9)
    index = json.loads((tmp_path / "z" / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 1 and files[0] == f"model-00001-of-{len(files):05d}.safetensors"
    assert index["metadata"]["total_size"] == 2 * mkmodel.param_count(shape)
    for fname in files:
        header, data, _ = _read_safetensors(tmp_path / "z" / fname)
        assert set(index["weight_map"][k] for k in header if k != "__metadata__") == {fname}
        assert max(m["data_offsets"][1] for k, m in header.items() if k != "__metadata__") == len(data)


def test_mkmodel_big_zero_checkpoint_costs_no_disk(tmp_path):
    info = mkmodel.write_model(tmp_path / "big", mkmodel.get_shape("qwen1.5-110b"), "zeros")
    assert info["weights_bytes"] > 200e9 and info["seconds"] < 30
    used = sum(p.stat().st_blocks * 512 for p in (tmp_path / "big").iterdir())
    assert used < 1e9


@pytest.mark.parametrize("name, params", [("internlm2-1.8b", 1_889_110_016), ("qwen2.5-0.5b", 494_032_768),
                                          ("llama3-8b", 8_030_261_248), ("internlm2.5-7b", 7_737_708_544)])
def test_shape_parameter_counts_match_the_real_models(name, params):
    assert mkmodel.param_count(mkmodel.get_shape(name)) == params


def test_mkmodel_cli_rejects_unknown_shape(tmp_path):
    proc = subprocess.run([sys.executable, str(LAB / "mkmodel.py"), str(tmp_path / "x"), "gpt-5"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown shape 'gpt-5'" in proc.stderr and not (tmp_path / "x").exists()


def _shapes(tmp_path: Path) -> Path:
    path = tmp_path / "shapes.yaml"
    path.write_text(TINY_SHAPES)
    return path


# ---------------------------------------------------------------------------------------------- wheels
def _wheel(dest: Path, name: str, version: str, requires=()):
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest / f"{name}-{version}-py3-none-any.whl", "w") as zf:
        meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + \
            "".join(f"Requires-Dist: {r}\n" for r in requires)
        zf.writestr(f"{name}-{version}.dist-info/METADATA", meta)


def _lmdeploy_src(dest: Path, requires):
    info = dest / "src" / "lmdeploy-0.18.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lmdeploy\nVersion: 0.18.0\n" +
                                   "".join(f"Requires-Dist: {r}\n" for r in requires))
    with tarfile.open(dest / "lmdeploy_src.tgz", "w:gz") as tf:
        tf.add(str(info), arcname=info.name)


def _wheelcheck(dest: Path):
    return subprocess.run([sys.executable, str(LAB / "wheelcheck.py"), str(dest)], capture_output=True, text=True)


def test_wheelcheck_accepts_a_closed_set(tmp_path):
    _wheel(tmp_path / "whl", "fastapi", "0.129.2", ["starlette<1.0.0,>=0.40.0", "typing-extensions>=4.8.0"])
    _wheel(tmp_path / "whl", "starlette", "0.52.1", ["anyio<5,>=3.6.2"])
    _lmdeploy_src(tmp_path, ["fastapi", "numpy", "ray", "torch<=2.12.1,>=2.0.0", "timm; extra == 'serve'",
                             'tilelang==0.1.11; sys_platform == "linux"'])
    proc = _wheelcheck(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok  fastapi -> starlette<1.0.0,>=0.40.0: carried 0.52.1" in proc.stdout
    assert "skip lmdeploy -> ray" in proc.stdout and "timm" not in proc.stdout


def test_wheelcheck_reports_missing_and_conflicting(tmp_path):
    _wheel(tmp_path / "whl", "pydantic", "2.14.3", ["pydantic-core==2.50.4"])
    _wheel(tmp_path / "whl", "pydantic_core", "2.41.0")
    _lmdeploy_src(tmp_path, ["pydantic>2.0.0", "shortuuid", "transformers<5"])
    proc = _wheelcheck(tmp_path)
    assert proc.returncode == 1
    assert "MISSING: lmdeploy needs shortuuid" in proc.stderr
    assert "CONFLICT: pydantic needs pydantic-core==2.50.4, carried pydantic-core 2.41.0" in proc.stderr
    assert "CONFLICT: lmdeploy needs transformers<5, image has transformers 5.17.0" in proc.stderr


def test_carried_wheel_list_is_pinned():
    lines = [ln for ln in (LAB / "wheels.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    assert len(lines) >= 20 and all("==" in ln for ln in lines)
    assert "fastapi==0.129.2" in lines and "apache-tvm-ffi==0.1.11" in lines
