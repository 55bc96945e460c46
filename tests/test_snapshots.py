"""Snapshots of the rendered output (English and Chinese) for fixed fact snapshots.

The expected text lives in tests/snapshots/<name>.<lang>.txt: the command, its stdout, its exit
code. Only what legitimately varies is normalised (lmdoctor's own version). After an intended
change, re-bless and review the diff:  LMDOCTOR_BLESS=1 python -m pytest tests/test_snapshots.py
"""
from __future__ import annotations

import os
import re

import pytest

from conftest import REPO

SNAPSHOTS = REPO / "tests" / "snapshots"
BLESS = bool(os.environ.get("LMDOCTOR_BLESS"))
BALLAST = "fixtures/facts/h100-ballast-8gib-free.json"
SEED_OOM = "fixtures/logs/oom_weight_load/seed-000-internlm2_5-7b-chat-turbomind.log"
PORT_LOG = "fixtures/logs/port_in_use/api-server-port-in-use.log"

SCENARIOS = {
    "check-cpu-no-gpu": ["check", "--facts", "fixtures/facts/cpu-no-gpu.json"],
    "check-cpu-no-gpu-quiet": ["check", "--quiet", "--facts", "fixtures/facts/cpu-no-gpu.json"],
    "check-h100-healthy": ["check", "--facts", "fixtures/facts/h100.json"],
    "check-h100-healthy-quiet": ["check", "--quiet", "--facts", "fixtures/facts/h100.json"],
    "check-8gib-internlm2_5-7b-chat": ["check", "--facts", BALLAST, "--", "lmdeploy", "chat",
                                       "/root/models/internlm2_5-7b-chat"],
    "check-8gib-internvl2-26b-awq": ["check", "--facts", BALLAST, "--", "lmdeploy", "serve", "api_server",
                                     "/root/models/InternVL2-26B-w4a16-4bit", "--model-format", "awq",
                                     "--quant-policy", "4", "--cache-max-entry-count", "0.1", "--server-name",
                                     "0.0.0.0", "--server-port", "23333", "--tp", "1"],
    "check-h100-streamlit": ["check", "--facts", "fixtures/facts/h100.json", "--", "streamlit", "run",
                             "/root/demo/Tutorial/tools/streamlit_demo.py", "--server.address", "127.0.0.1",
                             "--server.port", "6006"],
    "check-cpu-no-gpu-ignored": ["check", "--facts", "fixtures/facts/cpu-no-gpu.json", "--ignore", "GPU001"],
    "report-8gib-internlm2_5-7b-chat": ["report", "fixtures/report/internlm2_5-7b-chat-tm-oom.log", "--facts", BALLAST,
                                        "--", "lmdeploy", "chat", "/root/models/internlm2_5-7b-chat"],
    "rules-show-GPU001": ["rules", "show", "GPU001"],
    # explain: the seed TurboMind OOM and the port-in-use log, judged with real snapshots
    "explain-seed-oom-h100": ["explain", SEED_OOM, "--facts", "fixtures/facts/h100.json"],
    "explain-seed-oom-8gib": ["explain", SEED_OOM, "--facts", BALLAST],
    "explain-port-in-use": ["explain", PORT_LOG, "--facts", "fixtures/facts/h100.json"],
    "explain-port-in-use-quiet-ignored": ["explain", "--quiet", PORT_LOG, "--facts", "fixtures/facts/h100.json",
                                          "--ignore", "NET101"],
    "explain-healthy-quiet": ["explain", "--quiet", "fixtures/logs/healthy/api-server-healthy.log", "--no-facts"],
    # run --dry-run: the pre-flight of a planned launch, judged with a snapshot; nothing is launched
    "run-dry-run-8gib-internlm2_5-7b-chat": ["run", "--dry-run", "--facts", BALLAST, "--", "lmdeploy", "chat",
                                             "/root/models/internlm2_5-7b-chat"],
    "run-dry-run-apply-8gib-1_8b": ["run", "--dry-run", "--apply-preflight", "--facts", BALLAST, "--", "lmdeploy",
                                    "serve", "api_server", "/root/models/internlm2_5-1_8b-chat",
                                    "--cache-max-entry-count", "0.8"],
    "run-dry-run-quiet-ignored": ["run", "--dry-run", "--quiet", "--ignore", "PY002", "--facts", BALLAST, "--",
                                  "lmdeploy", "chat", "/root/models/internlm2_5-7b-chat"],
}
CASES = [(name, lang) for name in SCENARIOS for lang in ("en", "zh")]


def normalise(text: str) -> str:
    return re.sub(r"lmdoctor \d+\.\d+\.\d+(?:\.?(?:dev|post|rc|a|b)\d+)*(?:\+[\w.]*\w)?", "lmdoctor X.Y.Z", text)


@pytest.mark.parametrize("name,lang", CASES, ids=[f"{n}.{lang}" for n, lang in CASES])
def test_rendered_output_matches_snapshot(run_lmdoctor, name, lang):
    args = SCENARIOS[name]
    r = run_lmdoctor(*args, env={"LMDOCTOR_LANG": lang, "NO_COLOR": "", "XDG_CONFIG_HOME": str(REPO / "tests" / "snapshots")})
    assert r.err == "", r.err
    actual = normalise(f"$ lmdoctor {' '.join(args)}\n{r.out}[exit {r.code}]\n")
    path = SNAPSHOTS / f"{name}.{lang}.txt"
    if BLESS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.is_file(), f"no snapshot {path.name}: run LMDOCTOR_BLESS=1 python -m pytest tests/test_snapshots.py"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{path.name} differs; if intended, re-bless with LMDOCTOR_BLESS=1 and review the diff"


def test_every_snapshot_file_belongs_to_a_case():
    known = {f"{n}.{lang}.txt" for n, lang in CASES}
    stale = sorted(p.name for p in SNAPSHOTS.glob("*.txt") if p.name not in known)
    assert not stale, f"snapshots without a case (delete them): {stale}"
