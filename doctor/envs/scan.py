"""Read one environment from disk: layout, Python version, import path and installed packages.

The result carries the same ``py.*`` / ``pkg.*`` facts the ``python`` and ``packages`` probes give for
the examined env (through :func:`doctor.facts.packages.site_facts`), so every env is judged by the same
rules. The env's interpreter is never run: the Python version comes from ``pyvenv.cfg``, the conda
``python`` record or the ``lib/pythonX.Y`` folder, and the import path is rebuilt from the layout the
way ``site`` builds it. What makes an env unusable (no interpreter, no readable site-packages, a key
package whose metadata is gone) is recorded as a problem and marks the env broken; it never raises.
"""
from __future__ import annotations

import glob
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from doctor.envs.discover import Candidate, Problem, env_layout, problem
from doctor.facts import packages
from doctor.facts import target as targets

# Packages whose metadata must be intact for an env to be trusted with lmdeploy.
KEY_PACKAGES = ("lmdeploy", "torch", "transformers", "timm", "einops", "triton", "torchvision", "numpy", "gradio")
_PY_DIR = re.compile(r"^python(\d+\.\d+)t?$")
_PY_VERSION = re.compile(r'#define\s+PY_VERSION\s+"(\d+\.\d+\.\d+)')


@dataclass
class Env:
    prefix: str
    kind: str                      # conda | venv | system
    name: str
    sources: List[str]
    python: Optional[str] = None   # interpreter path; None when missing
    python_version: Optional[str] = None
    site_dirs: List[str] = field(default_factory=list)
    facts: Dict[str, Any] = field(default_factory=dict)   # py.* and pkg.* facts, as the probes name them
    problems: List[Problem] = field(default_factory=list)
    broken: bool = False
    is_self: bool = False          # the interpreter lmdoctor runs in
    active: bool = False           # the env the shell has activated (VIRTUAL_ENV / CONDA_PREFIX)
    scan_ms: float = 0.0

    def package(self, name: str) -> Optional[str]:
        return self.facts.get(f"pkg.{name}.version")


def _pyvenv_cfg(prefix: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    try:
        with open(os.path.join(prefix, "pyvenv.cfg"), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, eq, value = line.partition("=")
                if eq:
                    out[key.strip().lower()] = value.strip()
    except OSError:
        pass
    return out


def _lib_versions(prefix: str) -> List[str]:
    """``3.10`` for every ``lib/python3.10`` folder, newest first."""
    found = []
    for path in glob.glob(os.path.join(prefix, "lib", "python3*")):
        m = _PY_DIR.match(os.path.basename(path))
        if m and os.path.isdir(path):
            found.append(m.group(1))
    return sorted(found, key=lambda v: tuple(int(x) for x in v.split(".")), reverse=True)


def python_version(prefix: str, kind: str, cfg: Mapping[str, str]) -> Optional[str]:
    """From pyvenv.cfg (venv: ``version_info``, virtualenv: ``version``), the conda record, the C headers,
    or the ``lib/pythonX.Y`` folder name (minor version only)."""
    if kind == "venv":
        for key in ("version_info", "version"):
            value = cfg.get(key, "")
            if re.match(r"^\d+\.\d+", value):
                return ".".join(value.split(".")[:3])
    if kind == "conda":
        record = packages.conda_records(prefix).get("python")
        if record:
            return record[0]
    libs = _lib_versions(prefix)
    if not libs:
        return None
    # The C headers name the exact release (``#define PY_VERSION "3.10.13"``); one small read.
    try:
        with open(os.path.join(prefix, "include", f"python{libs[0]}", "patchlevel.h"), encoding="utf-8",
                  errors="replace") as fh:
            m = _PY_VERSION.search(fh.read())
        if m and m.group(1).startswith(libs[0] + "."):
            return m.group(1)
    except OSError:
        pass
    return libs[0]


def _minor(version: Optional[str]) -> Optional[str]:
    return ".".join(version.split(".")[:2]) if version else None


def site_dirs(prefix: str, kind: str, version: Optional[str], cfg: Mapping[str, str],
              environ: Mapping[str, str]) -> List[str]:
    """The folders ``import`` searches for packages, in ``sys.path`` order (stdlib left out).

    Non-venv interpreters put the user site (``~/.local/lib/pythonX.Y/site-packages``) before their
    own site-packages; a venv sees its base's site-packages only with include-system-site-packages.
    """
    minor = _minor(version)
    libs = [minor] if minor and os.path.isdir(os.path.join(prefix, "lib", f"python{minor}")) else _lib_versions(prefix)[:1]
    own = [os.path.join(prefix, lib, f"python{v}", "site-packages") for v in libs for lib in ("lib", "lib64")]
    own = [d for d in own if os.path.isdir(d)]
    out: List[str] = []
    if kind != "venv" and minor and not environ.get("PYTHONNOUSERSITE"):
        user = os.path.join(targets.home_dir(environ), ".local", "lib", f"python{minor}", "site-packages")
        if os.path.isdir(user):
            out.append(user)
    out += own
    if kind == "venv" and cfg.get("include-system-site-packages", "").lower() == "true" and cfg.get("home"):
        base = os.path.dirname(cfg["home"].rstrip("/"))
        out += [d for d in (os.path.join(base, "lib", f"python{minor}", "site-packages"),) if os.path.isdir(d)]
    seen: List[str] = []
    for d in out:
        if os.path.realpath(d) not in (os.path.realpath(s) for s in seen):
            seen.append(d)
    return seen


def _python(env: Env) -> None:
    """Find the interpreter; a dangling ``bin/python`` link is the classic broken env (base Python removed)."""
    env.python = targets.python_in(env.prefix)
    if env.python:
        return
    for rel in ("bin/python", "bin/python3"):
        link = os.path.join(env.prefix, rel)
        if os.path.islink(link):
            env.problems.append(problem(env.prefix, "dangling_python", link=link, target=os.readlink(link)))
            break
    else:
        env.problems.append(problem(env.prefix, "no_python", path=os.path.join(env.prefix, "bin")))
    env.broken = True


def _metadata_problems(env: Env, dists: Dict[str, dict]) -> None:
    for name in KEY_PACKAGES:
        info = dists.get(name)
        if info is None:
            continue
        meta = info["meta"]
        needed = "METADATA" if meta.endswith(".dist-info") else "PKG-INFO"
        if os.path.isdir(meta) and not os.path.isfile(os.path.join(meta, needed)):
            env.problems.append(problem(env.prefix, "missing_metadata", meta=meta, file=needed))
            env.broken = True
    for name in ("lmdeploy", "torch"):
        where = env.facts.get(f"pkg.{name}.no_metadata")
        if where:
            env.problems.append(problem(env.prefix, "no_metadata_module", module=name, path=where))


def scan_env(cand: Candidate, environ: Mapping[str, str], cwd: str) -> Env:
    """Read one env; problems are recorded on it, never raised."""
    t0 = time.perf_counter()
    prefix = cand.prefix
    kind = env_layout(prefix) or "system"
    kind_name = targets.env_kind_and_name(prefix)
    name = kind_name[1] or os.path.basename(prefix.rstrip("/")) or prefix
    env = Env(prefix=prefix, kind=kind, name=name, sources=list(cand.sources))
    env.is_self = os.path.realpath(prefix) == os.path.realpath(sys.prefix)
    active = environ.get("VIRTUAL_ENV") or environ.get("CONDA_PREFIX")
    env.active = bool(active) and os.path.realpath(active) == os.path.realpath(prefix)
    _python(env)
    cfg = _pyvenv_cfg(prefix) if kind == "venv" else {}
    if env.is_self:
        import platform
        env.python_version = platform.python_version()
        env.site_dirs = targets.Target(python=sys.executable, is_self=True, sys_path=list(sys.path)).site_dirs
    else:
        env.python_version = python_version(prefix, kind, cfg)
        env.site_dirs = site_dirs(prefix, kind, env.python_version, cfg, environ)
    if not env.python_version:
        env.problems.append(problem(prefix, "python_version_unknown"))
    readable = []
    for d in env.site_dirs:
        try:
            os.listdir(d)
            readable.append(d)
        except OSError as exc:
            env.problems.append(problem(d, "unreadable_site", error=exc.strerror or str(exc)))
            env.broken = True
    if not env.site_dirs:
        env.problems.append(problem(prefix, "no_site_packages"))
        env.broken = True
    dists = packages.scan(readable)
    env.facts = {"py.executable": env.python or os.path.join(prefix, "bin", "python"), "py.prefix": prefix,
                 "py.env.kind": kind, "py.is_lmdoctor_env": env.is_self}
    if kind_name[1]:
        env.facts["py.env.name"] = kind_name[1]
    if env.python_version:
        env.facts["py.version"] = env.python_version
    if env.python is None:
        env.facts["py.runs"] = False
        env.facts["py.error"] = env.problems[0].text
    env.facts.update(packages.site_facts(readable, cwd, dists))
    if kind == "conda":
        packages.add_conda_packages(prefix, env.facts)
    _metadata_problems(env, dists)
    env.scan_ms = (time.perf_counter() - t0) * 1000
    return env
