"""Check that the carried wheels plus the GPU image satisfy lmdeploy's requirements (run here, not there).

Usage: python3 lab/wheelcheck.py DEST        (DEST as given to lab/fetch_wheels.sh)

Walks lmdeploy's Requires-Dist (no extras, markers evaluated for CPython 3.12 on linux x86_64): a
requirement met by a carried wheel is checked against that wheel's version and followed into its own
requirements; one met by the GPU image is checked against the image's version where it is known; one
lmdeploy's PyTorch engine does not use for a dense LLM on one GPU is listed as skipped with the reason.
Anything else is MISSING, and two carried versions of one name or a version outside a specifier is a
CONFLICT: both make the exit status 1, so a bad download is caught here instead of on GPU minutes.
"""
from __future__ import annotations

import re
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import Version

# Versions seen on the GPU image (KINDS.md pip list, check-env of the H200 run); None: present, version unknown.
IMAGE: Dict[str, Optional[str]] = {
    "torch": "2.11.0", "torchvision": "0.26.0", "triton": "3.6.0", "transformers": "5.17.0",
    "accelerate": "1.15.0", "numpy": "2.5.2", "safetensors": "0.8.0", "sentencepiece": "0.2.2",
    "tiktoken": "0.14.0", "tokenizers": "0.23.2", "huggingface-hub": "1.33.0",
    **{name: None for name in (
        "aiohttp", "anyio", "annotated-doc", "certifi", "click", "cloudpickle", "einops", "filelock", "fsspec",
        "h11", "httpcore", "httpx", "idna", "jinja2", "opencv-python-headless", "packaging", "peft", "pillow",
        "prometheus-client", "protobuf", "psutil", "pyyaml", "regex", "requests", "rich", "timm", "tqdm",
        "typing-extensions", "urllib3", "uvloop", "nvidia-ml-py", "pygments", "markdown-it-py")},
}

# Requirements deliberately not carried, and why (a dense Llama-architecture LLM on one GPU, PyTorch engine).
SKIPPED = {
    "ray": "only the ray executor / multi-node serving imports it; one GPU uses the uni executor",
    "rdkit": "no module of lmdeploy 0.18.0 imports it",
    "tilelang": "only DeepSeek sparse-MLA / gated-delta / conv1d kernels import it",
    "flash-linear-attention": "only linear-attention models (Qwen3-Next, gated delta) import it",
    "nvidia-nccl-cu12": "CUDA 12 library for TurboMind; the image has the CUDA 13 builds torch uses",
    "nvidia-cuda-runtime-cu12": "CUDA 12 library for TurboMind (not built there)",
    "nvidia-cublas-cu12": "CUDA 12 library for TurboMind (not built there)",
    "nvidia-curand-cu12": "CUDA 12 library for TurboMind (not built there)",
}

ENV = dict(default_environment(), python_version="3.12", python_full_version="3.12.3", sys_platform="linux",
           platform_system="Linux", platform_machine="x86_64", implementation_name="cpython",
           platform_python_implementation="CPython", os_name="posix", extra="")


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_metadata(dest: Path) -> Tuple[Dict[str, Tuple[str, List[str]]], Tuple[str, List[str]]]:
    """Name -> (version, Requires-Dist) of each carried wheel, and lmdeploy's own."""
    carried: Dict[str, Tuple[str, List[str]]] = {}
    dupes = []
    for whl in sorted((dest / "whl").glob("*.whl")):
        with zipfile.ZipFile(whl) as zf:
            meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            msg = Parser().parsestr(zf.read(meta_name).decode("utf-8"))
        name = canon(msg["Name"])
        if name in carried:
            dupes.append(name)
        carried[name] = (msg["Version"], msg.get_all("Requires-Dist") or [])
    if dupes:
        raise SystemExit(f"CONFLICT: two wheels of {', '.join(dupes)} in {dest / 'whl'}: keep one of each")
    with tarfile.open(dest / "lmdeploy_src.tgz") as tf:
        member = next(m for m in tf.getmembers() if m.name.endswith(".dist-info/METADATA"))
        msg = Parser().parsestr(tf.extractfile(member).read().decode("utf-8"))
    return carried, (msg["Version"], msg.get_all("Requires-Dist") or [])


def applies(req: Requirement) -> bool:
    return req.marker is None or req.marker.evaluate(ENV)


def check(dest: Path) -> int:
    carried, (lmd_version, lmd_reqs) = read_metadata(dest)
    problems, lines, used = [], [], set()
    todo = [("lmdeploy", r) for r in lmd_reqs]
    seen = set()
    while todo:
        parent, text = todo.pop(0)
        req = Requirement(text)
        if not applies(req):
            continue
        name = canon(req.name)
        if (parent, name) in seen:
            continue
        seen.add((parent, name))
        if name in carried:
            version = carried[name][0]
            ok = req.specifier.contains(Version(version), prereleases=True)
            lines.append(f"{'ok ' if ok else 'BAD'} {parent} -> {req}: carried {version}")
            if not ok:
                problems.append(f"CONFLICT: {parent} needs {req}, carried {name} {version}")
            if name not in used:
                used.add(name)
                todo.extend((name, r) for r in carried[name][1])
        elif name in IMAGE:
            version = IMAGE[name]
            ok = version is None or req.specifier.contains(Version(version), prereleases=True)
            lines.append(f"{'ok ' if ok else 'BAD'} {parent} -> {req}: image {version or '(version not recorded)'}")
            if not ok:
                problems.append(f"CONFLICT: {parent} needs {req}, image has {name} {version}")
        elif name in SKIPPED and parent == "lmdeploy":
            lines.append(f"skip {parent} -> {req}: {SKIPPED[name]}")
        else:
            lines.append(f"MISSING {parent} -> {req}")
            problems.append(f"MISSING: {parent} needs {req}, neither carried nor in the image")
    unused = sorted(set(carried) - used)
    print(f"lmdeploy {lmd_version}: {len(carried)} carried wheels")
    print("\n".join(lines))
    for name in unused:
        print(f"note: carried {name} {carried[name][0]} is not needed by lmdeploy's requirements")
    for p in problems:
        print(p, file=sys.stderr)
    print("wheelcheck: OK" if not problems else f"wheelcheck: {len(problems)} problem(s)")
    return 1 if problems else 0


def main(argv: List[str]) -> int:
    if len(argv) != 1 or not (Path(argv[0]) / "lmdeploy_src.tgz").is_file():
        print("usage: python3 lab/wheelcheck.py DEST   (DEST holds whl/ and lmdeploy_src.tgz)", file=sys.stderr)
        return 2
    return check(Path(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
