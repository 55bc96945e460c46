"""List the Python environments on this machine without activating anything.

Where envs live: conda (``~/.conda/environments.txt``, the ``envs_dirs`` of every ``.condarc``,
``CONDA_ENVS_PATH``, each base install), virtualenv homes (``WORKON_HOME``, ``~/.virtualenvs``, pipenv,
poetry, pyenv), ``.venv`` / ``venv`` in the working folder, shared pre-built env folders such as
InternStudio's ``/root/share/pre_envs`` (plus ``--path DIR`` and the folders in ``LMDOCTOR_ENVS_PATH``,
which ``check`` also searches), the active env and the interpreter lmdoctor runs in. A folder is an env when it has ``conda-meta/`` or ``pyvenv.cfg``, or ``bin/python``
next to ``lib/python3.*``.

Nothing here may fail the command: a folder that cannot be listed, a symlink loop or a stale
``environments.txt`` line becomes a :class:`Problem` in the result, and the walk goes on.
"""
from __future__ import annotations

import errno
import glob
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple

from doctor.envs.texts import PROBLEMS, text
from doctor.facts import target as conda

# Folders a walk never descends into (an env itself is never descended into either).
_SKIP = {"site-packages", "node_modules", "__pycache__", ".git", ".hg", "proc", "sys", "dev"}
SHARED_ENV_DIRS = ("/root/share/pre_envs",)   # InternStudio's pre-built envs (the camp3 tutorials)


@dataclass
class Problem:
    """Something that could not be examined, with a stable code and a sentence for people."""

    path: str
    code: str
    text: str

    def to_json(self) -> Dict[str, str]:
        return {"path": self.path, "code": self.code, "text": self.text}


def problem(where: str, code: str, **fmt: object) -> Problem:
    """A problem about folder ``where``; the sentence may name another ``path`` (a sub-folder) instead."""
    fmt.setdefault("path", where)
    return Problem(where, code, text(PROBLEMS, code, **fmt))


@dataclass
class Candidate:
    """A folder that looks like an env, and every way it was found (``conda envs_dirs``, ``--path``...)."""

    prefix: str
    sources: List[str] = field(default_factory=list)


def env_layout(prefix: str) -> Optional[str]:
    """``conda`` / ``venv`` / ``system`` when ``prefix`` is an env folder, else None (stat calls only)."""
    if os.path.isdir(os.path.join(prefix, "conda-meta")):
        return "conda"
    if os.path.isfile(os.path.join(prefix, "pyvenv.cfg")):
        return "venv"
    if (os.path.lexists(os.path.join(prefix, "bin", "python")) or os.path.lexists(os.path.join(prefix, "bin", "python3"))) \
            and glob.glob(os.path.join(prefix, "lib", "python3*")):
        return "system"
    return None


class Discovery:
    """Collects candidates (deduplicated by real path, first spelling kept) and problems."""

    def __init__(self) -> None:
        self.candidates: Dict[str, Candidate] = {}
        self.problems: List[Problem] = []
        self._reported: Set[Tuple[str, str]] = set()

    def report(self, p: Problem) -> None:
        if (p.path, p.code) not in self._reported:
            self._reported.add((p.path, p.code))
            self.problems.append(p)

    def add(self, prefix: str, source: str) -> None:
        prefix = os.path.abspath(prefix)
        try:
            key = os.path.realpath(prefix)
        except OSError:  # pragma: no cover - realpath does not raise on Linux, kept for other OSes
            key = prefix
        cand = self.candidates.setdefault(key, Candidate(prefix))
        if source not in cand.sources:
            cand.sources.append(source)

    def walk(self, root: str, source: str, depth: int, report_missing: bool = False) -> None:
        """Add ``root`` if it is an env, else look for envs below it, ``depth`` levels deep."""
        self._walk(os.path.abspath(root), source, depth, report_missing, ())

    def _walk(self, path: str, source: str, depth: int, report_missing: bool, ancestors: Tuple[str, ...]) -> None:
        try:
            real = os.path.realpath(path)
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.report(problem(path, "symlink_loop"))
            elif report_missing or exc.errno != errno.ENOENT:
                self.report(problem(path, "unreadable_dir", error=exc.strerror or str(exc)))
            return
        if real in ancestors:
            self.report(problem(path, "symlink_loop"))
            return
        if env_layout(path):
            self.add(path, source)
            return
        if depth <= 0:
            return
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except NotADirectoryError:
            return
        except OSError as exc:
            self.report(problem(path, "unreadable_dir", error=exc.strerror or str(exc)))
            return
        for entry in entries:
            if entry.name in _SKIP:
                continue
            try:
                is_dir = entry.is_dir()
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    self.report(problem(entry.path, "symlink_loop"))
                else:
                    self.report(problem(entry.path, "unreadable_dir", error=exc.strerror or str(exc)))
                continue
            if is_dir:
                self._walk(entry.path, source, depth - 1, False, ancestors + (real,))


def _venv_homes(environ: Mapping[str, str], cwd: str) -> List[Tuple[str, str, int]]:
    """(folder, source, depth) of the places virtualenv tools keep envs."""
    home = conda.home_dir(environ)
    homes = [(environ.get("WORKON_HOME") or os.path.join(home, ".virtualenvs"), "virtualenvs", 1),
             (os.path.join(home, ".venvs"), "~/.venvs", 1), (os.path.join(home, "venvs"), "~/venvs", 1),
             (os.path.join(home, ".local", "share", "virtualenvs"), "pipenv", 1),
             (os.path.join(home, ".cache", "pypoetry", "virtualenvs"), "poetry", 1)]
    pyenv = environ.get("PYENV_ROOT") or os.path.join(home, ".pyenv")
    homes.append((os.path.join(pyenv, "versions"), "pyenv", 1))
    homes += [(os.path.join(cwd, name), "working folder", 0) for name in (".venv", "venv")]
    return homes


def discover(environ: Mapping[str, str], cwd: str, paths: Sequence[str] = (), defaults: bool = True,
             depth: int = 2, self_prefix: Optional[str] = None) -> Discovery:
    """Every env folder found, with its sources, plus what could not be examined.

    ``paths`` are ``--path`` folders: an env, or a folder holding envs ``depth`` levels deep.
    ``defaults=False`` looks only there. ``self_prefix`` is the interpreter lmdoctor runs in
    (``sys.prefix``), listed as the current interpreter.
    """
    found = Discovery()
    for path in paths:
        found.walk(path, "--path", depth, report_missing=True)
    if not defaults:
        return found
    for var, source in (("VIRTUAL_ENV", "active venv"), ("CONDA_PREFIX", "active conda env")):
        if environ.get(var):
            found.walk(environ[var], source, 0, report_missing=True)
    found.walk(self_prefix or sys.prefix, "lmdoctor's interpreter", 0)
    for line in conda.environments_txt(environ):
        if os.path.isdir(line):
            found.walk(line, "environments.txt", 0)
        else:
            found.report(problem(line, "stale_entry", source="~/.conda/environments.txt"))
    roots = conda.conda_roots(environ)
    for root in roots:
        found.add(root, "conda base")
    for rc in conda.condarc_files(environ, roots):
        try:
            conda.condarc_envs_dirs(rc, environ)
        except ValueError as exc:
            found.report(problem(rc, "bad_condarc", error=str(exc).split(": ", 1)[-1]))
    for envs_dir in conda.conda_env_dirs(environ):
        found.walk(envs_dir, "conda envs_dirs", 1)
    for shared in SHARED_ENV_DIRS:
        found.walk(shared, "shared envs", 1)
    for extra in (p for p in environ.get("LMDOCTOR_ENVS_PATH", "").split(os.pathsep) if p):
        found.walk(extra, "LMDOCTOR_ENVS_PATH", depth, report_missing=True)
    for folder, source, level in _venv_homes(environ, cwd):
        found.walk(folder, source, level)
    return found
