"""Probes against the real machine, driven through a child `lmdoctor` process.

nvidia-smi: a real executable printing nvidia-smi's CSV is put first on PATH (this machine has no
NVIDIA driver, so NVML fails and lmdoctor falls back to it); a hung one proves that the timeout turns
GPU facts into "couldn't check" instead of a hang. Ports: a really bound socket. inotify: real
watches and instances held by this test process. Env vars: real secrets in the child's environment.
"""
from __future__ import annotations

import ctypes
import errno
import os
import socket
import stat
import sys
import time
from pathlib import Path

import pytest

from conftest import lmdoctor
from realenv import env_without_venv, finding_ids

UUID = "GPU-5e0c1c35-1f5e-8c4a-b9a8-3d2f0f6f7a11"
SMI_HEADER = """\
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 535.104.05             Driver Version: 535.104.05   CUDA Version: 12.2     |
|-----------------------------------------+------------------------+----------------------+
"""


def _nvml_works() -> bool:
    try:
        import pynvml
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


needs_no_nvml = pytest.mark.skipif(_nvml_works(), reason="a real NVIDIA driver answers here; nvidia-smi is not consulted")


def fake_smi(bin_dir: Path, body: str) -> dict:
    """Write an executable `nvidia-smi` into bin_dir and return an environment that finds it first."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + body)
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return env_without_venv({"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}"})


A10_SMI = f"""\
case "$*" in
  *--query-gpu=*) echo "0, NVIDIA A10, {UUID}, 8.6, 23028, 15000, 8028, 535.104.05, [N/A]" ;;
  *--query-compute-apps=*) echo "4242, /usr/bin/python3, 14800, {UUID}" ;;
  *) cat <<'EOF'
{SMI_HEADER}EOF
  ;;
esac
"""


@needs_no_nvml
def test_nvidia_smi_fallback_parses_the_csv(tmp_path):
    env = fake_smi(tmp_path / "bin", A10_SMI)
    facts = lmdoctor("facts", "--json", env=env).json()["facts"]
    assert facts["gpu.source"] == "nvidia-smi"
    assert facts["gpu.count"] == 1 and facts["gpu.visible_count"] == 1
    assert facts["gpu.0.name"] == "NVIDIA A10" and facts["gpu.0.cc"] == "8.6"
    assert (facts["gpu.0.total_mib"], facts["gpu.0.used_mib"], facts["gpu.0.free_mib"]) == (23028, 15000, 8028)
    assert facts["gpu.0.processes"] == [{"pid": 4242, "name": "/usr/bin/python3", "used_mib": 14800, "self": False}]
    assert facts["gpu.0.other_mib"] == 14800 and facts["gpu.0.mig"] is False
    assert facts["cuda.driver.version"] == "535.104.05" and facts["cuda.driver.max_cuda"] == "12.2"
    assert facts["cuda.driver.library_found"] is False
    doc = lmdoctor("check", "--json", env=env).json()
    other = {f["rule"]: f for f in doc["findings"]}["GPU011"]
    assert other["title"] == "Other processes hold 14.5 GiB of GPU memory; only 7.8 GiB of 22.5 GiB is free"
    assert other["evidence"][-1]["value"] == ["GPU0: pid 4242 /usr/bin/python3 (14800 MiB)"]
    assert "GPU001" not in finding_ids(doc)


@needs_no_nvml
def test_cuda_visible_devices_hiding_the_gpu(tmp_path):
    env = fake_smi(tmp_path / "bin", A10_SMI)
    env["CUDA_VISIBLE_DEVICES"] = ""
    doc = lmdoctor("check", "--json", env=env).json()
    hidden = {f["rule"]: f for f in doc["findings"]}["GPU002"]
    assert hidden["title"] == "CUDA_VISIBLE_DEVICES='' hides every GPU"
    assert hidden["fixes"][0]["command"] == "unset CUDA_VISIBLE_DEVICES"


@needs_no_nvml
def test_old_nvidia_smi_without_compute_cap(tmp_path):
    body = A10_SMI.replace('  *--query-gpu=*)', '  *compute_cap*) echo \'Field "compute_cap" is not a valid field to query.\'; exit 2 ;;\n'
                           '  *--query-gpu=*)').replace("8.6, ", "", 1)
    facts = lmdoctor("facts", "--json", env=fake_smi(tmp_path / "bin", body)).json()["facts"]
    assert facts["gpu.0.name"] == "NVIDIA A10" and facts["gpu.0.free_mib"] == 8028
    assert "gpu.0.cc" not in facts


@needs_no_nvml
def test_hung_nvidia_smi_makes_gpu_facts_unknown_not_a_hang(tmp_path):
    env = fake_smi(tmp_path / "bin", "exec sleep 60\n")
    start = time.monotonic()
    run = lmdoctor("check", "--json", env=env, timeout=40)
    elapsed = time.monotonic() - start
    assert elapsed < 15, f"check took {elapsed:.1f}s with a hung nvidia-smi"
    doc = run.json()
    gpu001 = [u for u in doc["unchecked"] if u["rule"] == "GPU001"]
    assert gpu001 and "nvidia-smi did not answer within 4s" in " ".join(gpu001[0]["reasons"])
    assert "GPU001" not in finding_ids(doc)                 # "couldn't check", not "no GPU"
    facts = lmdoctor("facts", "--json", env=env, timeout=40).json()
    assert "gpu.count" not in facts["facts"] and "did not answer" in facts["unknown"]["gpu.count"]


def test_port_held_by_a_real_listening_socket():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        run = lmdoctor("check", "--json", "--lmdeploy-version", "0.5.1", "--", "lmdeploy", "serve", "api_server",
                       "/root/models/internlm2_5-7b-chat", "--server-name", "127.0.0.1", "--server-port", str(port))
    doc = run.json()
    finding = {f["rule"]: f for f in doc["findings"]}["NET001"]
    assert finding["title"] == f"Port {port} is already in use"
    holder = [e for e in finding["evidence"] if e.get("fact") == "net.planned.holder"]
    assert holder and holder[0]["value"].startswith(f"pid {os.getpid()} (")
    port_fix = finding["fixes"][0]
    assert port_fix["safety"] == "auto" and port_fix["diff"][0].startswith(f"--server-port {port} → ")
    new_port = int(port_fix["diff"][0].split("→ ")[1])
    assert new_port > port and port_fix["argv"][-1] == str(new_port)
    assert any(f.get("command") == f"kill {os.getpid()}" for f in finding["fixes"])


def test_port_probe_reports_free_and_bind_errors():
    with socket.socket() as probe_sock:
        probe_sock.bind(("127.0.0.1", 0))
        free_port = probe_sock.getsockname()[1]
    ok = lmdoctor("check", "--json", "--", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
                  "--server.port", str(free_port)).json()
    assert not {"NET001", "NET002"} & set(finding_ids(ok)) and "NET001" in ok["passed"]
    # 192.0.2.0/24 is TEST-NET-1: never an address of this machine.
    bad = lmdoctor("check", "--json", "--lmdeploy-version", "0.5.1", "--", "lmdeploy", "serve", "api_server",
                   "/m", "--server-name", "192.0.2.1").json()
    err = {f["rule"]: f for f in bad["findings"]}["NET002"]
    assert err["title"].startswith("Cannot bind 192.0.2.1:23333: ") and "(errno 99)" in err["title"]
    assert err["fixes"][0]["diff"] == ["--server-name 192.0.2.1 → 0.0.0.0"]


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    return libc


def test_inotify_watches_of_this_user_are_counted(tmp_path):
    libc = _libc()
    fd = libc.inotify_init1(os.O_CLOEXEC)
    assert fd >= 0
    try:
        for i in range(40):
            d = tmp_path / f"d{i}"
            d.mkdir()
            assert libc.inotify_add_watch(fd, os.fsencode(str(d)), 0x2) >= 0   # IN_MODIFY
        facts = lmdoctor("facts", "--json", "os.inotify.*").json()["facts"]
    finally:
        os.close(fd)
    assert facts["os.inotify.user_watches"] >= 40 and facts["os.inotify.user_instances"] >= 1
    assert facts["os.inotify.can_watch"] is True
    limit = int(Path("/proc/sys/fs/inotify/max_user_watches").read_text())
    assert facts["os.inotify.max_user_watches"] == limit


def test_inotify_instances_exhausted_is_seen_by_a_real_attempt():
    """Hold every inotify instance this user may have; the child's test watch then fails with EMFILE."""
    libc = _libc()
    limit = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
    if limit > 4096:
        pytest.skip(f"max_user_instances is {limit}; too many to exhaust politely")
    held = []
    try:
        while True:
            fd = libc.inotify_init1(os.O_CLOEXEC)
            if fd < 0:
                assert ctypes.get_errno() == errno.EMFILE
                break
            held.append(fd)
            if len(held) > limit:
                pytest.skip("instances are not limited per user here")
        facts = lmdoctor("facts", "--json", "os.inotify.*").json()["facts"]
        doc = lmdoctor("check", "--json").json()
    finally:
        for fd in held:
            os.close(fd)
    assert facts["os.inotify.can_watch"] is False and "EMFILE" in facts["os.inotify.error"]
    host003 = {f["rule"]: f for f in doc["findings"]}["HOST003"]
    assert host003["severity"] == "warning" and "EMFILE" in host003["explanation"]
    assert lmdoctor("facts", "--json", "os.inotify.*").json()["facts"]["os.inotify.can_watch"] is True


def test_secrets_and_proxy_credentials_are_redacted():
    secret_env = {"HF_TOKEN": "hf_abcdefSECRET1", "OPENAI_API_KEY": "sk-SECRET2", "LMDEPLOY_API_KEYS": "SECRET3",
                  "HTTPS_PROXY": "http://alice:SECRET4@proxy.example:3128", "http_proxy": "bob:SECRET5@10.0.0.1:8080",
                  "HF_ENDPOINT": "https://hf-mirror.com", "CUDA_VISIBLE_DEVICES": "0,1", "UNRELATED_VAR": "x"}
    run = lmdoctor("facts", "--json", env=env_without_venv(secret_env))
    assert "SECRET" not in run.out
    facts = run.json()["facts"]
    assert facts["env.HF_TOKEN"] == facts["env.OPENAI_API_KEY"] == facts["env.LMDEPLOY_API_KEYS"] == "<set>"
    assert facts["env.HTTPS_PROXY"] == "http://[REDACTED]@proxy.example:3128"
    assert facts["env.http_proxy"] == "[REDACTED]@10.0.0.1:8080"
    assert facts["env.HF_ENDPOINT"] == "https://hf-mirror.com" and facts["env.CUDA_VISIBLE_DEVICES"] == "0,1"
    assert "env.UNRELATED_VAR" not in facts
    assert "SECRET" not in lmdoctor("check", "--json", env=env_without_venv(secret_env)).out
