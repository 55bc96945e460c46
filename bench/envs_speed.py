"""How fast `lmdoctor envs` reads environments, against baselines measured in the same run.

Builds 20 real environments once in a temp folder (a real venv with real wheels installed by
``pip install --no-deps``, then 19 hard-linked copies, half of them conda-style with ``conda-meta/``),
then times, over the same folders:

* lmdoctor's discovery + scan of all 20 envs (what ``lmdoctor envs`` reads from disk);
* the same plus judging every env for a job (``survey``: requirements + environment rules);
* ``importlib.metadata.distributions(path=...)`` reading every distribution's name and version
  (what a tool that asks Python's own metadata API would do);
* ``pip list --path SITE`` once per env (what a person would type).

Run: ``python bench/envs_speed.py [--wheels DIR ...] [--packages N] [--repeat R]``. The target is
scanning 20 envs in under a second; the script exits 1 when the median misses it.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from doctor.envs.discover import discover  # noqa: E402
from doctor.envs.job import Job  # noqa: E402
from doctor.envs.scan import scan_env  # noqa: E402
from doctor.envs.score import machine_only  # noqa: E402
from doctor.envs.survey import survey  # noqa: E402

DEFAULT_WHEEL_DIRS = ["/opt/pypi/files", str(Path.home() / ".cache" / "lmdoctor-tests" / "wheels")]
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
ENVS = 20


def pick_wheels(dirs: List[str], count: int) -> List[str]:
    """Up to ``count`` installable wheels with distinct project names, the lmdeploy stack first."""
    by_project: Dict[str, str] = {}
    preferred = ("lmdeploy-0.5.1-", "transformers-4.38.2-", "timm-1.0.7-", "einops-0.8.0-", "gradio-4.36.1-")
    files = [f for d in dirs for f in glob.glob(os.path.join(d, "*.whl"))]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for path in sorted(files, key=lambda f: (not os.path.basename(f).startswith(preferred), os.path.getsize(f))):
        name = os.path.basename(path)
        if not (name.endswith("-py3-none-any.whl") or f"-{tag}-{tag}-" in name and "x86_64" in name):
            continue
        project = name.split("-")[0].lower().replace("_", "-")
        if project not in by_project:
            by_project[project] = path
        if len(by_project) >= count:
            break
    return list(by_project.values())


def build(root: Path, wheels: List[str]) -> Path:
    """20 envs under root/envs: one real venv and hard-linked copies, every other one conda-style."""
    envs = root / "envs"
    template = envs / "env00"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(template)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(template / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", "--no-compile", "--disable-pip-version-check", *wheels],
                   check=True, capture_output=True)
    for i in range(1, ENVS):
        copy = envs / f"env{i:02d}"
        shutil.copytree(template, copy, symlinks=True, copy_function=os.link)
        if i % 2:
            meta = copy / "conda-meta"
            meta.mkdir()
            v = sys.version_info
            (meta / f"python-{v.major}.{v.minor}.{v.micro}-h955ad1f_0.json").write_text("{}")
            (meta / f"pytorch-2.1.2-py{PY}_cuda12.1_cudnn8.9.2_0.json").write_text("{}")
    return envs


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheels", action="append", help="folder of wheels to install (default: local caches)")
    ap.add_argument("--packages", type=int, default=150, help="distributions per env (default 150)")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    wheels = pick_wheels(args.wheels or DEFAULT_WHEEL_DIRS, args.packages)
    if len(wheels) < 20:
        print(f"need at least 20 wheels, found {len(wheels)} in {args.wheels or DEFAULT_WHEEL_DIRS}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lmdoctor-envs-bench-") as tmp:
        t0 = time.perf_counter()
        envs_root = build(Path(tmp), wheels)
        build_s = time.perf_counter() - t0
        environ, cwd = {"HOME": tmp}, tmp

        def scan():
            found = discover(environ, cwd, [str(envs_root)], defaults=False, depth=1)
            return [scan_env(c, environ, cwd) for c in found.candidates.values()]

        scanned = scan()
        assert len(scanned) == ENVS and all(not e.broken for e in scanned), [e.problems for e in scanned]
        sites = [d for e in scanned for d in e.site_dirs]
        dists = scanned[0].facts["pkg.count"]
        from doctor import selftest
        machine = machine_only(selftest.load_snapshot("h100"))
        job = Job(argv=["lmdeploy", "serve", "gradio", "OpenGVLab/InternVL2-2B"])
        from doctor.ruleset import load_rules
        rules = load_rules().env_rules()

        def judged():
            return survey(job, machine, environ, cwd, paths=[str(envs_root)], defaults=False, depth=1, rules=rules)

        def metadata_api():
            import importlib.metadata as md
            return [(d.metadata["Name"], d.version) for site in sites for d in md.distributions(path=[site])]

        assert len(metadata_api()) == dists * ENVS
        scan_ms = median_ms(scan, args.repeat)
        judged_ms = median_ms(judged, args.repeat)
        api_ms = median_ms(metadata_api, args.repeat)
        pip_ms = median_ms(lambda: [subprocess.run([sys.executable, "-m", "pip", "list", "--path", s, "--format",
                                                    "json", "--disable-pip-version-check"], capture_output=True,
                                                   check=True) for s in sites], 1)
        cli = [sys.executable, "-m", "doctor", "envs", "--json", "--no-discover", "--path", str(envs_root),
               "--depth", "1", "--facts", str(REPO / "fixtures" / "facts" / "h100.json"), "--for", "--", *job.argv]
        cli_ms = median_ms(lambda: subprocess.run(cli, capture_output=True, cwd=str(REPO)), 3)
        doc = json.loads(subprocess.run(cli, capture_output=True, cwd=str(REPO)).stdout)
        assert doc["summary"]["scanned"] == ENVS
    print(f"{ENVS} envs x {dists} distributions each (built in {build_s:.1f} s from {len(wheels)} real wheels)")
    print(f"  lmdoctor scan (discover + read from disk)   median {scan_ms:7.1f} ms   {scan_ms / ENVS:6.2f} ms/env")
    print(f"  lmdoctor scan + judge for a gradio job      median {judged_ms:7.1f} ms   {judged_ms / ENVS:6.2f} ms/env")
    print(f"  baseline importlib.metadata.distributions   median {api_ms:7.1f} ms   {api_ms / ENVS:6.2f} ms/env"
          f"   (scan is {api_ms / scan_ms:.1f}x faster)")
    print(f"  baseline pip list --path, once per env              {pip_ms:7.1f} ms   {pip_ms / ENVS:6.2f} ms/env"
          f"   (scan is {pip_ms / scan_ms:.0f}x faster)")
    print(f"  `lmdoctor envs --json` end to end (new process) median {cli_ms:7.1f} ms")
    ok = scan_ms < 1000
    print(f"target: scan 20 envs under 1000 ms: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
