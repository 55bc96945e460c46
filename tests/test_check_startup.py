"""What keeps `check` fast, checked by what it does (not by timing): it never imports torch or
lmdeploy, and an installed lmdoctor reads its pre-parsed data bundle instead of YAML (setup.py
writes doctor/_rules/_bundle.json; here a rules folder with a bundle stands in for the wheel's)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from conftest import REPO, lmdoctor
from doctor import yamlio

SNAPSHOT = str(REPO / "fixtures" / "facts" / "h100-ballast-8gib-free.json")


def imports(*args: str, env=None) -> set:
    """Every module `python -X importtime -m doctor ARGS` imports."""
    full = dict(os.environ)
    full.update(env or {})
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "doctor", *args], capture_output=True,
                          text=True, env=full, cwd=str(REPO), timeout=60)
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def bundled_rules(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    (rules / yamlio.BUNDLE).write_text(json.dumps(yamlio.build_bundle(rules)))
    return rules


def test_check_never_imports_torch_or_lmdeploy():
    mods = imports("check", "--json", "--", "lmdeploy", "serve", "api_server", "/root/models/InternVL2-2B")
    assert mods and not {m for m in mods if m.split(".")[0] in ("torch", "lmdeploy", "transformers", "numpy")}


def test_installed_layout_reads_the_bundle_not_yaml(tmp_path):
    rules = bundled_rules(tmp_path)
    env = {"LMDOCTOR_RULES": str(rules)}
    mods = imports("check", "--json", "--facts", SNAPSHOT, env=env)
    assert "doctor.yamlio" in mods and "yaml" not in mods
    with_bundle = lmdoctor("check", "--json", "--facts", SNAPSHOT, env=env).json()
    plain = lmdoctor("check", "--json", "--facts", SNAPSHOT).json()
    assert with_bundle["findings"] == plain["findings"] and with_bundle["passed"] == plain["passed"]


def test_an_edited_file_is_read_from_its_yaml_not_the_stale_bundle(tmp_path):
    rules = bundled_rules(tmp_path)
    rule = rules / "gpu" / "GPU011-other-processes-hold-gpu-memory.yaml"
    rule.write_text(rule.read_text().replace("{fact: gpu.other_mib, ge: 1024}", "{fact: gpu.other_mib, ge: 99999}"))
    doc = lmdoctor("check", "--json", "--facts", SNAPSHOT, env={"LMDOCTOR_RULES": str(rules)}).json()
    assert "GPU011" not in [f["rule"] for f in doc["findings"]] and "GPU011" in doc["passed"]
