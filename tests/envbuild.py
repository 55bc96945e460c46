"""Build real Python environments on disk for the ``envs`` tests.

Every env is a real venv (``python -m venv``, so its interpreter really runs) with real wheels from
PyPI installed by pip with ``--no-deps``; conda envs are the same trees plus ``conda-meta/`` records in
conda's file format (torch comes from a ``pytorch`` conda record, as in the tutorial's
``conda install pytorch==2.1.2 ... pytorch-cuda=12.1``). Wheels are downloaded once into a cache
folder (``LMDOCTOR_TEST_WHEELS``, default ``~/.cache/lmdoctor-tests/wheels``) and the machine is built
once per test session.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple

PY = f"{sys.version_info.major}.{sys.version_info.minor}"
PY_FULL = f"{PY}.{sys.version_info.micro}"
TUTORIAL = ["lmdeploy==0.5.1", "transformers==4.38.2", "einops==0.8.0", "gradio==4.36.1"]
TIMM = ["timm==1.0.7"]
NEW = ["lmdeploy==0.10.0", "transformers==4.38.2", "einops==0.8.0", "timm==1.0.7"]
# Where pip is told to look for local wheels on this kind of machine (a CPU torch wheel lies there).
LOCAL_WHEEL_DIRS = ("/opt/wheels",)


class WheelsUnavailable(Exception):
    """The wheels could not be found in the cache nor downloaded (offline machine)."""


def wheel_cache() -> Path:
    path = Path(os.environ.get("LMDOCTOR_TEST_WHEELS") or Path.home() / ".cache" / "lmdoctor-tests" / "wheels")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _installable(wheel: Path) -> bool:
    """Whether this interpreter can install the wheel: the cache is shared by every Python the suite
    runs under, and a cp311 wheel cached by a 3.11 run must not be taken by a 3.9 run."""
    from packaging.tags import sys_tags
    from packaging.utils import parse_wheel_filename
    supported = set(sys_tags())
    return any(tag in supported for tag in parse_wheel_filename(wheel.name)[3])


def _cached(spec: str, folder: Path) -> Optional[Path]:
    name, _, version = spec.partition("==")
    hits = sorted(folder.glob(f"{name.replace('-', '_')}-{version}-*.whl")) + sorted(folder.glob(f"{name}-{version}-*.whl"))
    hits = [h for h in hits if _installable(h)]
    return hits[0] if hits else None


def fetch(specs: Iterable[str]) -> Dict[str, Path]:
    """Wheel files for ``name==version`` specs, downloading the missing ones (one pip call each, since
    two versions of one package cannot share a pip resolution)."""
    folder = wheel_cache()
    out: Dict[str, Path] = {}
    for spec in dict.fromkeys(specs):
        if _cached(spec, folder) is None:
            proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                                   "--disable-pip-version-check", "-d", str(folder), spec],
                                  capture_output=True, text=True, timeout=600)
            if proc.returncode != 0 or _cached(spec, folder) is None:
                raise WheelsUnavailable(f"pip download {spec} failed: {proc.stderr.strip()[-400:]}")
        out[spec] = _cached(spec, folder)
    return out


def torch_wheel() -> Optional[Path]:
    """A real torch wheel already on this machine (only its metadata is used), or None."""
    for folder in LOCAL_WHEEL_DIRS + (str(wheel_cache()),):
        hits = sorted(glob.glob(os.path.join(folder, "torch-*.whl")))
        if hits:
            return Path(hits[-1])
    return None


def make_venv(prefix: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True, timeout=120)
    return prefix


def site_packages(prefix: Path) -> Path:
    return prefix / "lib" / f"python{PY}" / "site-packages"


def pip_install(prefix: Path, wheels: Sequence[Path]) -> None:
    """``pip install --no-deps`` real wheels into the venv at ``prefix`` (run by its own interpreter)."""
    subprocess.run([sys.executable, "-m", "pip", "--python", str(prefix / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", "--no-compile", "--disable-pip-version-check",
                    *map(str, wheels)], check=True, timeout=600, capture_output=True)


def add_dist_info_from_wheel(prefix: Path, wheel: Path) -> str:
    """Put only the ``*.dist-info`` folder of a (large) wheel into site-packages; returns its name."""
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist() if m.split("/", 1)[0].endswith(".dist-info")]
        zf.extractall(site_packages(prefix), members)
    return members[0].split("/", 1)[0]


def conda_meta(prefix: Path, records: Sequence[Tuple[str, str, str, str]], root: bool = False) -> None:
    """``conda-meta/`` with one record per (name, version, build, channel), in conda's file format."""
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "history").write_text(f"==> 2024-07-20 10:00:00 <==\n# cmd: conda create -p {prefix}\n")
    for name, version, build, channel in records:
        fn = f"{name}-{version}-{build}"
        record = {"name": name, "version": version, "build": build, "build_number": 0,
                  "channel": f"https://conda.anaconda.org/{channel}/linux-64", "subdir": "linux-64",
                  "fn": f"{fn}.tar.bz2", "url": f"https://conda.anaconda.org/{channel}/linux-64/{fn}.tar.bz2",
                  "depends": [], "files": [], "requested_spec": f"{name}=={version}"}
        (meta / f"{fn}.json").write_text(json.dumps(record, indent=2))
    if root:
        (prefix / "condabin").mkdir(exist_ok=True)
        (prefix / "envs").mkdir(exist_ok=True)


PYTHON_RECORD = ("python", PY_FULL, "h955ad1f_0", "pkgs/main")
TORCH_RECORDS = [("pytorch", "2.1.2", f"py{PY}_cuda12.1_cudnn8.9.2_0", "pytorch"),
                 ("pytorch-cuda", "12.1", "ha16c6d3_5", "pytorch"),
                 ("torchvision", "0.16.2", f"py{PY}_cu121", "pytorch"),
                 ("torchtriton", "2.1.0", f"py{PY}", "pytorch")]
# The rest of lmdeploy 0.5.1's requirements as `pip install lmdeploy[all]==0.5.1` left them in the
# tutorial env (versions of mid-2024; sentencepiece/protobuf/accelerate are the tutorial's own pins).
# They are written as metadata-only installs: lmdoctor reads nothing but the dist-info folders, and
# the real wheels (the nvidia-*-cu12 ones alone are ~1 GB) would make every CI run download them.
LMDEPLOY_051_REQUIREMENTS = [
    ("accelerate", "0.33.0"), ("fastapi", "0.111.0"), ("fire", "0.6.0"), ("mmengine-lite", "0.10.4"),
    ("numpy", "1.26.4"), ("peft", "0.11.1"), ("pillow", "10.4.0"), ("protobuf", "5.27.2"),
    ("pydantic", "2.8.2"), ("pynvml", "11.5.3"), ("safetensors", "0.4.3"), ("sentencepiece", "0.1.99"),
    ("shortuuid", "1.0.13"), ("tiktoken", "0.7.0"), ("uvicorn", "0.30.1"),
    ("nvidia-nccl-cu12", "2.20.5"), ("nvidia-cuda-runtime-cu12", "12.1.105"),
    ("nvidia-cublas-cu12", "12.1.3.1"), ("nvidia-curand-cu12", "10.3.2.106"),
]


def add_metadata_only(prefix: Path, name: str, version: str) -> None:
    """A dist-info folder as pip writes it (METADATA, INSTALLER, RECORD) without the package's files."""
    info = site_packages(prefix) / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("")


def build_machine(root: Path) -> Dict[str, Path]:
    """A machine's worth of envs under ``root`` (see tests/test_envs.py for what each one is for)."""
    wheels = fetch(TUTORIAL + TIMM + NEW)
    home = root / "home"
    base = root / "miniconda3"
    envs = {"home": home, "base": base, "demo": base / "envs" / "demo",
            "icamp3_demo": root / "share" / "pre_envs" / "icamp3_demo", "venvs": root / "venvs",
            "new": root / "venvs" / "lmdeploy-new", "broken": root / "venvs" / "broken",
            "halfdone": root / "venvs" / "halfdone"}
    # conda base: an interpreter and nothing else installed.
    make_venv(base)
    conda_meta(base, [PYTHON_RECORD], root=True)
    # `demo`: built like the tutorial env, but `pip install timm` was forgotten.
    make_venv(envs["demo"])
    conda_meta(envs["demo"], [PYTHON_RECORD] + TORCH_RECORDS)
    pip_install(envs["demo"], [wheels[s] for s in TUTORIAL])
    for name, version in LMDEPLOY_051_REQUIREMENTS:
        add_metadata_only(envs["demo"], name, version)
    # `icamp3_demo`: the pre-built tutorial env (same packages plus timm), a copy sharing the files.
    envs["icamp3_demo"].parent.mkdir(parents=True)
    shutil.copytree(envs["demo"], envs["icamp3_demo"], symlinks=True, copy_function=os.link)
    pip_install(envs["icamp3_demo"], [wheels[s] for s in TIMM])
    # `lmdeploy-new`: a plain venv with lmdeploy 0.10.0 (no `serve gradio` any more) and a real torch's metadata.
    make_venv(envs["new"])
    pip_install(envs["new"], [wheels[s] for s in NEW])
    torch = torch_wheel()
    if torch is not None:
        add_dist_info_from_wheel(envs["new"], torch)
    # `broken`: its base interpreter was removed (bin/python dangles).
    make_venv(envs["broken"])
    pip_install(envs["broken"], [wheels["einops==0.8.0"]])
    for name in ("python", "python3", f"python{PY}"):
        link = envs["broken"] / "bin" / name
        if link.is_symlink() or link.exists():
            link.unlink()
            link.symlink_to(root / "gone" / "bin" / "python3")
    # `halfdone`: an interrupted install left transformers without METADATA.
    make_venv(envs["halfdone"])
    pip_install(envs["halfdone"], [wheels["transformers==4.38.2"], wheels["einops==0.8.0"]])
    (site_packages(envs["halfdone"]) / "transformers-4.38.2.dist-info" / "METADATA").unlink()
    # A symlink loop among the venvs, and conda's registry with one env deleted since.
    (envs["venvs"] / "loop").symlink_to(envs["venvs"])
    (envs["venvs"] / "self").symlink_to(envs["venvs"] / "self")
    (home / ".conda").mkdir(parents=True)
    (home / ".conda" / "environments.txt").write_text(f"{base}\n{envs['demo']}\n{base / 'envs' / 'deleted'}\n")
    return envs


def machine_environ(envs: Dict[str, Path], **extra: str) -> Dict[str, str]:
    """Environment variables that make lmdoctor see the built machine as this user's."""
    env = {"HOME": str(envs["home"]), "CONDA_EXE": str(envs["base"] / "bin" / "conda"),
           "LMDOCTOR_ENVS_PATH": str(envs["icamp3_demo"].parent), "PYENV_ROOT": str(envs["home"] / ".pyenv")}
    env.update(extra)
    return env
