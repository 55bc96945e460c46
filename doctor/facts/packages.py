"""Installed packages, read from metadata folders on disk (never imported).

Listing ``*.dist-info`` / ``*.egg-info`` folder names along the target's ``sys.path`` gives every
distribution and its version in a millisecond; only a few files are opened (lmdeploy's METADATA for
its CUDA build, torch's ``version.py`` for its CUDA build, lmdeploy's folder for the TurboMind
extension). Import order is respected: the first folder on ``sys.path`` that has a package wins,
exactly like ``import`` would. In a conda env, the ``conda-meta/`` record names fill in what conda
installed without pip metadata (torch from the ``pytorch`` channel, ``torchtriton``).
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Tuple

from doctor.facts import ProbeContext, ProbeResult, probe

_NORMALIZE = re.compile(r"[-_.]+")
_CUDA_TAG = re.compile(r"\+cu(\d+)(\d)$")
_TORCH_CUDA = re.compile(r"""^cuda\s*(?::[^=]*)?=\s*['"]([\d.]+)['"]""", re.M)
_VERSION_ASSIGN = re.compile(r"""^__version__\s*(?::[^=]*)?=\s*['"]([^'"]+)['"]""", re.M)
# Packages whose import folder is checked when no metadata exists (conda's torchtriton ships `triton`
# without triton's own dist-info; source checkouts on PYTHONPATH have no metadata at all).
_BARE_MODULES = {"triton": "triton", "lmdeploy": "lmdeploy", "torch": "torch"}
# conda packages that install a Python distribution under another name, often without pip metadata.
_CONDA_TO_PIP = {"pytorch": "torch", "torchtriton": "triton", "torchvision": "torchvision", "torchaudio": "torchaudio"}
_CONDA_CUDA = re.compile(r"cuda(\d+\.\d+)")


def normalize(name: str) -> str:
    """PEP 503 name normalisation: `Flash_Attn` and `flash-attn` are the same distribution."""
    return _NORMALIZE.sub("-", name).lower()


def cuda_from_local_tag(version: str) -> Optional[str]:
    """`2.1.2+cu121` → `12.1`; `+cpu` → `cpu`; `+rocm6.0` → `rocm`; no tag → None."""
    if version.endswith("+cpu"):
        return "cpu"
    if "+rocm" in version:
        return "rocm"
    m = _CUDA_TAG.search(version)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def _parse_meta_dir(entry: str) -> Optional[Tuple[str, Optional[str]]]:
    stem = entry[: -len(".dist-info")] if entry.endswith(".dist-info") else entry[: -len(".egg-info")]
    if entry.endswith(".dist-info"):
        name, _, version = stem.partition("-")
        return normalize(name), version or None
    parts = stem.split("-")
    return normalize(parts[0]), (parts[1] if len(parts) > 1 else None)


def _metadata_file(meta: str) -> str:
    """The core-metadata file of a metadata folder: METADATA (dist-info), PKG-INFO (egg-info dir), or the file itself."""
    if meta.endswith(".dist-info"):
        return os.path.join(meta, "METADATA")
    return meta if os.path.isfile(meta) else os.path.join(meta, "PKG-INFO")


def _read_field(path: str, field: str) -> Optional[str]:
    prefix = field + ":"
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(prefix):
                    return line[len(prefix):].strip()
                if not line.strip():
                    break
    except OSError:
        return None
    return None


def _read_text(path: str, limit: int = 65536) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except OSError:
        return ""


def scan(site_dirs: List[str]) -> Dict[str, dict]:
    """Map normalised name → {version, dir, meta, duplicates}; first sys.path entry wins."""
    found: Dict[str, dict] = {}
    for site in site_dirs:
        try:
            entries = os.listdir(site)
        except OSError:
            continue
        local: Dict[str, List[Tuple[Optional[str], str]]] = {}
        for entry in entries:
            if entry.endswith((".dist-info", ".egg-info")):
                parsed = _parse_meta_dir(entry)
                if parsed:
                    local.setdefault(parsed[0], []).append((parsed[1], os.path.join(site, entry)))
        for name, items in local.items():
            if name in found:
                continue
            # Several metadata folders of one package in one folder (an interrupted upgrade): which one
            # `importlib.metadata` returns depends on directory order, so pick deterministically
            # (dist-info before egg-info, then the newest) and report all of them as duplicates.
            items.sort(key=lambda item: (item[1].endswith(".dist-info"), _sort_version(item[0])), reverse=True)
            version, meta = items[0]
            if version is None:
                version = _read_field(_metadata_file(meta), "Version")
            info = {"version": version, "dir": site, "meta": meta}
            if len(items) > 1:
                info["duplicates"] = sorted(v or "?" for v, _ in items)
            found[name] = info
    return found


def _sort_version(text: Optional[str]) -> tuple:
    from packaging.version import InvalidVersion, Version
    try:
        return (1, Version(text or ""))
    except InvalidVersion:
        return (0, Version("0"))


def _turbomind_present(pkg_dir: str) -> bool:
    for sub in ("lib", "turbomind", ""):
        folder = os.path.join(pkg_dir, sub)
        try:
            if any(f.startswith("_turbomind") and f.endswith((".so", ".pyd")) for f in os.listdir(folder)):
                return True
        except OSError:
            continue
    return False


def _module_dir(site_dirs: List[str], module: str) -> Optional[str]:
    for site in site_dirs:
        path = os.path.join(site, module)
        if os.path.isfile(os.path.join(path, "__init__.py")):
            return path
    return None


@probe("packages", {
    "pkg.count": "number of installed distributions",
    "pkg.*.version": "installed version of a distribution (PEP 503 name); absent = not installed",
    "pkg.*.location": "site folder the distribution is imported from",
    "pkg.*.duplicates": "versions when several metadata folders of one package sit side by side (broken env)",
    "pkg.*.editable": "installed in editable/develop mode",
    "pkg.*.no_metadata": "importable folder found without any metadata (source checkout, conda-only build)",
    "pkg.torch.cuda_build": "CUDA version torch was built for (e.g. 12.1), or `cpu` / `rocm`",
    "pkg.lmdeploy.turbomind": "whether lmdeploy's TurboMind extension (_turbomind*.so) is installed",
    "pkg.lmdeploy.cuda_tag": "CUDA build from lmdeploy's local version tag (+cu118 → 11.8)",
    "pkg.lmdeploy.requires_cuda_major": "CUDA major of the nvidia-*-cuXX wheels lmdeploy depends on",
    "pkg.lmdeploy.shadowed_by": "an lmdeploy source folder that `import lmdeploy` would pick before the installed one",
    "pkg.lmdeploy.shadowed_via": "`cwd` (only scripts and `python -m` started here) or `sys.path` (every launch)",
    "pkg.lmdeploy.requires": "lmdeploy's own requirements (Requires-Dist without extras, markers kept)",
}, timeout_s=4.0)
def package_facts(ctx: ProbeContext) -> ProbeResult:
    t = ctx.target
    facts = site_facts(t.site_dirs, ctx.cwd)
    if t.prefix:
        add_conda_packages(t.prefix, facts)
    return ProbeResult(facts)


def site_facts(sites: List[str], cwd: str, dists: Optional[Dict[str, dict]] = None) -> Dict[str, object]:
    """The ``pkg.*`` facts of an environment whose import path is ``sites`` (first folder wins).

    Shared by the ``packages`` probe (the examined env) and ``lmdoctor envs`` (every env on the
    machine), so both judge an environment from the same facts. ``dists`` is :func:`scan`'s result
    when the caller already has it.
    """
    dists = scan(sites) if dists is None else dists
    facts: Dict[str, object] = {"pkg.count": len(dists)}
    for name, info in dists.items():
        if info["version"]:
            facts[f"pkg.{name}.version"] = info["version"]
        facts[f"pkg.{name}.location"] = info["dir"]
        if "duplicates" in info:
            facts[f"pkg.{name}.duplicates"] = info["duplicates"]
        if info["meta"].endswith(".dist-info") and name in ("lmdeploy", "torch", "transformers", "timm"):
            direct = _read_text(os.path.join(info["meta"], "direct_url.json"), 4096)
            if '"editable": true' in direct.replace("'", '"'):
                facts[f"pkg.{name}.editable"] = True
    for name, module in _BARE_MODULES.items():
        if name not in dists:
            mod_dir = _module_dir(sites, module)
            if mod_dir:
                facts[f"pkg.{name}.no_metadata"] = mod_dir
                version = _VERSION_ASSIGN.search(_read_text(os.path.join(mod_dir, "__init__.py")) or "")
                version = version or _VERSION_ASSIGN.search(_read_text(os.path.join(mod_dir, "version.py")))
                if version:
                    facts[f"pkg.{name}.version"] = version.group(1)
    _torch_facts(sites, dists, facts)
    _lmdeploy_facts(sites, dists, facts, cwd)
    return facts


def conda_records(prefix: str) -> Dict[str, Tuple[str, str]]:
    """conda package name → (version, build) from the ``conda-meta/NAME-VERSION-BUILD.json`` file names.

    Only the names are listed (no record is opened), so this costs one ``listdir``. Empty when the
    prefix is not a conda env or its conda-meta cannot be read.
    """
    try:
        entries = os.listdir(os.path.join(prefix, "conda-meta"))
    except OSError:
        return {}
    out: Dict[str, Tuple[str, str]] = {}
    for entry in entries:
        if entry.endswith(".json"):
            parts = entry[: -len(".json")].rsplit("-", 2)
            if len(parts) == 3:
                out[parts[0]] = (parts[1], parts[2])
    return out


def add_conda_packages(prefix: str, facts: Dict[str, object]) -> None:
    """Fill in what conda installed without pip metadata (the ``pytorch`` channel's torch, ``torchtriton``).

    pip metadata wins: a conda record only supplies a version that no site folder reported, and the
    CUDA build of torch from the ``pytorch`` package's build string (``py3.10_cuda12.1_cudnn8.9.2_0``)
    or the ``pytorch-cuda`` pin.
    """
    records = conda_records(prefix)
    for conda_name, pip_name in _CONDA_TO_PIP.items():
        if conda_name in records and f"pkg.{pip_name}.version" not in facts:
            facts[f"pkg.{pip_name}.version"] = records[conda_name][0]
    if "pytorch" in records and "pkg.torch.cuda_build" not in facts:
        build = records["pytorch"][1]
        m = _CONDA_CUDA.search(build)
        if m:
            facts["pkg.torch.cuda_build"] = m.group(1)
        elif build.startswith("cpu") or "_cpu_" in build:
            facts["pkg.torch.cuda_build"] = "cpu"
        elif "pytorch-cuda" in records:
            facts["pkg.torch.cuda_build"] = records["pytorch-cuda"][0]


def _torch_facts(sites: List[str], dists: Dict[str, dict], facts: Dict[str, object]) -> None:
    version = facts.get("pkg.torch.version")
    if not version:
        return
    build = cuda_from_local_tag(str(version))
    if build is None:
        torch_dir = _module_dir(sites, "torch")
        text = _read_text(os.path.join(torch_dir, "version.py")) if torch_dir else ""
        m = _TORCH_CUDA.search(text)
        if m:
            build = m.group(1)
        elif re.search(r"^hip\s*(?::[^=]*)?=\s*['\"]", text, re.M):
            build = "rocm"
        elif re.search(r"^cuda\s*(?::[^=]*)?=\s*None", text, re.M):
            build = "cpu"
    if build:
        facts["pkg.torch.cuda_build"] = build


def _lmdeploy_facts(sites: List[str], dists: Dict[str, dict], facts: Dict[str, object], cwd: str) -> None:
    info = dists.get("lmdeploy")
    first = _module_dir(sites, "lmdeploy")
    # The installed package sits next to its metadata; an editable install has no folder there and
    # is imported from wherever its .pth points, i.e. the first lmdeploy folder on sys.path.
    installed_dir = (_module_dir([info["dir"]], "lmdeploy") or first) if info else first
    if installed_dir:
        facts["pkg.lmdeploy.turbomind"] = _turbomind_present(installed_dir)
        # An lmdeploy source folder earlier on sys.path (PYTHONPATH, a .pth file) or in the working dir
        # (which `python -m` and scripts put first) shadows the installed package, and it has no
        # compiled TurboMind.
        cwd_tree = os.path.join(os.path.abspath(cwd), "lmdeploy")
        for candidate in (first, cwd_tree):
            if candidate and os.path.isfile(os.path.join(candidate, "__init__.py")) and \
                    os.path.realpath(candidate) != os.path.realpath(installed_dir):
                facts["pkg.lmdeploy.shadowed_by"] = candidate
                same_as_cwd = os.path.realpath(candidate) == os.path.realpath(cwd_tree)
                facts["pkg.lmdeploy.shadowed_via"] = "cwd" if same_as_cwd else "sys.path"
                break
    if not info:
        return
    tag = cuda_from_local_tag(info["version"] or "")
    if tag:
        facts["pkg.lmdeploy.cuda_tag"] = tag
    text = _read_text(_metadata_file(info["meta"]), 1 << 20)
    majors = set()
    for m in re.finditer(r"^Requires-Dist:\s*nvidia-[a-z\-]+-cu(\d+)", text, re.M):
        majors.add(m.group(1))
    if len(majors) == 1:
        facts["pkg.lmdeploy.requires_cuda_major"] = majors.pop()
    requires = [r.strip() for r in re.findall(r"^Requires-Dist:(.*)$", text, re.M) if "extra ==" not in r]
    if requires:
        facts["pkg.lmdeploy.requires"] = requires
