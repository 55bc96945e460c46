"""Snapshots of `lmdoctor envs` (English and Chinese) on a small machine built on disk.

The machine is the seed scenario of the gradio VLM demo: conda env `demo` has the tutorial stack
without timm, the pre-built `icamp3_demo` under share/pre_envs has it with timm. Both are conda-style
trees (conda-meta records in conda's format, Python 3.10.14 as the tutorial's) whose site-packages
hold the real ``*.dist-info`` folders of the tutorial's wheels (tests/envbuild.py) and lmdeploy's
TurboMind extension file, so nothing depends on the interpreter that runs the tests. The machine's
temporary root (``/tmp/lmdoctor-envs-XXXXXXXX``, constant length) is the one thing normalised (to ``/MACHINE``); the scan time is not printed off a
terminal. Re-bless like tests/test_snapshots.py:  LMDOCTOR_BLESS=1 python -m pytest tests/test_snapshots_envs.py
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

import envbuild
from conftest import REPO
from test_snapshots import BLESS, SNAPSHOTS, normalise

H100 = "fixtures/facts/h100.json"
PY_RECORD = ("python", "3.10.14", "h955ad1f_0", "pkgs/main")
GRADIO_VLM = ["lmdeploy", "serve", "gradio", "/share/new_models/OpenGVLab/InternVL2-2B", "--cache-max-entry-count", "0.1"]
SCENARIOS = {
    "envs-gradio-vlm": ["envs", "--facts", H100, "--no-discover", "--path", "{root}/share/pre_envs",
                        "--path", "{root}/miniconda3/envs", "--for", "--", *GRADIO_VLM],
    "envs-general": ["envs", "--facts", H100, "--no-discover", "--path", "{root}/share/pre_envs",
                     "--path", "{root}/miniconda3/envs"],
    "envs-gradio-vlm-quiet": ["envs", "--quiet", "--facts", H100, "--no-discover", "--path", "{root}/share/pre_envs",
                              "--path", "{root}/miniconda3/envs", "--for", "--", *GRADIO_VLM],
}
CASES = [(name, lang) for name in SCENARIOS for lang in ("en", "zh")]


def tutorial_env(prefix, wheels, timm: bool) -> None:
    """A conda env as the tutorial built it (`conda create python=3.10`, conda pytorch, pip lmdeploy)."""
    envbuild.conda_meta(prefix, [PY_RECORD] + [(n, v, b.replace(f"py{envbuild.PY}", "py3.10"), c)
                                               for n, v, b, c in envbuild.TORCH_RECORDS])
    site = prefix / "lib" / "python3.10" / "site-packages"
    site.mkdir(parents=True)
    (prefix / "bin").mkdir()
    (prefix / "bin" / "python3.10").write_bytes(b"")
    (prefix / "bin" / "python").symlink_to("python3.10")
    for spec in envbuild.TUTORIAL + (envbuild.TIMM if timm else []):
        with envbuild.zipfile.ZipFile(wheels[spec]) as zf:
            zf.extractall(site, [m for m in zf.namelist() if m.split("/", 1)[0].endswith(".dist-info")])
    for name, version in envbuild.LMDEPLOY_051_REQUIREMENTS:
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "INSTALLER").write_text("pip\n")
    (site / "lmdeploy" / "lib").mkdir(parents=True)
    (site / "lmdeploy" / "lib" / "_turbomind.cpython-310-x86_64-linux-gnu.so").write_bytes(b"")


@pytest.fixture(scope="module")
def machine():
    # a root of constant length (the table's path column is as wide as the longest real path)
    root = Path(tempfile.mkdtemp(prefix="lmdoctor-envs-", dir="/tmp"))
    try:
        wheels = envbuild.fetch(envbuild.TUTORIAL + envbuild.TIMM)
    except envbuild.WheelsUnavailable as exc:
        shutil.rmtree(root, ignore_errors=True)
        if os.environ.get("CI"):
            raise
        pytest.skip(f"real wheels unavailable offline: {exc}")
    tutorial_env(root / "miniconda3" / "envs" / "demo", wheels, timm=False)
    tutorial_env(root / "share" / "pre_envs" / "icamp3_demo", wheels, timm=True)
    (root / "home").mkdir()
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("name,lang", CASES, ids=[f"{n}.{lang}" for n, lang in CASES])
def test_envs_output_matches_snapshot(run_lmdoctor, machine, name, lang):
    args = [a.replace("{root}", str(machine)) for a in SCENARIOS[name]]
    r = run_lmdoctor(*args, env={"LMDOCTOR_LANG": lang, "NO_COLOR": "", "HOME": str(machine / "home"),
                                 "VIRTUAL_ENV": "", "CONDA_PREFIX": "", "CONDA_EXE": "",
                                 "XDG_CONFIG_HOME": str(REPO / "tests" / "snapshots")})
    assert r.err == "", r.err
    shown = [a.replace(str(machine), "/MACHINE") for a in args]
    actual = normalise(f"$ lmdoctor {' '.join(shown)}\n{r.out.replace(str(machine), '/MACHINE')}[exit {r.code}]\n")
    assert str(machine) not in actual
    path = SNAPSHOTS / "envs" / f"{name}.{lang}.txt"
    if BLESS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.is_file(), f"no snapshot {path.name}: run LMDOCTOR_BLESS=1 python -m pytest tests/test_snapshots_envs.py"
    assert actual == path.read_text(encoding="utf-8"), f"{path.name} differs; re-bless if intended and review the diff"
