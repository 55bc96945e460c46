"""Which Python environment is being examined, found without activating or importing anything.

The default target is the environment the user would launch lmdeploy from: the active virtualenv or
conda env (``VIRTUAL_ENV`` / ``CONDA_PREFIX``), else the interpreter running lmdoctor. ``--python``
and ``--env`` pick another one. A foreign interpreter is run once, with a timeout, only to learn its
version and ``sys.path``; if it cannot start (a broken env is exactly what we diagnose) its
site-packages folders are found on disk instead.
"""
from __future__ import annotations

import ast
import glob
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

# Runs in the examined interpreter: builtins and sys only (no `platform`), so it costs ~10 ms.
_INTROSPECT = (
    "import sys;"
    "print(repr({'version':'%d.%d.%d'%sys.version_info[:3],'prefix':sys.prefix,"
    "'base_prefix':getattr(sys,'base_prefix',sys.prefix),'executable':sys.executable,'path':sys.path,"
    "'implementation':sys.implementation.name}))"
)
_IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalVM", "ironpython": "IronPython"}


class TargetError(Exception):
    """The requested environment does not exist (a usage error, reported in one line)."""


@dataclass
class Target:
    python: str
    is_self: bool
    prefix: Optional[str] = None
    version: Optional[str] = None
    implementation: Optional[str] = None
    sys_path: List[str] = field(default_factory=list)
    env_kind: str = "system"          # venv | conda | system
    env_name: Optional[str] = None
    error: Optional[str] = None       # why the interpreter could not be run, if it could not

    @property
    def site_dirs(self) -> List[str]:
        """Existing directories of sys.path, import order, deduplicated ('' is the working dir)."""
        seen: List[str] = []
        for entry in self.sys_path:
            path = os.path.abspath(entry or ".")
            if path not in seen and os.path.isdir(path):
                seen.append(path)
        return seen


def env_kind_and_name(prefix: Optional[str]) -> tuple:
    if not prefix:
        return "system", None
    if os.path.isdir(os.path.join(prefix, "conda-meta")):
        # The root install is "base"; any other prefix is named by its folder,
        # including envs kept outside envs/ such as /root/share/pre_envs/icamp3_demo.
        return "conda", "base" if is_conda_root(prefix) else os.path.basename(prefix)
    if os.path.isfile(os.path.join(prefix, "pyvenv.cfg")):
        base = os.path.basename(prefix)
        if base.startswith("."):
            base = f"{os.path.basename(os.path.dirname(prefix))}/{base}"
        return "venv", base
    return "system", None


def python_in(prefix: str) -> Optional[str]:
    """The interpreter of an env folder (``bin/python``...), or None when there is none that exists."""
    for rel in ("bin/python", "bin/python3", "python.exe", "Scripts/python.exe"):
        candidate = os.path.join(prefix, rel)
        if os.path.isfile(candidate):
            return candidate
    return None


_python_in = python_in  # the name other modules of the core used before it became public


def home_dir(environ: Mapping[str, str]) -> str:
    return environ.get("HOME") or os.path.expanduser("~")


def conda_roots(environ: Mapping[str, str]) -> List[str]:
    """Existing base conda installs: the one ``CONDA_EXE`` / ``CONDA_PREFIX`` belong to, then the usual folders."""
    roots: List[str] = []
    if environ.get("CONDA_EXE"):
        roots.append(os.path.dirname(os.path.dirname(environ["CONDA_EXE"])))
    if environ.get("CONDA_PREFIX"):
        prefix = environ["CONDA_PREFIX"]
        roots.append(os.path.dirname(os.path.dirname(prefix)) if os.path.basename(os.path.dirname(prefix)) == "envs" else prefix)
    home = home_dir(environ)
    roots += [os.path.join(home, n) for n in ("miniconda3", "anaconda3", "miniforge3", "mambaforge")] + ["/opt/conda"]
    out: List[str] = []
    for r in roots:
        r = os.path.abspath(r)
        if r not in out and is_conda_root(r):
            out.append(r)
    return out


def is_conda_root(prefix: str) -> bool:
    """A base install (it has conda-meta and holds envs/ or condabin/), not an env of one."""
    return os.path.isdir(os.path.join(prefix, "conda-meta")) and \
        any(os.path.isdir(os.path.join(prefix, d)) for d in ("envs", "condabin"))


def condarc_files(environ: Mapping[str, str], roots: List[str]) -> List[str]:
    """The .condarc files conda reads (system, each base install, user, $CONDARC) that exist."""
    home = home_dir(environ)
    paths = ["/etc/conda/.condarc", "/etc/conda/condarc"]
    paths += [os.path.join(r, ".condarc") for r in roots]
    paths += [os.path.join(home, ".config", "conda", ".condarc"), os.path.join(home, ".conda", ".condarc"),
              os.path.join(home, ".condarc")]
    if environ.get("CONDARC"):
        paths.append(environ["CONDARC"])
    return [p for p in paths if os.path.isfile(p)]


def condarc_envs_dirs(path: str, environ: Mapping[str, str]) -> List[str]:
    """``envs_dirs`` of one .condarc (``~`` and ``$VARS`` expanded); ValueError when it cannot be read."""
    import yaml
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {getattr(exc, 'strerror', None) or 'invalid YAML'}") from None
    dirs = data.get("envs_dirs") if isinstance(data, dict) else None
    if not isinstance(dirs, list):
        return []
    home = home_dir(environ)
    out = []
    for d in dirs:
        d = str(d)
        if d.startswith("~"):
            d = home + d[1:]
        out.append(os.path.expandvars(d))
    return out


def environments_txt(environ: Mapping[str, str]) -> List[str]:
    """Env prefixes conda registered in ``~/.conda/environments.txt`` (listed even if since deleted)."""
    txt = os.path.join(home_dir(environ), ".conda", "environments.txt")
    try:
        with open(txt, encoding="utf-8", errors="replace") as fh:
            return [line.strip() for line in fh if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def conda_env_dirs(environ: Mapping[str, str]) -> List[str]:
    """Folders that hold named conda envs, from the usual places (no `conda` call), in conda's order."""
    dirs: List[str] = []
    for var in ("CONDA_ENVS_PATH", "CONDA_ENVS_DIRS"):
        dirs += [d for d in environ.get(var, "").split(os.pathsep) if d]
    roots = conda_roots(environ)
    for rc in condarc_files(environ, roots):
        try:
            dirs += condarc_envs_dirs(rc, environ)
        except ValueError:
            continue  # a broken .condarc is conda's problem to report; its other folders still count
    dirs += [os.path.join(r, "envs") for r in roots]
    dirs.append(os.path.join(home_dir(environ), ".conda", "envs"))
    out: List[str] = []
    for d in dirs:
        d = os.path.abspath(d)
        if d not in out and os.path.isdir(d):
            out.append(d)
    return out


def find_conda_env(name: str, environ: Mapping[str, str]) -> str:
    """Prefix of a conda env given by name or path; raises TargetError listing what exists."""
    if os.sep in name and os.path.isdir(name):
        return os.path.abspath(name)
    candidates: List[str] = []
    for d in conda_env_dirs(environ):
        path = os.path.join(d, name)
        if os.path.isdir(path):
            return path
        candidates += sorted(os.listdir(d))
    for line in environments_txt(environ):
        if os.path.basename(line) == name and os.path.isdir(line):
            return line
    known = ", ".join(sorted(set(candidates))) or "none found"
    raise TargetError(f"conda env '{name}' not found (known envs: {known})")


def _run_interpreter(python: str, timeout_s: float) -> Dict:
    proc = subprocess.run([python, "-c", _INTROSPECT], capture_output=True, text=True, timeout=timeout_s,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise RuntimeError(tail[0])
    info = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    if not isinstance(info, dict):
        raise ValueError("unexpected answer from the interpreter")
    return info


def _disk_fallback(target: Target) -> None:
    """When the interpreter cannot run, find its site-packages and version from the folder layout."""
    prefix = target.prefix or os.path.dirname(os.path.dirname(os.path.abspath(target.python)))
    target.prefix = prefix
    sites = sorted(glob.glob(os.path.join(prefix, "lib", "python3*", "site-packages")))
    target.sys_path = sites + [d for site in sites for d in _pth_dirs(site) if d not in sites]
    if sites:
        target.version = os.path.basename(os.path.dirname(sites[-1]))[len("python"):]


def _pth_dirs(site: str) -> List[str]:
    """Folders that .pth files in ``site`` add to sys.path (editable installs); `import` lines are skipped."""
    out: List[str] = []
    try:
        names = sorted(n for n in os.listdir(site) if n.endswith(".pth"))
    except OSError:
        return out
    for name in names:
        try:
            with open(os.path.join(site, name), encoding="utf-8", errors="replace") as fh:
                lines = fh.read(65536).splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.strip()
            if not line or line.startswith(("#", "import ", "import\t")):
                continue
            path = line if os.path.isabs(line) else os.path.join(site, line)
            if os.path.isdir(path) and path not in out:
                out.append(os.path.normpath(path))
    return out


def _broken(python: str, prefix: Optional[str], error: str) -> Target:
    """A target whose interpreter cannot run: examined from its folders on disk."""
    target = Target(python=python, is_self=False, prefix=prefix, error=error)
    _disk_fallback(target)
    target.env_kind, target.env_name = env_kind_and_name(target.prefix)
    return target


def resolve(python: Optional[str] = None, env_name: Optional[str] = None,
            environ: Optional[Mapping[str, str]] = None, timeout_s: float = 5.0) -> Target:
    """Resolve the environment to examine (see module docstring for the default)."""
    environ = os.environ if environ is None else environ
    if python and env_name:
        raise TargetError("use either --python or --env, not both")
    if env_name:
        prefix = find_conda_env(env_name, environ)
        python = _python_in(prefix)
        if python is None:
            link = os.path.join(prefix, "bin", "python")
            why = f"bin/python is a dangling link to {os.readlink(link)}" if os.path.islink(link) else \
                "no python executable in the env"
            return _broken(link, prefix, why)
    elif python:
        if os.path.islink(python) and not os.path.exists(python):
            # A venv whose base interpreter was removed or upgraded: the env is broken, not the argument.
            return _broken(os.path.abspath(python), None, f"dangling link to {os.readlink(python)} (base interpreter removed?)")
        if not os.path.exists(python):
            raise TargetError(f"--python {python}: no such file")
        if os.path.isdir(python):
            found = _python_in(python)
            if found is None:
                raise TargetError(f"--python {python}: a folder without bin/python")
            python = found
        if not os.access(python, os.X_OK):
            raise TargetError(f"--python {python}: not executable")
    else:
        active = environ.get("VIRTUAL_ENV") or environ.get("CONDA_PREFIX")
        python = _python_in(active) if active else None
        python = python or sys.executable
    python = os.path.abspath(python)
    if _same_interpreter(python):
        kind, name = env_kind_and_name(sys.prefix)
        import platform
        return Target(python=sys.executable, is_self=True, prefix=sys.prefix, version=platform.python_version(),
                      implementation=platform.python_implementation(), sys_path=list(sys.path),
                      env_kind=kind, env_name=name)
    target = Target(python=python, is_self=False)
    try:
        info = _run_interpreter(python, timeout_s)
        target.prefix, target.version = info["prefix"], info["version"]
        target.sys_path = [str(p) for p in info["path"]]
        target.implementation = _IMPLEMENTATIONS.get(str(info.get("implementation")), info.get("implementation"))
    except subprocess.TimeoutExpired:
        target.error = f"interpreter did not answer within {timeout_s:g}s"
        _disk_fallback(target)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        target.error = f"interpreter failed to start: {exc}"
        _disk_fallback(target)
    target.env_kind, target.env_name = env_kind_and_name(target.prefix)
    return target


def _same_interpreter(python: str) -> bool:
    """True when ``python`` is the environment running lmdoctor, so no subprocess is needed.

    Identity is the environment, not the binary: every venv's bin/python links to the same base
    interpreter, so resolving symlinks would mistake any venv for lmdoctor's own.
    """
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return True
    prefix = os.path.dirname(os.path.dirname(os.path.abspath(python)))
    if os.path.isfile(os.path.join(prefix, "pyvenv.cfg")):
        return os.path.realpath(prefix) == os.path.realpath(sys.prefix)
    try:  # not a venv: the same binary is the same environment unless lmdoctor itself runs in a venv
        return os.path.samefile(python, sys.executable) and sys.prefix == getattr(sys, "base_prefix", sys.prefix)
    except OSError:
        return False
