"""`lmdoctor envs` and the `envs` probe, on real environments built on disk (see tests/envbuild.py).

The machine: a conda base (nothing installed), conda env `demo` (the tutorial stack without timm),
the pre-built `icamp3_demo` under share/pre_envs (the tutorial stack with timm), a venv with
lmdeploy 0.10.0 (no `serve gradio` any more), a venv whose base Python is gone, a venv with an
interrupted install, two symlink loops and a stale environments.txt line.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

import envbuild
from conftest import REPO, lmdoctor

H100 = str(REPO / "fixtures" / "facts" / "h100.json")
GRADIO = ["lmdeploy", "serve", "gradio", "OpenGVLab/InternVL2-2B", "--cache-max-entry-count", "0.1"]


@pytest.fixture(scope="session")
def machine(tmp_path_factory):
    root = tmp_path_factory.mktemp("machine")
    try:
        yield envbuild.build_machine(root)
    except envbuild.WheelsUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"real wheels unavailable offline: {exc}")
    finally:
        shutil.rmtree(root, ignore_errors=True)  # ~800 MB of installed wheels


def run(machine, *args, **extra):
    return lmdoctor(*args, env=envbuild.machine_environ(machine, VIRTUAL_ENV="", CONDA_PREFIX="", **extra))


def envs_json(machine, *args):
    r = run(machine, "envs", "--json", *args)
    assert r.code in (0, 1, 3), r.err
    doc = r.json()
    assert doc["exit_code"] == r.code
    return doc, {e["name"]: e for e in doc["envs"]}


def codes(env):
    return [r["code"] for r in env["reasons"]]


def test_the_tutorial_env_wins_for_an_internvl_gradio_demo(machine):
    doc, by = envs_json(machine, "--facts", H100, "--path", str(machine["venvs"]), "--for", "--", *GRADIO)
    assert (doc["schema_version"], doc["command"], doc["verdict"], doc["exit_code"]) == (1, "envs", "ready", 0)
    names = [e["name"] for e in doc["envs"]]
    assert names[0] == "icamp3_demo"
    icamp3 = by["icamp3_demo"]
    assert icamp3["verdict"] == "ready" and icamp3["reasons"] == []
    assert icamp3["packages"] == {"lmdeploy": "0.5.1", "torch": "2.1.2", "transformers": "4.38.2", "timm": "1.0.7",
                                  "einops": "0.8.0", "gradio": "4.36.1"}
    assert icamp3["python_version"] == envbuild.PY_FULL and icamp3["kind"] == "conda"
    # Outside conda's envs dirs, conda activates it by path; the run command uses its own lmdeploy.
    assert doc["best"]["activate"] == f"conda activate {machine['icamp3_demo']}"
    assert doc["best"]["run"] == f"{machine['icamp3_demo']}/bin/lmdeploy " + " ".join(GRADIO[1:])
    demo = by["demo"]
    assert demo["verdict"] == "unsuitable" and codes(demo)[0] == "missing_packages"
    assert "timm" in demo["reason"] and "einops" not in demo["reason"]
    assert demo["reasons"][0]["rules"] == ["PY013"]          # the rule check uses says the same, not twice
    assert demo["activate"] == "conda activate demo"          # found by name in the base install's envs/
    new = by["lmdeploy-new"]
    assert new["verdict"] == "unsuitable" and codes(new)[0] == "subcommand_removed"
    assert "removed in 0.10.0" in new["reason"]
    if envbuild.torch_wheel() is not None:                    # a real torch wheel's metadata: 2.13.0+cpu
        assert "out_of_range" in codes(new) and new["packages"]["torch"].startswith("2.13.0")
    assert codes(by["base"]) == ["program_missing", "missing_packages"] and "conda base" in by["base"]["sources"]
    assert by["broken"]["verdict"] == "broken"
    assert [p["code"] for p in by["broken"]["problems"]] == ["dangling_python"]
    assert by["halfdone"]["verdict"] == "broken"
    assert [p["code"] for p in by["halfdone"]["problems"]] == ["missing_metadata"]
    order = {"ready": 0, "warnings": 1, "unsuitable": 2, "broken": 3}
    assert [order[e["verdict"]] for e in doc["envs"]] == sorted(order[e["verdict"]] for e in doc["envs"])
    problems = {(os.path.basename(p["path"]), p["code"]) for p in doc["problems"]}
    assert {("loop", "symlink_loop"), ("self", "symlink_loop"), ("deleted", "stale_entry")} <= problems
    assert doc["summary"]["scanned"] == len(doc["envs"]) >= 7


def test_a_model_without_a_command_checks_support_and_packages_only(machine):
    doc, by = envs_json(machine, "--path", str(machine["venvs"]), "--model", "OpenGVLab/InternVL2-2B")
    assert doc["best"]["name"] == "icamp3_demo"
    assert "subcommand_removed" not in codes(by["lmdeploy-new"])
    assert codes(by["demo"]) == ["missing_packages"]


def test_a_text_model_does_not_need_timm(machine):
    doc, by = envs_json(machine, "--for", "--", "lmdeploy", "serve", "api_server", "internlm/internlm2_5-7b-chat")
    assert by["demo"]["verdict"] == by["icamp3_demo"]["verdict"] == "ready"
    assert doc["best"]["name"] in ("demo", "icamp3_demo") and doc["exit_code"] == 0


def test_no_suitable_env_exits_1(machine):
    doc, by = envs_json(machine, "--no-discover", "--path", str(machine["venvs"]), "--for", "--", *GRADIO)
    assert set(by) == {"lmdeploy-new", "broken", "halfdone"}
    assert (doc["verdict"], doc["exit_code"], doc["best"]) == ("none_suitable", 1, None)


def test_the_table_shows_every_env_and_the_command_to_use(machine):
    r = run(machine, "envs", "--path", str(machine["venvs"]), "--for", "--", *GRADIO)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    header = next(line for line in lines if "lmdeploy" in line and "transformers" in line)
    for column in ("env", "path", "Python", "torch", "timm", "verdict", "main reason"):
        assert column in header
    row = next(line for line in lines if line.split()[1:2] == ["icamp3_demo"])
    assert "0.5.1" in row and "1.0.7" in row and "ready" in row
    assert any("internvl needs timm, not installed" in line for line in lines)
    assert f"$ conda activate {machine['icamp3_demo']}" in r.out
    assert "symlink loop" in r.out and "does not exist" in r.out


def test_check_names_the_ready_env_when_the_current_one_lacks_timm(machine):
    r = run(machine, "check", "--json", "--env", "demo", "--", *GRADIO)
    finding = next(f for f in r.json()["findings"] if f["rule"] == "PY013")
    assert finding["fixes"][0]["command"] == f"conda activate {machine['icamp3_demo']}"
    assert "icamp3_demo" in finding["fixes"][0]["summary"]
    # installing into the examined env uses that env's own interpreter, whichever env is active
    assert finding["fixes"][1]["command"] == f"{machine['demo']}/bin/python -m pip install timm==1.0.7"


def test_the_probe_scans_only_when_the_examined_env_has_a_problem(machine):
    healthy = run(machine, "facts", "--json", "--env", str(machine["icamp3_demo"])).json()
    assert healthy["probes"]["envs"]["status"] == "ok"
    assert not [k for k in healthy["facts"] if k.startswith("envs.")]
    # torch 2.13 is outside lmdeploy 0.10.0's range: the env is the cause, another one is ready.
    if envbuild.torch_wheel() is None:
        pytest.skip("no torch wheel on this machine to give lmdeploy-new an out-of-range torch")
    sick = run(machine, "facts", "--json", "--env", str(machine["new"])).json()["facts"]
    assert "torch 2.13.0" in sick["envs.current_problem"]
    assert sick["envs.ready_alternative"] in ("demo", "icamp3_demo")
    assert sick["envs.ready"][:2] == ["demo", "icamp3_demo"] and sick["envs.scanned"] >= 4  # base, demo, icamp3_demo, lmdoctor's own


def test_facts_of_a_conda_env_include_what_conda_installed(machine):
    facts = run(machine, "facts", "--json", "--env", "demo").json()["facts"]
    assert facts["py.env.kind"] == "conda" and facts["py.env.name"] == "demo"
    assert (facts["pkg.torch.version"], facts["pkg.torch.cuda_build"]) == ("2.1.2", "12.1")
    assert facts["pkg.triton.version"] == "2.1.0"                       # conda's torchtriton
    assert facts["pkg.lmdeploy.version"] == "0.5.1" and facts["pkg.lmdeploy.turbomind"] is True
    assert "pkg.timm.version" not in facts


def _without_dac(argv):
    """Run as root without the capabilities that bypass file permissions, so chmod 000 bites."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a folder unreadable")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", *argv]


def test_unreadable_folders_are_reported_not_fatal(machine, tmp_path):
    import json
    import sys
    shared = tmp_path / "shared"
    locked = shared / "locked"
    locked.mkdir(parents=True)
    (shared / "icamp3_demo").symlink_to(machine["icamp3_demo"])
    sealed = envbuild.make_venv(shared / "sealed")
    site = envbuild.site_packages(sealed)
    for folder in (locked, site):
        folder.chmod(0)
    try:
        env = dict(os.environ, **envbuild.machine_environ(machine), LMDOCTOR_LANG="en")
        proc = subprocess.run(_without_dac([sys.executable, "-m", "doctor", "envs", "--json", "--no-discover",
                                            "--path", str(shared), "--for", "--", *GRADIO]),
                              capture_output=True, text=True, env=env, cwd=str(REPO), timeout=120)
    finally:
        for folder in (locked, site):
            folder.chmod(stat.S_IRWXU)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    by = {e["name"]: e for e in doc["envs"]}
    assert by["icamp3_demo"]["verdict"] == "ready"
    assert by["sealed"]["verdict"] == "broken"
    assert [p["code"] for p in by["sealed"]["problems"]] == ["unreadable_site"]
    assert [(p["path"], p["code"]) for p in doc["problems"]] == [(str(locked), "unreadable_dir")]
    assert "Permission denied" in doc["problems"][0]["text"]


@pytest.mark.parametrize("args,message", [
    (["--for"], "--for needs the command"),
    (["--path", "/nonexistent/pre_envs"], "no such directory"),
    (["--no-discover"], "--no-discover needs at least one --path"),
    (["--facts", "/nonexistent.json"], "no such file"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    r = lmdoctor("envs", *args)
    assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1
