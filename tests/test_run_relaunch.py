"""`lmdoctor run` end to end on CPU with real programs: fail, diagnose, fix, relaunch, verify."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import REPO, lmdoctor

APPS = REPO / "fixtures" / "apps"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_json(tmp_path, *argv, extra=()):
    r = lmdoctor("run", "--verify-only", "--json", "--quiet-child", "--log-dir", str(tmp_path), *extra, "--", *argv,
                 timeout=240)
    assert "Traceback" not in r.err, r.err
    return r, r.json()


def test_a_server_failing_on_a_too_high_kv_ratio_is_fixed_and_verified(tmp_path):
    port = str(free_port())
    r, doc = run_json(tmp_path, sys.executable, str(APPS / "kv_server.py"), "/m", "--server-port", port,
                      "--cache-max-entry-count", "0.9")
    first, last = doc["attempts"][0], doc["attempts"][-1]
    # torch's OOM in warm-up: the generic after-the-weights OOM rule, whose fix lowers the ratio
    assert first["outcome"]["kind"] == "exited" and first["finding"]["rule"] == "MEM105"
    assert first["fix"]["safety"] == "auto" and "--cache-max-entry-count 0.9 →" in first["fix"]["diff"][0]
    assert last["outcome"]["kind"] == "ready" and doc["verdict"] == "verified" and r.code == 0
    assert "--cache-max-entry-count 0.9" not in doc["final_command"]


def test_an_inotify_failure_is_fixed_by_turning_the_watcher_off(tmp_path):
    r, doc = run_json(tmp_path, sys.executable, str(APPS / "inotify_app.py"), "--server.port", str(free_port()))
    assert [a["outcome"]["kind"] for a in doc["attempts"]] == ["exited", "ready"]
    assert doc["attempts"][0]["finding"]["category"] == "inotify_watch_limit"
    assert doc["final_command"].endswith("--server.fileWatcherType none") and r.code == 0
    root = [f for f in doc["findings"][0]["fixes"] if f["safety"] == "root"] if doc["findings"] else []
    assert all("sysctl" in f["command"] for f in root)  # printed, never run


def test_a_real_streamlit_app_on_a_taken_port_moves_to_a_free_one(tmp_path):
    streamlit = os.path.join(os.path.dirname(sys.executable), "streamlit")
    if not os.path.exists(streamlit):
        pytest.skip("streamlit is a test dependency: pip install '.[test]'")
    app = tmp_path / "app.py"
    app.write_text("import streamlit as st\nst.write('hello from lmdoctor')\n")
    port = free_port()
    holder = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "0.0.0.0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        r, doc = run_json(tmp_path, streamlit, "run", str(app), "--server.port", str(port), "--server.headless", "true",
                          "--browser.gatherUsageStats", "false")
    finally:
        holder.kill()
        holder.wait()
    first, last = doc["attempts"][0], doc["attempts"][-1]
    assert first["finding"]["category"] == "port_in_use" and f"--server.port {port} →" in first["fix"]["diff"][0]
    assert last["outcome"]["kind"] == "ready" and last["outcome"]["ready_by"].startswith("GET / -> 200")
    assert f"--server.port {port}" not in doc["final_command"] and r.code == 0


def test_a_command_that_keeps_failing_stops_within_the_budget_and_says_so(tmp_path):
    script = tmp_path / "always_oom.py"
    script.write_text(textwrap.dedent('''
        import sys
        print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
              "of 7.99 GiB of which 100.00 MiB is free. Including non-PyTorch memory, this process has 7.80 GiB "
              "memory in use.", flush=True)
        sys.exit(1)
    '''))
    r, doc = run_json(tmp_path, sys.executable, str(script), "--cache-max-entry-count", "0.9", extra=("--attempts", "3"))
    assert len(doc["attempts"]) <= 3 and all(a["outcome"]["kind"] == "exited" for a in doc["attempts"])
    assert doc["verdict"] in ("not_verified", "not_fixable") and r.code in (1, 6)
    assert doc["reason"]  # an honest account of why it stopped
    tried = [a["command"] for a in doc["attempts"]]
    assert len(set(tried)) == len(tried), "the same command was launched twice"
