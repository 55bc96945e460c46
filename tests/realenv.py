"""Real throwaway Python environments for tests: `python -m venv`, real wheels from PyPI, pip --no-deps.

Wheels are downloaded once per test session into a wheelhouse (``LMDOCTOR_WHEELHOUSE`` keeps them
across sessions; pip's own HTTP cache makes a re-download cheap anyway) and installed with
``pip --python VENV install --no-deps --no-index``, so every environment a test examines was laid
out by pip itself, exactly as on a user's machine.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List

# The lmdeploy the tests install: the camp3 tutorial's 0.5.1 where it has wheels (CPython 3.8-3.12),
# else the newest release line with wheels for this interpreter. `outside_pt_window` is a transformers
# just above that release's PyTorch-engine window.
if sys.version_info < (3, 13):
    LMDEPLOY = {"version": "0.5.1", "transformers_outside_pt_window": "4.44.2", "pins_numpy_below_2": True,
                "timm_pin": "1.0.7"}
else:
    LMDEPLOY = {"version": "0.10.2", "transformers_outside_pt_window": "4.57.1", "pins_numpy_below_2": False,
                "timm_pin": None}


def download(requirements: Iterable[str], dest: Path) -> None:
    """pip download real binary wheels (no dependencies) for this interpreter into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                           "--disable-pip-version-check", "-q", "-d", str(dest), *requirements],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"pip download {' '.join(requirements)} failed (PyPI needed):\n{proc.stderr[-2000:]}")


def wheel(wheelhouse: Path, name: str, version: str = "") -> Path:
    """The downloaded wheel file of a distribution (optionally of one version)."""
    stem = name.replace("-", "_")
    found = sorted(wheelhouse.glob(f"{stem}-{version or '*'}-*.whl"))
    if not found:
        raise FileNotFoundError(f"no wheel for {name} {version} in {wheelhouse}")
    return found[-1]


def make_venv(path: Path) -> Path:
    """A real venv (without pip: tests install with the outer pip's --python); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    return path / "bin" / "python"


def pip_install(python: Path, wheels: Iterable[Path], target: str = "") -> None:
    """Install wheel files into the env of ``python`` (or into a --target folder) with --no-deps."""
    args = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    if target:
        args += ["install", "--no-deps", "--no-index", "--target", target]
    else:
        args += ["--python", str(python), "install", "--no-deps", "--no-index"]
    proc = subprocess.run(args + [str(w) for w in wheels], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"pip install failed:\n{proc.stderr[-2000:]}")


def site_packages(prefix: Path) -> Path:
    return Path(glob.glob(str(prefix / "lib" / "python3*" / "site-packages"))[0])


def extract_package(wheel_file: Path, package: str, dest: Path, suffixes=(".py",)) -> Path:
    """Unpack only ``package``'s source files from a wheel (what a git checkout of it holds)."""
    with zipfile.ZipFile(wheel_file) as zf:
        for name in zf.namelist():
            if name.startswith(package + "/") and name.endswith(suffixes):
                zf.extract(name, dest)
    return dest / package


def env_without_venv(extra: Dict[str, str] = None) -> Dict[str, str]:
    """The test process's environment minus anything that would pick an environment for lmdoctor."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH")}
    env.update(extra or {})
    return env


def finding_ids(doc: dict) -> List[str]:
    return [f["rule"] for f in doc["findings"]]
