"""Bad input to `check` / `facts`: one clear line on stderr and exit 2 (usage error), never a traceback.
Plus the exit-code contract of `check` on real snapshots (0 / 1 / 3 / 4 and --strict)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import REPO, lmdoctor

SNAPSHOTS = REPO / "fixtures" / "facts"


def assert_usage_error(run, *fragments: str) -> None:
    assert run.code == 2, (run.code, run.out, run.err)
    assert "Traceback" not in run.err and run.out == ""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lmdoctor: error: "), run.err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("command", ["check", "facts"])
def test_nonexistent_python(command, tmp_path):
    assert_usage_error(lmdoctor(command, "--python", str(tmp_path / "nope" / "bin" / "python")), "no such file")


def test_python_folder_without_interpreter(tmp_path):
    assert_usage_error(lmdoctor("check", "--python", str(tmp_path)), "a folder without bin/python")


def test_python_not_executable(tmp_path):
    script = tmp_path / "python"
    script.write_text("not a program\n")
    script.chmod(0o644)
    assert_usage_error(lmdoctor("check", "--python", str(script)), "not executable")


def test_python_and_env_together(tmp_path):
    assert_usage_error(lmdoctor("check", "--python", "/usr/bin/python3", "--env", "base"), "either --python or --env")


def test_unknown_conda_env():
    assert_usage_error(lmdoctor("check", "--env", "no-such-env-xyz", env={"CONDA_ENVS_PATH": ""}),
                       "conda env 'no-such-env-xyz' not found")


@pytest.mark.parametrize("name,content,fragment", [
    ("missing.json", None, "no such file"),
    ("malformed.json", '{"kind": "lmdoctor-facts", "facts": {', "malformed JSON at line 1"),
    ("binary.json", b"\xff\xfe\x00garbage", "not UTF-8 text"),
    ("other.json", json.dumps({"schema_version": 1, "findings": []}), "not an lmdoctor facts snapshot"),
    ("newer.json", json.dumps({"kind": "lmdoctor-facts", "schema_version": 99, "facts": {}}), "upgrade lmdoctor"),
    ("facts-not-object.json", json.dumps({"kind": "lmdoctor-facts", "facts": []}), '"facts" must be an object'),
])
@pytest.mark.parametrize("command", ["check", "facts"])
def test_bad_facts_files(command, tmp_path, name, content, fragment):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert_usage_error(lmdoctor(command, "--facts", str(path)), str(path), fragment)


def test_facts_file_is_a_directory(tmp_path):
    assert_usage_error(lmdoctor("check", "--facts", str(tmp_path)), "is a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of their mode")
def test_unreadable_facts_file(tmp_path):
    path = tmp_path / "secret.json"
    shutil.copy(SNAPSHOTS / "h100.json", path)
    path.chmod(0)
    assert_usage_error(lmdoctor("check", "--facts", str(path)), "permission denied")


def test_exit_codes_on_real_snapshots(tmp_path):
    errors = lmdoctor("check", "--json", "--facts", str(SNAPSHOTS / "cpu-no-gpu.json"))
    assert errors.code == 1 and errors.json()["verdict"] == "errors"
    assert errors.json()["findings"][0]["rule"] == "GPU001"           # errors rank before warnings
    warnings = lmdoctor("check", "--json", "--facts", str(SNAPSHOTS / "h100-ballast-8gib-free.json"))
    assert warnings.code == 3 and warnings.json()["verdict"] == "warnings"
    assert [f["rule"] for f in warnings.json()["findings"]] == ["GPU011", "PY001"]
    strict = lmdoctor("check", "--json", "--strict", "--facts", str(SNAPSHOTS / "h100-ballast-8gib-free.json"))
    assert strict.code == 1 and strict.json()["exit_code"] == 1
    # A snapshot where every probe answered and nothing is wrong: the H100 with lmdeploy's own
    # requirements met, recorded by a newer lmdoctor that also observed the slice tool and inotify.
    doc = json.loads((SNAPSHOTS / "h100.json").read_text())
    doc["facts"].update({"pkg.lmdeploy.version": "0.18.0", "pkg.lmdeploy.turbomind": True,
                         "os.inotify.can_watch": True})
    doc["covered"] += ["gpu.slice_tool"]
    healthy = tmp_path / "healthy.json"
    healthy.write_text(json.dumps(doc))
    run = lmdoctor("check", "--json", "--facts", str(healthy))
    assert (run.code, run.json()["verdict"], run.json()["findings"]) == (0, "healthy", [])
    # The same with the GPU probe failed: nothing wrong, but not everything checked.
    doc["unknown"] = {"gpu.*.cc": "probe 'nvidia' timed out after 6s"}
    del doc["facts"]["gpu.0.cc"]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(doc))
    run = lmdoctor("check", "--json", "--facts", str(partial))
    assert run.code == 4 and run.json()["verdict"] == "unchecked"
    assert lmdoctor("check", "--strict", "--facts", str(partial)).code == 1


def test_check_loads_exactly_the_environment_rules():
    from doctor.ruleset import load_rules
    assert [r.id for r in load_rules(kind="env").rules] == [r.id for r in load_rules().env_rules()]
