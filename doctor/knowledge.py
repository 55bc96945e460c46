"""Access to the knowledge tables in ``rules/knowledge/`` (compatibility, drivers, GPUs, model families).

The tables are data so they can be corrected without touching code; this module only looks things up.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, List, Optional

from packaging.version import InvalidVersion, Version

from doctor import paths, yamlio


@functools.lru_cache(maxsize=None)
def table(name: str) -> Dict[str, Any]:
    return yamlio.load(paths.data_file("knowledge", f"{name}.yaml")) or {}


def version(text: Any) -> Optional[Version]:
    if text is None:
        return None
    try:
        return Version(str(text).split("+")[0])
    except InvalidVersion:
        return None


def satisfies(ver: Any, spec: str) -> Optional[bool]:
    """Whether a version satisfies a specifier set (None when either is unparsable)."""
    v = version(ver)
    if v is None:
        return None
    try:
        from packaging.specifiers import SpecifierSet  # lazy: only needed once lmdeploy is installed
        return SpecifierSet(spec).contains(v, prereleases=True)
    except ValueError:  # InvalidSpecifier
        return None


def lmdeploy_release(ver: Any) -> Optional[Dict[str, Any]]:
    """The compatibility row of an lmdeploy version, or None when the version is outside the table."""
    for row in table("lmdeploy").get("releases", []):
        if satisfies(ver, row["versions"]):
            return row
    return None


def first_release_allowing(package: str, installed: Any, after: Any = None) -> Optional[str]:
    """Lowest lmdeploy release (newer than ``after``) whose requirements allow ``package==installed``."""
    floor = version(after)
    for row in table("lmdeploy").get("releases", []):
        lows = [p.strip()[2:] for p in row["versions"].split(",") if p.strip().startswith(">=")]
        if not lows or (floor is not None and version(lows[0]) <= floor):
            continue
        spec = row.get(package)
        if spec is None or satisfies(installed, spec):
            return lows[0]
    return None


def min_driver_for_cuda(cuda: str, minor_compat: bool = True) -> Optional[str]:
    """Oldest Linux driver that runs a CUDA `cuda` build (minor-version compatibility by default)."""
    data = table("cuda")
    if minor_compat:
        floor = data.get("minor_compat_min_driver", {}).get(cuda.split(".")[0])
        if floor:
            return floor
    return data.get("toolkit_min_driver", {}).get(cuda)


def max_cuda_for_driver(driver: str) -> Optional[str]:
    """Newest CUDA toolkit whose release notes list a minimum driver <= ``driver``."""
    dv = version(driver)
    if dv is None:
        return None
    best: Optional[str] = None
    for cuda, min_drv in table("cuda").get("toolkit_min_driver", {}).items():
        mv = version(min_drv)
        if mv is not None and mv <= dv and (best is None or Version(cuda) > Version(best)):
            best = cuda
    return best


def arch_name(cc: Any) -> Optional[str]:
    row = table("gpus").get("architectures", {}).get(str(cc))
    return row.get("name") if row else None


def feature_min_cc(feature: str, lmdeploy_version: Any = None) -> Optional[str]:
    spec = table("gpus").get("features", {}).get(feature)
    if isinstance(spec, dict):
        return spec.get("min_cc")
    for row in spec or []:
        if lmdeploy_version is None or satisfies(lmdeploy_version, row["lmdeploy"]):
            return row["min_cc"]
    return None


def feature_first_release(feature: str, cc: Any) -> Optional[str]:
    """``>=X``: the lmdeploy versions whose per-version feature row (e.g. awq_turbomind) covers ``cc``."""
    have = version(cc)
    for row in table("gpus").get("features", {}).get(feature) or []:
        spec = str(row.get("lmdeploy", ""))
        if have is not None and have >= version(row["min_cc"]) and spec.startswith(">="):
            return spec
    return None


def families() -> Dict[str, Dict[str, Any]]:
    return table("models").get("families", {})


def match_family(architectures: List[str], model_type: Optional[str], path: Optional[str]) -> Optional[str]:
    """Family name from config.json fields, falling back to the model path (hub id or folder name)."""
    for name, fam in families().items():
        match = fam.get("match", {})
        if any(a in match.get("architectures", []) for a in architectures or []):
            return name
        if model_type and model_type in match.get("model_type", []):
            return name
    if path:
        lowered = path.lower().replace("_", "").replace("-", "")
        for name, fam in families().items():
            if any(p.replace("_", "").replace("-", "") in lowered for p in fam.get("match", {}).get("path", [])):
                return name
    return None


def release_line(ver: Any) -> Optional[str]:
    """`2.1.2+cu121` → `2.1` (major.minor), None when unparsable."""
    v = version(ver)
    return f"{v.major}.{v.minor}" if v is not None else None


def torch_builds(torch_version: Any) -> List[str]:
    """CUDA builds download.pytorch.org publishes for the release line of ``torch_version``."""
    return list(table("torch").get("cuda_builds", {}).get(release_line(torch_version) or "", []))


def torch_index_url(cuda: str) -> str:
    """`11.8` → `https://download.pytorch.org/whl/cu118`."""
    return table("torch").get("index_url", "https://download.pytorch.org/whl/") + "cu" + cuda.replace(".", "")


def newest_build_for_driver(builds: List[str], driver: str) -> Optional[str]:
    """The newest CUDA build in ``builds`` that ``driver`` can run, or None."""
    dv = version(driver)
    ok = [b for b in builds if dv is not None and min_driver_for_cuda(b) and dv >= version(min_driver_for_cuda(b))]
    return max(ok, key=version) if ok else None


def lmdeploy_first_version_with_build(cuda: str) -> Optional[str]:
    """Lowest lmdeploy version whose PyPI wheel is built with CUDA >= ``cuda`` (from the release rows)."""
    need = version(cuda)
    for row in table("lmdeploy").get("releases", []):
        build = version(row.get("cuda_build"))
        if build is not None and need is not None and build >= need:
            lows = [s.strip()[2:] for s in row["versions"].split(",") if s.strip().startswith(">=")]
            if lows:
                return lows[0]
    return None
