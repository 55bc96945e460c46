#!/usr/bin/env python3
"""How fast is `lmdoctor check --json` next to `python -m torch.utils.collect_env`, measured in one run?

    python3 bench/check_speed.py                 # 15 runs each, prints both medians and the ratio
    python3 bench/check_speed.py --runs 30 --assert   # exit 1 unless >=10x faster and under 0.5 s
    python3 bench/check_speed.py --lmdoctor-python .venv/bin/python   # time a development install

The baseline is PyTorch's own environment report, run in a throwaway venv that this script creates
(or reuses) with `pip install torch==2.13.0` (CPU; pip's configuration decides where the wheel comes
from: a local find-links folder, a mirror or PyPI). lmdoctor is measured the way users get it:
`pip install .` of this checkout into another throwaway venv (dependencies installed once, lmdoctor
itself reinstalled on every run so the numbers are for the code as it is now), then its `lmdoctor`
console script. It is timed twice: examining its own environment (what a bare `lmdoctor check` does)
and examining the torch venv through `--python` (the environment collect_env reports on). Every
command is a separate process; nothing here imports torch or lmdeploy, and the script verifies with
`-X importtime` that lmdoctor does not either. `--lmdoctor-python PATH` times an existing install
instead (e.g. a development venv).

Both sides get compiled bytecode, as after a normal `pip install`: when PYTHONDONTWRITEBYTECODE is set
(as in some sandboxes) it is lifted for the timed processes and the .pyc files go to a temporary
PYTHONPYCACHEPREFIX, and one untimed warm-up run precedes each series.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

DEFAULT_VENV = Path(tempfile.gettempdir()) / "lmdoctor-bench-torch-venv"
APP_VENV = Path(tempfile.gettempdir()) / "lmdoctor-bench-app-venv"
REPO = Path(__file__).resolve().parent.parent


def lmdoctor_venv(path: Path) -> Path:
    """A venv with this checkout installed non-editable (what `pip install .` gives a user)."""
    python = path / "bin" / "python"
    if not python.exists():
        print(f"creating {path} with lmdoctor and its dependencies (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO)],
                       check=True)
    else:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                        "--force-reinstall", str(REPO)], check=True)
    return python


def torch_venv(path: Path, spec: str, pip_args: List[str]) -> Path:
    """A venv with torch installed (created on first use, reused afterwards)."""
    python = path / "bin" / "python"
    probe = [str(python), "-c", "import importlib.metadata as m; print(m.version('torch'))"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"creating {path} with {spec} (once; reused by later runs)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", spec, *pip_args],
                   check=True)
    return python


def timed(cmd: List[str], env: Dict[str, str], runs: int) -> List[float]:
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # warm-up (bytecode, page cache)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - start)
    return times


def imported_modules(cmd: List[str], env: Dict[str, str]) -> List[str]:
    """Top-level modules a Python command imports, from `-X importtime` (cmd[0] must be a python)."""
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, env=env)
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return sorted(names)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"torch venv to create or reuse ({DEFAULT_VENV})")
    ap.add_argument("--torch", default="torch==2.13.0", help="requirement for the baseline's torch")
    ap.add_argument("--pip-arg", action="append", default=[], help="extra pip argument (repeatable), "
                    "e.g. --pip-arg=--index-url=https://download.pytorch.org/whl/cpu")
    ap.add_argument("--lmdoctor-python", type=Path, help="time the lmdoctor installed for this interpreter "
                    f"instead of installing this checkout into {APP_VENV}")
    ap.add_argument("--assert", dest="check", action="store_true",
                    help="exit 1 unless `lmdoctor check --json` is >=10x faster and both checks take < 0.5 s")
    args = ap.parse_args()

    python = torch_venv(args.venv, args.torch, args.pip_arg)
    app_python = args.lmdoctor_python or lmdoctor_venv(APP_VENV)
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="lmdoctor-bench-pyc-")
    env.setdefault("LMDOCTOR_LANG", "en")

    script = Path(app_python).parent / "lmdoctor"
    check = [str(script), "check", "--json"]
    leaked = sorted({"torch", "lmdeploy"} & set(imported_modules(
        [str(app_python), "-m", "doctor", "check", "--json", "--python", str(python)], env)))
    series = {
        "lmdoctor check --json": timed(check, env, args.runs),
        "lmdoctor check --json --python <torch venv>": timed(check + ["--python", str(python)], env, args.runs),
        "python -m torch.utils.collect_env": timed([str(python), "-m", "torch.utils.collect_env"], env, args.runs),
    }
    med = {name: statistics.median(ts) for name, ts in series.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"runs per command: {args.runs} (medians; min-max in brackets)   python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {load:.1f} at the end")
    for name, ts in series.items():
        print(f"  {med[name]:7.3f} s  [{min(ts):.3f}-{max(ts):.3f}]  {name}")
    baseline = med["python -m torch.utils.collect_env"]
    plain, other = med["lmdoctor check --json"], med["lmdoctor check --json --python <torch venv>"]
    ratio = baseline / plain
    print(f"ratio: collect_env / lmdoctor check --json = {ratio:.1f}x  (target >= 10x, check < 0.5 s); "
          f"with --python <torch venv>: {baseline / other:.1f}x")
    print(f"torch/lmdeploy imported by lmdoctor: {', '.join(leaked) if leaked else 'none'}")
    ok = ratio >= 10 and max(plain, other) < 0.5 and not leaked
    if args.check and not ok:
        print("FAILED: targets not met", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
