"""`lmdoctor run` launcher mechanics with real child processes: outcomes, and no orphans on any path."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from conftest import REPO, lmdoctor


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pids):
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def wait_gone(pids, seconds=10.0):
    deadline = time.time() + seconds
    while time.time() < deadline and alive(pids):
        time.sleep(0.1)
    return alive(pids)


def test_success_of_a_plain_command_is_verified(tmp_path):
    r = lmdoctor("run", "--verify-only", "--json", "--log-dir", str(tmp_path), "--", sys.executable, "-c", "print('hello')")
    doc = r.json()
    assert r.code == 0, r.err
    assert doc["verdict"] == "verified"
    assert doc["attempts"][0]["outcome"] == {"kind": "exited", "seconds": doc["attempts"][0]["outcome"]["seconds"], "code": 0}
    assert "hello" in (tmp_path / "attempt-1.log").read_text()


def test_a_server_is_verified_by_its_own_listening_port(tmp_path):
    port = free_port()
    r = lmdoctor("run", "--verify-only", "--json", "--quiet-child", "--log-dir", str(tmp_path), "--",
                 sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1")
    doc = r.json()
    assert r.code == 0, r.err
    out = doc["attempts"][0]["outcome"]
    assert out["kind"] == "ready" and str(port) in out["ready_by"]
    assert not wait_gone(doc["attempts"][0]["pids"]), "verify-only must stop the server"


def test_a_port_answered_by_someone_else_is_not_ready(tmp_path):
    """The banner/port of another server must not count: only our own process tree's socket does."""
    port = free_port()
    other = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        script = f"print('Serving HTTP on 127.0.0.1 port {port} (http://127.0.0.1:{port}/) ...', flush=True); import time; time.sleep(30)"
        r = lmdoctor("run", "--verify-only", "--json", "--timeout", "3", "--attempts", "1", "--log-dir", str(tmp_path),
                     "--", sys.executable, "-c", script)
        assert r.json()["attempts"][0]["outcome"]["kind"] == "timeout"
        assert r.code == 1
    finally:
        other.kill()
        other.wait()


def test_a_hang_times_out_and_the_whole_tree_is_killed(tmp_path):
    r = lmdoctor("run", "--verify-only", "--json", "--timeout", "2", "--attempts", "1", "--log-dir", str(tmp_path),
                 "--", "sh", "-c", "sleep 300 & sleep 301 & wait")
    doc = r.json()
    attempt = doc["attempts"][0]
    assert attempt["outcome"]["kind"] == "timeout"
    assert len(attempt["pids"]) >= 3, attempt["pids"]  # sh and both sleeps were seen
    assert not wait_gone(attempt["pids"]), "processes of a timed-out launch survived"
    assert r.code == 1 and doc["verdict"] == "not_verified"


def test_descendants_that_left_the_process_group_are_killed_too(tmp_path):
    script = ("import subprocess, time; subprocess.Popen(['sleep', '302'], start_new_session=True); "
              "print('spawned', flush=True); time.sleep(300)")
    r = lmdoctor("run", "--verify-only", "--json", "--timeout", "2", "--attempts", "1", "--log-dir", str(tmp_path),
                 "--", sys.executable, "-c", script)
    pids = r.json()["attempts"][0]["pids"]
    assert len(pids) >= 2, pids  # the python child and the sleep that started its own session
    assert not wait_gone(pids)
    leftovers = [p.pid for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "302"]]
    assert not leftovers, "a descendant in its own session survived"


def _start_lmdoctor_serving(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "doctor", "run", "--quiet-child", "--log-dir", str(tmp_path), "--",
                             sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                            cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 20
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the server never came up")
    time.sleep(0.5)  # let lmdoctor finish verification and enter the foreground wait
    tree = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    return proc, tree


def test_ctrl_c_stops_the_foreground_server_and_everything_it_started(tmp_path):
    proc, tree = _start_lmdoctor_serving(tmp_path)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert not wait_gone(tree), "Ctrl-C left processes behind"


def test_killing_lmdoctor_itself_leaves_no_orphan(tmp_path):
    proc, tree = _start_lmdoctor_serving(tmp_path)
    server = [p for p in tree if "http.server" in " ".join(psutil.Process(p).cmdline())]
    assert server, tree
    os.kill(proc.pid, signal.SIGKILL)  # no cleanup code of lmdoctor can run now: the watchdog must act
    proc.wait(timeout=10)
    assert not wait_gone(server, 15), "the server outlived a SIGKILLed lmdoctor"


def test_a_missing_program_is_reported_not_raised(tmp_path):
    r = lmdoctor("run", "--verify-only", "--json", "--log-dir", str(tmp_path), "--", "no-such-program-xyz", "--flag")
    doc = r.json()
    assert doc["attempts"][0]["outcome"]["code"] == 127
    assert r.code == 1 and "Traceback" not in r.err


def test_dry_run_launches_nothing(tmp_path):
    marker = tmp_path / "ran"
    r = lmdoctor("run", "--dry-run", "--json", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    doc = r.json()
    assert r.code == 0 and doc["verdict"] == "dry_run" and not marker.exists()
    assert doc["argv"][-1] == f"open({str(marker)!r}, 'w')" and doc["attempts"] == []


def test_nothing_to_run_is_a_usage_error():
    r = lmdoctor("run", "--")
    assert r.code == 2 and "Traceback" not in r.err
