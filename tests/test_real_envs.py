"""`check` / `facts` on real throwaway environments: real venvs, real wheels installed by pip --no-deps,
lmdoctor run as a child process with `--python` / `--env`, exactly as a user runs it.

What the environments contain is what the camp3 tutorial environment goes wrong with: lmdeploy
installed without its requirements (no torch), a transformers outside the PyTorch engine's window,
numpy 2 next to an lmdeploy that pins numpy<2, an InternVL launch without timm, a TurboMind-less
install, an lmdeploy source checkout shadowing the wheel, duplicate metadata folders, a broken
interpreter and a conda-style env tree.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import lmdoctor
from realenv import (LMDEPLOY, download, env_without_venv, extract_package, finding_ids, make_venv, pip_install,
                     site_packages, wheel)

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 14) or not sys.platform.startswith("linux"),
                                reason="lmdeploy publishes Linux wheels for CPython 3.8-3.13 only")

V = LMDEPLOY["version"]
INTERNVL = "/root/share/new_models/OpenGVLab/InternVL2-2B"


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """Real wheels from PyPI, downloaded once per session (LMDOCTOR_WHEELHOUSE keeps them across runs)."""
    keep = os.environ.get("LMDOCTOR_WHEELHOUSE")
    dest = Path(keep) if keep else tmp_path_factory.mktemp("wheelhouse")
    wanted = [f"lmdeploy=={V}", f"transformers=={LMDEPLOY['transformers_outside_pt_window']}", "numpy>=2",
              "einops==0.8.0"]
    if not all(list(dest.glob(f"{w.split('=')[0].split('>')[0]}-*.whl")) for w in wanted):
        download(wanted, dest)
    if not list(dest.glob("einops-0.7.0-*.whl")):
        download(["einops==0.7.0"], dest)
    return dest


@pytest.fixture(scope="session")
def tutorial_venv(tmp_path_factory, wheelhouse) -> Path:
    """lmdeploy + transformers + numpy 2 + einops, each --no-deps: no torch, no timm."""
    python = make_venv(tmp_path_factory.mktemp("envs") / "tutorial")
    pip_install(python, [wheel(wheelhouse, "lmdeploy", V), wheel(wheelhouse, "transformers"),
                         wheel(wheelhouse, "numpy"), wheel(wheelhouse, "einops", "0.8.0")])
    return python


def facts_of(*args: str, **kw) -> dict:
    run = lmdoctor("facts", "--json", *args, **kw)
    assert run.code == 0, run.err
    return run.json()["facts"]


def test_facts_of_a_real_venv_through_python(tutorial_venv):
    facts = facts_of("--python", str(tutorial_venv), env=env_without_venv())
    assert facts["pkg.lmdeploy.version"] == V
    assert facts["pkg.lmdeploy.turbomind"] is True                     # the wheel's lib/_turbomind*.so
    assert facts["pkg.lmdeploy.requires_cuda_major"] == "12"
    assert facts["pkg.transformers.version"] == LMDEPLOY["transformers_outside_pt_window"]
    assert facts["pkg.numpy.version"].startswith("2.")
    assert "pkg.torch.version" not in facts and "pkg.timm.version" not in facts
    assert "torch" in facts["compat.lmdeploy.missing_requires"]
    assert facts["py.version"] == "%d.%d.%d" % sys.version_info[:3]
    assert facts["py.env.kind"] == "venv" and facts["py.runs"] is True and facts["py.is_lmdoctor_env"] is False
    assert facts["py.prefix"] == str(tutorial_venv.parent.parent)
    assert facts["pkg.lmdeploy.location"] == str(site_packages(tutorial_venv.parent.parent))


def test_check_of_a_real_venv_with_a_planned_internvl_launch(tutorial_venv):
    run = lmdoctor("check", "--json", "--python", str(tutorial_venv), "--",
                   "lmdeploy", "serve", "api_server", INTERNVL, env=env_without_venv())
    doc = run.json()
    ids = finding_ids(doc)
    assert run.code == 1 and doc["exit_code"] == 1 and doc["verdict"] == "errors"
    assert "PY017" in ids                                             # lmdeploy without torch & co
    assert "PY010" in ids                                             # transformers above the PT window
    assert "PY013" in ids                                             # InternVL without timm
    assert ("PY012" in ids) is LMDEPLOY["pins_numpy_below_2"]         # numpy 2 under lmdeploy<=0.10.0
    assert not {"PY001", "PY002", "PY003", "PY004", "PY005"} & set(ids)
    by_id = {f["rule"]: f for f in doc["findings"]}
    timm = "timm==" + LMDEPLOY["timm_pin"] if LMDEPLOY["timm_pin"] else "timm"
    assert by_id["PY013"]["fixes"][0]["command"] == f"{tutorial_venv} -m pip install {timm}"
    assert by_id["PY017"]["fixes"][0]["command"] == f"{tutorial_venv} -m pip install 'lmdeploy=={V}'"
    assert "torch" in by_id["PY017"]["title"]
    assert doc["environment"]["python"] == str(tutorial_venv)


def test_lmdeploy_without_its_turbomind_extension(tmp_path, wheelhouse):
    python = make_venv(tmp_path / "source-install")
    pip_install(python, [wheel(wheelhouse, "lmdeploy", V)])
    removed = [p for p in site_packages(tmp_path / "source-install").glob("lmdeploy/**/_turbomind*.so")]
    assert removed, "the real wheel ships _turbomind*.so"
    for so in removed:
        so.unlink()                                                   # what a never-built source install looks like
    run = lmdoctor("check", "--json", "--python", str(python), env=env_without_venv())
    doc = run.json()
    finding = {f["rule"]: f for f in doc["findings"]}["PY003"]
    assert finding["severity"] == "warning"
    assert finding["fixes"][0]["command"] == f"{python} -m pip install --force-reinstall --no-deps 'lmdeploy=={V}'"


def test_source_checkout_in_the_working_dir_and_on_pythonpath(tmp_path, tutorial_venv, wheelhouse):
    checkout = tmp_path / "lmdeploy-git"
    extract_package(wheel(wheelhouse, "lmdeploy", V), "lmdeploy", checkout)
    here = lmdoctor("check", "--json", "--python", str(tutorial_venv), cwd=str(checkout), env=env_without_venv())
    ids = finding_ids(here.json())
    assert "PY005" in ids and "PY004" not in ids
    shadow = {f["rule"]: f for f in here.json()["findings"]}["PY005"]
    assert str(checkout / "lmdeploy") in shadow["title"]
    via_path = lmdoctor("check", "--json", "--python", str(tutorial_venv), cwd=str(tmp_path),
                        env=env_without_venv({"PYTHONPATH": str(checkout)}))
    doc = via_path.json()
    assert "PY004" in finding_ids(doc) and via_path.code == 1
    assert {f["rule"]: f for f in doc["findings"]}["PY004"]["fixes"][0]["command"] == "unset PYTHONPATH"


def test_import_folder_without_metadata(tmp_path, wheelhouse):
    python = make_venv(tmp_path / "bare")
    checkout = tmp_path / "src"
    extract_package(wheel(wheelhouse, "lmdeploy", V), "lmdeploy", checkout)
    facts = facts_of("--python", str(python), cwd=str(tmp_path), env=env_without_venv({"PYTHONPATH": str(checkout)}))
    assert facts["pkg.lmdeploy.no_metadata"] == str(checkout / "lmdeploy")
    assert facts["pkg.lmdeploy.version"] == V                         # from lmdeploy/version.py
    assert facts["pkg.lmdeploy.turbomind"] is False


def test_duplicate_dist_info_folders(tmp_path, wheelhouse):
    python = make_venv(tmp_path / "dup")
    pip_install(python, [wheel(wheelhouse, "einops", "0.8.0")])
    old = tmp_path / "old"
    pip_install(python, [wheel(wheelhouse, "einops", "0.7.0")], target=str(old))
    site = site_packages(tmp_path / "dup")
    shutil.copytree(old / "einops-0.7.0.dist-info", site / "einops-0.7.0.dist-info")  # an interrupted upgrade
    facts = facts_of("--python", str(python), env=env_without_venv())
    assert facts["pkg.einops.duplicates"] == ["0.7.0", "0.8.0"]
    assert facts["pkg.einops.version"] == "0.8.0"
    doc = lmdoctor("check", "--json", "--python", str(python), env=env_without_venv()).json()
    dup = {f["rule"]: f for f in doc["findings"]}["PY015"]
    assert dup["fixes"][0]["command"] == f"{python} -m pip uninstall -y einops"
    assert f"einops: 0.7.0, 0.8.0 in {site}" in dup["title"]


def test_egg_info_folder_and_file(tmp_path):
    python = make_venv(tmp_path / "eggs")
    site = site_packages(tmp_path / "eggs")
    # setuptools' `develop` / `setup.py install` layouts: a folder named without a version (read PKG-INFO)
    # and a single PKG-INFO-format file named with one.
    (site / "mmengine_lite.egg-info").mkdir()
    (site / "mmengine_lite.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 2.1\nName: mmengine-lite\nVersion: 0.10.4\nSummary: x\n\nlong description\n")
    (site / "fire-0.6.0-py3.10.egg-info").write_text("Metadata-Version: 2.1\nName: fire\nVersion: 0.6.0\n")
    facts = facts_of("--python", str(python), env=env_without_venv())
    assert facts["pkg.mmengine-lite.version"] == "0.10.4"
    assert facts["pkg.fire.version"] == "0.6.0"


@pytest.mark.parametrize("fixture,version_dir,build", [
    ("version-2.13.0-cu128.py", "torch-2.13.0.dist-info", "12.8"),
    ("version-2.13.0-cpu.py", "torch-2.13.0.dist-info", "cpu"),
    ("version-2.13.0-cpu.py", "torch-2.13.0+cu121.dist-info", "12.1"),   # a local tag wins over version.py
])
def test_torch_cuda_build(tmp_path, fixture, version_dir, build):
    python = make_venv(tmp_path / "torch")
    site = site_packages(tmp_path / "torch")
    (site / "torch").mkdir()
    (site / "torch" / "__init__.py").write_text("")
    shutil.copy(Path(__file__).parent.parent / "fixtures" / "torch" / fixture, site / "torch" / "version.py")
    (site / version_dir).mkdir()
    (site / version_dir / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0\n")
    facts = facts_of("--python", str(python), env=env_without_venv())
    assert facts["pkg.torch.cuda_build"] == build


def test_conda_style_env_by_name(tmp_path, wheelhouse):
    root = tmp_path / "miniconda3"
    (root / "condabin").mkdir(parents=True)
    (root / "conda-meta").mkdir()
    prefix = root / "envs" / "icamp3_demo"
    python = make_venv(prefix)
    (prefix / "conda-meta").mkdir()
    pip_install(python, [wheel(wheelhouse, "einops", "0.8.0")])
    env = env_without_venv({"CONDA_EXE": str(root / "bin" / "conda")})
    facts = facts_of("--env", "icamp3_demo", env=env)
    assert facts["py.env.kind"] == "conda" and facts["py.env.name"] == "icamp3_demo"
    assert facts["py.prefix"] == str(prefix) and facts["pkg.einops.version"] == "0.8.0"
    by_path = facts_of("--env", str(prefix), env=env)
    assert by_path["py.env.name"] == "icamp3_demo"
    missing = lmdoctor("check", "--env", "demo", env=env)
    assert missing.code == 2 and "Traceback" not in missing.err
    assert missing.err.strip() == "lmdoctor: error: conda env 'demo' not found (known envs: icamp3_demo)"


def test_broken_interpreter_is_examined_from_disk(tmp_path, wheelhouse):
    prefix = tmp_path / "broken"
    python = make_venv(prefix)
    pip_install(python, [wheel(wheelhouse, "einops", "0.8.0")])
    python.unlink()
    python.write_text("#!/bin/sh\necho 'python: error while loading shared libraries: libpython3.so.1.0: "
                      "cannot open shared object file' >&2\nexit 127\n")
    python.chmod(0o755)
    run = lmdoctor("check", "--json", "--python", str(python), env=env_without_venv())
    assert "Traceback" not in run.err
    doc = run.json()
    assert run.code == 1 and "PY016" in finding_ids(doc)
    assert "libpython3.so.1.0" in {f["rule"]: f for f in doc["findings"]}["PY016"]["explanation"]
    facts = facts_of("--python", str(python), env=env_without_venv())
    assert facts["py.runs"] is False and facts["pkg.einops.version"] == "0.8.0"
    assert facts["py.version"] == "%d.%d" % sys.version_info[:2]        # from lib/pythonX.Y


def test_venv_whose_base_interpreter_was_removed(tmp_path, wheelhouse):
    prefix = tmp_path / "orphan"
    python = make_venv(prefix)
    pip_install(python, [wheel(wheelhouse, "einops", "0.8.0")])
    for name in ("python", "python3", "python%d.%d" % sys.version_info[:2]):
        link = prefix / "bin" / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("/opt/removed-python/bin/python3")
    facts = facts_of("--python", str(python), env=env_without_venv())
    assert facts["py.runs"] is False and "dangling link" in facts["py.error"]
    assert facts["pkg.einops.version"] == "0.8.0"
    by_env = facts_of("--env", str(prefix), env=env_without_venv())
    assert by_env["py.runs"] is False and by_env["pkg.einops.version"] == "0.8.0"
