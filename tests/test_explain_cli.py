"""`lmdoctor explain` as users run it: a real child process, real logs, real bad inputs."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO, lmdoctor

LOGS = REPO / "fixtures" / "logs"
OOM_OTHER = str(LOGS / "oom_other_process" / "pytorch-engine-oom-other-process-holds-gpu.log")
SEED = str(LOGS / "oom_weight_load" / "seed-000-internlm2_5-7b-chat-turbomind.log")
PORT = str(LOGS / "port_in_use" / "api-server-port-in-use.log")
FALLBACK = str(LOGS / "benign_warning" / "turbomind-missing-fallback-healthy.log")
HEALTHY = str(LOGS / "healthy" / "api-server-healthy.log")


def test_json_contract_best_first_with_line_evidence_and_fixes():
    run = lmdoctor("explain", "--json", "--no-facts", OOM_OTHER)
    assert run.code == 1, run.err
    doc = run.json()
    assert doc["command"] == "explain" and doc["schema_version"] == 1 and doc["verdict"] == "errors"
    top = doc["findings"][0]
    assert (top["rule"], top["category"], top["severity"]) == ("MEM104", "oom_other_process", "error")
    assert {"line": 60, "text": top["evidence"][0]["text"]} == top["evidence"][0]
    assert "Process 4294 has 136.86 GiB" in top["evidence"][0]["text"]
    assert all(set(f) >= {"summary", "safety"} for f in top["fixes"])
    assert [a["rule"] for a in top["also_matched"]][:2] == ["MEM102", "MEM105"]
    assert all(a["why_not"] for a in top["also_matched"])
    assert [c["line"] for c in top["consequences"]] == [61, 103]
    assert doc["log"]["lines"] == 103 and doc["facts_source"] == "none"
    assert doc["log_facts"]["log.oom.other_pids"] == [4294]


def test_seed_weights_oom_says_the_cache_ratio_cannot_help_and_quantizes_first():
    run = lmdoctor("explain", "--json", "--no-facts", SEED)
    top = run.json()["findings"][0]
    assert top["category"] == "oom_weight_load"
    assert "cannot help" in top["explanation"]
    quantize = top["fixes"][0]
    assert quantize["command"].splitlines() == [
        "lmdeploy lite auto_awq /root/models/internlm2_5-7b-chat --work-dir /root/models/internlm2_5-7b-chat-4bit",
        "lmdeploy chat /root/models/internlm2_5-7b-chat-4bit --model-format awq"]
    assert run.json()["subject"] == {"command": "lmdeploy chat /root/models/internlm2_5-7b-chat",
                                     "source": "log line 98", "line": 98,
                                     "lmdeploy_version": None}


def test_human_output_has_panel_evidence_and_copyable_fix_commands():
    run = lmdoctor("explain", "--no-facts", SEED)
    assert run.code == 1
    assert "MEM101 · oom_weight_load · error" in run.out
    assert "128  RuntimeError: [TM][ERROR] CUDA runtime error: out of memory" in run.out
    assert "\n      $ lmdeploy lite auto_awq /root/models/internlm2_5-7b-chat --work-dir /root/models/internlm2_5-7b-chat-4bit\n" in run.out
    assert "Traceback" not in run.err


def test_stdin_and_cmd_give_the_rewritten_command():
    data = open(PORT, "rb").read()
    run = lmdoctor("explain", "--json", "--no-facts", "--cmd", "lmdeploy serve api_server /m/x --server-port 23333",
                   input=data)
    top = run.json()["findings"][0]
    assert top["rule"] == "NET101"
    assert top["fixes"][0]["command"] == "lmdeploy serve api_server /m/x --server-port 23334"
    assert top["fixes"][0]["argv"] == ["lmdeploy", "serve", "api_server", "/m/x", "--server-port", "23334"]


def test_facts_snapshot_turns_the_kv_failure_into_another_process():
    log = str(LOGS / "oom_kv_cache" / "pytorch-engine-no-memory-for-kv-cache.log")
    plain = lmdoctor("explain", "--json", "--no-facts", log).json()["findings"][0]
    fused = lmdoctor("explain", "--json", "--facts", str(REPO / "fixtures/facts/h100-ballast-8gib-free.json"), log).json()
    assert plain["category"] == "oom_kv_cache"
    assert fused["findings"][0]["category"] == "oom_other_process"
    assert "pid 425" in fused["findings"][0]["explanation"]
    assert fused["facts_source"].endswith("h100-ballast-8gib-free.json")


def test_live_facts_are_the_default():
    run = lmdoctor("explain", "--json", PORT)
    doc = run.json()
    assert run.code == 1 and doc["facts_source"] == "live"
    assert doc["findings"][0]["category"] == "port_in_use"


def test_harmless_warnings_only_with_all():
    plain = lmdoctor("explain", "--json", "--no-facts", FALLBACK)
    assert plain.code == 0 and plain.json()["verdict"] == "healthy"
    assert plain.json()["findings"] == [] and plain.json()["hidden"]["benign"] == 2
    full = lmdoctor("explain", "--json", "--no-facts", "--all", FALLBACK)
    assert full.code == 0
    assert [(f["rule"], f["severity"]) for f in full.json()["findings"]] == [("RUN102", "info"), ("RUN103", "info")]
    human = lmdoctor("explain", "--no-facts", "--all", FALLBACK)
    assert "harmless" in human.out and "No failure in this log." in human.out


def test_healthy_server_with_a_wrong_model_request_is_a_note_not_an_error():
    run = lmdoctor("explain", "--json", "--no-facts", HEALTHY)
    assert run.code == 0
    assert [(f["rule"], f["severity"]) for f in run.json()["findings"]] == [("NET103", "info")]


def test_unexplained_failure_says_so_and_exits_5(tmp_path):
    log = tmp_path / "odd.log"
    log.write_text("INFO:     Started server process [7]\n"
                   "Traceback (most recent call last):\n"
                   '  File "/x/lmdeploy/serve/openai/api_server.py", line 12, in serve\n'
                   "    run()\n"
                   "ZeroDivisionError: division by zero\n"
                   "lmdeploy.pytorch.engine.mp_engine.zmq_rpc.RPCServerDeadError: ZMQ RPC client stopped.\n")
    run = lmdoctor("explain", "--json", "--no-facts", str(log))
    assert run.code == 5
    doc = run.json()
    assert doc["verdict"] == "unexplained" and doc["findings"] == []
    sus = doc["unexplained"]["suspicious"]
    assert sus[0] == {"line": 5, "text": "ZeroDivisionError: division by zero", "kind": "exception"}
    assert sus[-1]["kind"] == "consequence"
    assert doc["unexplained"]["attach"] == "lmdoctor facts --json"
    human = lmdoctor("explain", "--no-facts", str(log))
    assert human.code == 5 and "no rule explains it" in human.out and "lmdoctor facts --json" in human.out


def _run_closed_stdin():
    env = dict(os.environ, LMDOCTOR_LANG="en")
    return subprocess.run([sys.executable, "-m", "doctor", "explain"], cwd=str(REPO), env=env,
                          capture_output=True, preexec_fn=lambda: os.close(0), timeout=60)


@pytest.mark.parametrize("case", ["empty-file", "empty-stdin", "binary", "giant-line", "directory", "missing",
                                  "closed-stdin", "bad-facts", "facts-and-no-facts"])
def test_bad_input_is_one_clear_line_and_exit_2(case, tmp_path):
    if case == "closed-stdin":
        proc = _run_closed_stdin()
        code, out, err = proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    else:
        args, data = ["explain"], None
        if case == "empty-file":
            (tmp_path / "e.log").write_bytes(b"")
            args.append(str(tmp_path / "e.log"))
        elif case == "empty-stdin":
            args.append("-")
            data = b""
        elif case == "binary":
            (tmp_path / "b.log").write_bytes(os.urandom(200_000))
            args.append(str(tmp_path / "b.log"))
        elif case == "giant-line":
            (tmp_path / "g.log").write_bytes(b"A" * (50 << 20))
            args.append(str(tmp_path / "g.log"))
        elif case == "directory":
            args.append(str(tmp_path))
        elif case == "missing":
            args.append(str(tmp_path / "nope.log"))
        elif case == "bad-facts":
            (tmp_path / "f.json").write_text("{not json")
            args += ["--facts", str(tmp_path / "f.json"), PORT]
        else:
            args += ["--no-facts", "--facts", "x.json", PORT]
        run = lmdoctor(*args, input=data)
        code, out, err = run.code, run.out, run.err
    assert code == 2, (case, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("lmdoctor: error: "), err
    assert "Traceback" not in err and out == ""
    expected = {"empty-file": "empty", "empty-stdin": "empty", "binary": "binary", "giant-line": "50.0 MB line",
                "directory": "is a directory", "missing": "no such file", "closed-stdin": "stdin is closed",
                "bad-facts": "", "facts-and-no-facts": "--no-facts"}[case]
    assert expected in lines[0]


def test_giant_line_inside_a_log_is_cut_not_fatal(tmp_path):
    log = tmp_path / "mixed.log"
    log.write_bytes(b"start\n" + b"{" + b"x" * (50 << 20) + b"}\n"
                    b"ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 23333): address already in use\n")
    run = lmdoctor("explain", "--json", "--no-facts", str(log))
    assert run.code == 1 and run.json()["log"]["cut_lines"] == 1
    assert run.json()["findings"][0]["evidence"][0]["line"] == 3


def test_check_does_not_import_the_log_machinery():
    code = ("import sys\nfrom doctor.cli import main\n"
            "try:\n    main(['check', '--json', '--facts', 'fixtures/facts/cpu-no-gpu.json'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('doctor.logs')), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True, timeout=60)
    assert proc.stderr.decode().strip().splitlines()[-1] == "['doctor.logs', 'doctor.logs.facts']"


def test_log_rules_are_listed_and_documented():
    listed = lmdoctor("rules", "list")
    assert "MEM101   error    log  oom_weight_load" in listed.out
    shown = lmdoctor("rules", "show", "MEM101")
    assert shown.code == 0 and "cannot help" in shown.out and "lmdeploy lite auto_awq" in shown.out
