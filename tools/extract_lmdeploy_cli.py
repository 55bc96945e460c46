#!/usr/bin/env python3
"""Regenerate ``rules/programs/lmdeploy.yaml`` (lmdeploy's command line, by version) from the real sources.

Why a generator: lmdoctor must only suggest flags that exist in the user's lmdeploy version, and
the CLI changed in almost every release (subcommands removed, flags added, choices narrowed, a
``type=bool`` trap fixed). Hand-copying that from docs drifts; reading every release's own argparse
code does not.

Steps (each is cached, so a re-run is cheap):

1. ``pip index versions lmdeploy`` lists the releases; those in ``[--min, --max]`` are kept.
2. ``pip download --no-deps`` fetches each release's wheel into ``/work/cache/lmdeploy-wheels/``.
3. The wheel's Python sources (everything but compiled extensions) are unpacked into
   ``/work/cache/lmdeploy-src/<version>/`` — other tools read them there.
4. Each version's parser is built by *running lmdeploy's own parser-building code* in a fresh
   child interpreter (``--worker``): the ``lmdeploy`` package is mounted from the unpacked sources
   without executing its heavy ``__init__``, and every third-party import (torch, transformers,
   mmengine, pydantic...) is answered by an inert stub module. ``ArgumentHelper`` indirection,
   helper default overrides, shared actions appended to several groups and computed choices are
   therefore exactly what argparse sees. The worker then walks the real ``argparse`` objects
   (nested subparsers included) and prints every action as JSON. Values that only exist at run
   time (a default computed by a stubbed function) are recorded as ``null`` rather than guessed.
5. Per-version results are merged into ranges: a subcommand gets ``since``/``until``; a flag gets
   one variant per run of consecutive versions with an identical definition.
6. ``.post`` releases are extracted too but listed in ``generated_from`` only when their CLI differs
   from the release they patch (otherwise they would only add noise to the ranges).

Usage::

    python tools/extract_lmdeploy_cli.py                     # everything, writes rules/programs/lmdeploy.yaml
    python tools/extract_lmdeploy_cli.py --versions 0.5.1 0.18.0 --out /tmp/t.yaml
    python tools/extract_lmdeploy_cli.py --dump 0.7.3        # one version's raw extraction as JSON

Needs the network for steps 1-2 (not run by the tests); the output is committed. Needs Python >= 3.10
(``sys.stdlib_module_names``; recent lmdeploy sources use ``X | None`` annotations at run time).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

CACHE = Path(os.environ.get("LMDOCTOR_CACHE", "/work/cache"))
WHEELS = CACHE / "lmdeploy-wheels"
SOURCES = CACHE / "lmdeploy-src"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "rules" / "programs" / "lmdeploy.yaml"
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
PYTHON_TAG = "3.10"


# -- 1-3: versions, wheels, sources ----------------------------------------------------------------
def vkey(version: str):
    from packaging.version import Version
    return Version(version)


def released_versions(low: str, high: str) -> List[str]:
    """Versions ``pip index versions lmdeploy`` lists, within [low, high], oldest first."""
    out = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "lmdeploy"],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r"Available versions:\s*(.+)", out.stdout)
    if not m:
        raise SystemExit(f"pip index versions lmdeploy gave no version list:\n{out.stdout}{out.stderr}")
    versions = [v.strip() for v in m.group(1).split(",") if v.strip()]
    keep = [v for v in versions if vkey(low) <= vkey(v) <= vkey(high)]
    return sorted(keep, key=vkey)


def wheel_path(version: str) -> Optional[Path]:
    found = sorted(WHEELS.glob(f"lmdeploy-{version}-*.whl"))
    return found[0] if found else None


def download(version: str) -> Path:
    """The release's wheel (a manylinux x86_64 CPython 3.10 build), downloaded once."""
    have = wheel_path(version)
    if have:
        return have
    WHEELS.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
           "--python-version", PYTHON_TAG, "-d", str(WHEELS), f"lmdeploy=={version}"]
    for plat in PLATFORMS:
        cmd[6:6] = ["--platform", plat]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    have = wheel_path(version)
    if proc.returncode != 0 or have is None:
        raise RuntimeError(f"pip download lmdeploy=={version} failed: {proc.stderr.strip()[-400:]}")
    return have


def source_dir(version: str) -> Path:
    return SOURCES / version


def unpack(version: str, wheel: Path) -> Path:
    """Unpack the wheel's sources (no compiled extensions) to lmdeploy-src/<version>/ once.

    Other helpers share this folder, so unpacking goes to a temporary sibling first and is renamed
    into place: a reader never sees half a tree, and two concurrent runs cannot interleave files.
    """
    dest = source_dir(version)
    if (dest / "lmdeploy" / "cli").is_dir():
        return dest
    SOURCES.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=SOURCES))
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if name.endswith((".so", ".pyd", ".dll")) or ".so." in name:
                continue
            zf.extract(info, tmp)
    try:
        if dest.exists() and not any(dest.iterdir()):
            dest.rmdir()
        os.rename(tmp, dest)
    except OSError:
        if not (dest / "lmdeploy" / "cli").is_dir():
            raise
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)  # someone else unpacked it meanwhile
    return dest


def fetch(version: str) -> Path:
    return unpack(version, download(version))


# -- 4: the worker (runs in a child interpreter, stdlib only) ----------------------------------------
class _Captured(Exception):
    """Raised from ``parse_args`` to hand the fully built top-level parser back to the worker."""

    def __init__(self, parser):
        super().__init__("captured")
        self.parser = parser


def _install_stubs() -> None:
    """Answer every non-stdlib, non-lmdeploy import with an inert stub module.

    Stubs are permissive on purpose: any attribute is another stub, calling one returns a stub
    (or, used as a decorator on a function/class, returns it unchanged so lmdeploy's own classes
    and functions stay real), they can be subclassed, iterated (empty), compared and or-ed into
    type hints. Argparse definitions are plain literals in lmdeploy's code, so the stubs only have
    to get the imports *around* them through.
    """
    import importlib.abc
    import importlib.machinery
    import types

    class Stub:
        def __init__(self, name: str = "stub"):
            object.__setattr__(self, "_name", name)

        def __getattr__(self, item):
            if item.startswith("__") and item.endswith("__"):
                raise AttributeError(item)
            return Stub(f"{self._name}.{item}")

        def __call__(self, *args, **kwargs):
            if "option_strings" in kwargs and "dest" in kwargs:  # used as an argparse action class
                return ForeignAction(self._name, **kwargs)
            if len(args) == 1 and not kwargs and (isinstance(args[0], type) or callable(args[0]) and
                                                  not isinstance(args[0], Stub)):
                return args[0]
            return Stub(f"{self._name}()")

        def __mro_entries__(self, bases):
            return (type(f"StubBase_{abs(hash(self._name))}", (StubBase,), {}),)

        def __iter__(self):
            return iter(())

        def __getitem__(self, item):
            return Stub(f"{self._name}[]")

        def __or__(self, other):
            return self

        __ror__ = __or__

        def __bool__(self):
            return False

        def __len__(self):
            return 0

        def __lt__(self, other):
            return False

        __le__ = __gt__ = __ge__ = __lt__

        def __hash__(self):
            return id(self)

        def __repr__(self):
            return f"<stub {self._name}>"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    import argparse

    class ForeignAction(argparse.Action):
        """A custom action class from a stubbed package (mmengine's DictAction): kept by name."""

        def __init__(self, foreign_name, **kwargs):
            super().__init__(**kwargs)
            self.foreign_name = foreign_name

        def __call__(self, parser, namespace, values, option_string=None):
            setattr(namespace, self.dest, values)

    class StubBase:
        def __init__(self, *args, **kwargs):
            pass

        def __init_subclass__(cls, **kwargs):
            pass

        def __class_getitem__(cls, item):
            return cls

    class StubModule(types.ModuleType):
        def __getattr__(self, item):
            if item.startswith("__") and item.endswith("__"):
                raise AttributeError(item)
            return Stub(f"{self.__name__}.{item}")

    class Registry:
        """mmengine's Registry, reduced to what lmdeploy's template/parser registries use."""

        def __init__(self, name, *args, **kwargs):
            self.name = name
            self.module_dict = {}

        def register_module(self, name=None, force=False, module=None):
            def deco(cls):
                for n in (name if isinstance(name, (list, tuple)) else [name or cls.__name__]):
                    self.module_dict[n] = cls
                return cls
            return deco(module) if module is not None else deco

        def get(self, name):
            return self.module_dict.get(name)

    class Loader(importlib.abc.Loader):
        def create_module(self, spec):
            mod = StubModule(spec.name)
            mod.__path__ = []
            mod.__version__ = "0.0.0"
            if spec.name in ("mmengine", "mmengine.registry"):
                mod.Registry = Registry
            return mod

        def exec_module(self, module):
            pass

    stdlib = set(sys.stdlib_module_names) | set(sys.builtin_module_names)

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            top = fullname.split(".")[0]
            if top in stdlib or top == "lmdeploy":
                return None
            return importlib.machinery.ModuleSpec(fullname, Loader(), is_package=True)

    sys.meta_path.insert(0, Finder())
    globals()["_Stub"] = Stub


def _build_parser(src: str):
    """Run lmdeploy's own ``lmdeploy.cli.entrypoint.run`` until it calls ``parse_args``."""
    import argparse
    sys.path.insert(0, src)
    _install_stubs()

    def capture(self, *args, **kwargs):
        raise _Captured(self)

    argparse.ArgumentParser.parse_args = capture
    argparse.ArgumentParser.parse_known_args = capture
    sys.argv = ["lmdeploy"]
    from lmdeploy.cli import entrypoint
    try:
        entrypoint.run()
    except _Captured as got:
        return got.parser
    raise RuntimeError("lmdeploy.cli.entrypoint.run() never parsed its arguments")


_BUILTIN_TYPES = {int: "int", float: "float", str: "str", bool: "bool"}


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy of a default/choice, or the marker ``{"dynamic": repr}`` for run-time values."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    import enum
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    return {"dynamic": repr(value)}


def _probe_type(fn) -> Dict[str, Any]:
    """Which strings a custom ``type=`` callable accepts and what it turns them into.

    lmdeploy 0.18's ``--quant-policy`` takes names or numbers through a closure; calling the real
    function on candidate inputs (its closure's string keys, enum members, small integers) is the
    faithful way to learn what the command line accepts without re-implementing it.
    """
    import enum
    candidates: List[str] = [str(i) for i in range(0, 65)]
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            content = cell.cell_contents
        except ValueError:
            continue
        if isinstance(content, dict):
            candidates += [k for k in content if isinstance(k, str)]
        if isinstance(content, type) and issubclass(content, enum.Enum):
            candidates += [m.name.lower() for m in content] + [str(getattr(m, "value", "")) for m in content]
    accepted: Dict[str, Any] = {}
    for text in dict.fromkeys(candidates):
        try:
            value = fn(text)
        except Exception:  # noqa: BLE001 - rejection is the answer we are looking for
            continue
        accepted[text] = _jsonable(value)
    return accepted


def _describe(action) -> Dict[str, Any]:
    import argparse
    kinds = {argparse._StoreAction: "store", argparse._StoreTrueAction: "store_true",
             argparse._StoreFalseAction: "store_false", argparse._StoreConstAction: "store_const",
             argparse._AppendAction: "append", argparse._AppendConstAction: "append_const",
             argparse._CountAction: "count", argparse._HelpAction: "help", argparse._VersionAction: "version"}
    kind = kinds.get(type(action)) or getattr(action, "foreign_name", None) or type(action).__qualname__
    if getattr(argparse, "BooleanOptionalAction", None) and isinstance(action, argparse.BooleanOptionalAction):
        kind = "boolean_optional"
    nargs = action.nargs
    if nargs is None:
        nargs = 1
    elif nargs == argparse.REMAINDER:
        nargs = "..."
    out: Dict[str, Any] = {"options": list(action.option_strings), "dest": action.dest, "action": kind,
                           "nargs": nargs}
    if action.type is not None:
        out["type"] = _BUILTIN_TYPES.get(action.type) or getattr(action.type, "__name__", repr(action.type))
        if str(getattr(action.type, "__module__", "")).startswith("lmdeploy"):
            out["accepts"] = _probe_type(action.type)
    if action.default is not argparse.SUPPRESS:
        out["default"] = _jsonable(action.default)
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        out["choices"] = _jsonable(list(action.choices))
    if action.required and action.option_strings:
        out["required"] = True
    if kind in ("store_const", "append_const"):
        out["const"] = _jsonable(action.const)
    return out


def _walk(parser, path: Tuple[str, ...], out: Dict[str, Any]) -> None:
    import argparse
    entry = {"positionals": [], "flags": {}, "parser_class": type(parser).__name__}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: Dict[int, str] = {}
            for name, sub in action.choices.items():
                if id(sub) in seen:   # an alias of a subcommand already walked
                    out[" ".join(path + (seen[id(sub)],))].setdefault("aliases", []).append(name)
                    continue
                seen[id(sub)] = name
                _walk(sub, path + (name,), out)
            continue
        desc = _describe(action)
        if action.option_strings:
            for opt in action.option_strings:
                entry["flags"][opt] = desc
        else:
            entry["positionals"].append(desc)
    out[" ".join(path)] = entry


# Model paths whose chat template ``--templates`` asks each release's own ``best_match_model``:
# tutorial paths, renamed folders, and near misses. (family, LLM architecture) as lmdoctor sees them.
TEMPLATE_PROBES = {
    "/root/models/internlm2-chat-1_8b": ("internlm2", None),
    "/share/new_models/Shanghai_AI_Laboratory/internlm2_5-7b-chat": ("internlm2", None),
    "/root/models/internlm2_5-7b-chat-w4a16-4bit": ("internlm2", None),
    "/root/models/InternLM2-Math-7B": ("internlm2", None),
    "/root/models/internlm2_5-7b": ("internlm2", None),
    "/root/models/my-chat-model": ("internlm2", None),
    "/root/models/7b-awq": ("internlm2", None),
    "/share/new_models/OpenGVLab/InternVL2-2B": ("internvl", "InternLM2ForCausalLM"),
    "/root/models/InternVL2-26B-w4a16-4bit": ("internvl", "InternLM2ForCausalLM"),
    "/root/models/InternVL2-4B": ("internvl", "Phi3ForCausalLM"),
    "/root/models/InternVL2_5-8B": ("internvl", "InternLM2ForCausalLM"),
    "/root/models/InternVL-Chat-V1-5": ("internvl", "InternLM2ForCausalLM"),
    "/root/models/Mono-InternVL-2B": ("internvl", "InternLM2ForCausalLM"),
    "/root/models/vlm-26b-w4a16": ("internvl", "InternLM2ForCausalLM"),
    "/root/models/my_vl_model": ("internvl", "InternLM2ForCausalLM"),
    "/share/new_models/Shanghai_AI_Laboratory/internlm-xcomposer2-vl-1_8b": ("xcomposer2", None),
    "/root/models/internlm-xcomposer2d5-7b": ("xcomposer2", None),
    "/root/models/xcomposer2-vl-1_8b": ("xcomposer2", None),
    "/root/models/composer-vl": ("xcomposer2", None),
}


def template_worker(src: str) -> None:
    """Child-process entry: print {model path: template name} from the release's best_match_model."""
    sys.dont_write_bytecode = True
    out, sys.stdout = sys.stdout, sys.stderr   # lmdeploy's loggers must not mix into the JSON
    sys.path.insert(0, src)
    _install_stubs()
    from lmdeploy import model as lm_model
    match = getattr(lm_model, "best_match_model", None)
    found = {path: match(path) for path in TEMPLATE_PROBES} if match is not None else {}
    json.dump(found, out, indent=1, sort_keys=True)


def extract_templates(version: str) -> Dict[str, str]:
    src = fetch(version)
    proc = subprocess.run([sys.executable, "-I", "-S", "-B", str(Path(__file__).resolve()), "--worker-templates",
                           str(src)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"lmdeploy {version}: best_match_model failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def worker(src: str) -> None:
    """Child-process entry: print {subcommand: {positionals, flags}} of the sources in ``src``."""
    sys.dont_write_bytecode = True   # the sources are shared; leave no __pycache__ behind
    stdout, sys.stdout = sys.stdout, sys.stderr
    parser = _build_parser(src)
    out: Dict[str, Any] = {}
    _walk(parser, (), out)
    json.dump(out, stdout, indent=1, sort_keys=True)


# -- 5-6: merge versions into ranges, emit the table -------------------------------------------------
def extract(version: str) -> Dict[str, Any]:
    """One version's parser, built by lmdeploy's own code in an isolated child interpreter."""
    src = fetch(version)
    proc = subprocess.run([sys.executable, "-I", "-S", "-B", str(Path(__file__).resolve()), "--worker", str(src)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"lmdeploy {version}: building the parser failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


_TYPE_NAMES = {"loads": "json"}


def variant(desc: Dict[str, Any]) -> Dict[str, Any]:
    """The table's view of one argparse action (what a command-line reader needs, nothing else)."""
    out: Dict[str, Any] = {"nargs": desc["nargs"]}
    if desc["action"] != "store":
        out["action"] = desc["action"]
    typ = desc.get("type")
    if typ and typ != "str":
        out["type"] = typ if typ in ("int", "float", "bool") else _TYPE_NAMES.get(typ, "custom")
    if desc.get("accepts"):
        out["accepts"] = desc["accepts"]
    if desc.get("default") is not None:
        out["default"] = desc["default"]
    if desc.get("choices") is not None:
        out["choices"] = desc["choices"]
    for key in ("required", "const"):
        if desc.get(key) is not None:
            out[key] = desc[key]
    return out


def per_version_view(raw: Dict[str, Any]) -> Dict[str, Any]:
    """{subcommand: {positionals: [...], flags: {flag: variant}}} for runnable subcommands only.

    Group parents (``serve``, ``lite``) and the root only print help, so they are left out, and so
    are ``-h/--help`` (every parser has them; command.py knows them).
    """
    view: Dict[str, Any] = {"subcommands": {}, "flexible": raw.get("", {}).get("parser_class") == "FlexibleArgumentParser"}
    parents = {name.rsplit(" ", 1)[0] for name in raw if " " in name}
    for name, entry in raw.items():
        if name == "" or name in parents:
            continue
        flags = {opt: variant(d) for opt, d in entry["flags"].items() if d["action"] != "help"}
        positionals = [dict(name=p["dest"], **variant(p)) for p in entry["positionals"]]
        view["subcommands"][name] = {"positionals": positionals, "flags": flags}
    view["root_flags"] = {opt: variant(d) for opt, d in raw.get("", {}).get("flags", {}).items()
                          if d["action"] != "help"}
    return view


def select_versions(views: Dict[str, Dict[str, Any]]) -> Tuple[List[str], List[str]]:
    """Keep every release; keep a .post only when its CLI differs from the release before it."""
    ordered = sorted(views, key=vkey)
    kept, skipped = [], []
    for v in ordered:
        if vkey(v).is_postrelease and kept and views[kept[-1]] == views[v]:
            skipped.append(v)
        else:
            kept.append(v)
    return kept, skipped


def _runs(versions: List[str], values: List[Any]) -> List[Tuple[int, int, Any]]:
    """Maximal runs [i, j) of consecutive versions holding equal, present (non-None) values."""
    runs, i = [], 0
    while i < len(versions):
        if values[i] is None:
            i += 1
            continue
        j = i + 1
        while j < len(versions) and values[j] == values[i]:
            j += 1
        runs.append((i, j, values[i]))
        i = j
    return runs


def _ranged(versions: List[str], i: int, j: int, body: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if i > 0:
        out["since"] = versions[i]
    if j < len(versions):
        out["until"] = versions[j]
    out.update(body)
    return out


def _flag_variants(versions: List[str], per_version: List[Optional[Dict[str, Any]]]) -> Dict[str, List[Dict[str, Any]]]:
    """{flag: [variant with since/until, ...]} from each version's {flag: variant} (None = no parser)."""
    out: Dict[str, List[Dict[str, Any]]] = {}
    for flag in sorted({f for flags in per_version if flags for f in flags}, key=lambda f: (f.lstrip("-"), f)):
        values = [flags.get(flag) if flags is not None else None for flags in per_version]
        out[flag] = [_ranged(versions, a, b, val) for a, b, val in _runs(versions, values)]
    return out


def merge(views: Dict[str, Dict[str, Any]], versions: List[str]) -> Dict[str, Any]:
    """Per-version views → one table with since/until ranges (see doctor/programs.py)."""
    names = sorted({s for v in versions for s in views[v]["subcommands"]})
    subs: Dict[str, Any] = {}
    for name in names:
        present = [views[v]["subcommands"].get(name) for v in versions]
        runs = _runs(versions, [True if p is not None else None for p in present])
        if len(runs) != 1:
            raise RuntimeError(f"subcommand {name!r} disappears and comes back: {runs}; extend the format")
        i, j, _ = runs[0]
        entry = _ranged(versions, i, j, {})
        pos_runs = _runs(versions, [p["positionals"] if p is not None else None for p in present])
        if len(pos_runs) == 1:
            entry["positionals"] = pos_runs[0][2]
        else:
            entry["positionals"] = [dict(_ranged(versions, a, b, {}), args=val) for a, b, val in pos_runs]
        flags = _flag_variants(versions, [p["flags"] if p is not None else None for p in present])
        for variants in flags.values():   # a flag's range inside its subcommand's range goes unsaid
            for var in variants:
                for key in ("since", "until"):
                    if key in var and var[key] == entry.get(key):
                        del var[key]
        entry["flags"] = flags
        subs[name] = entry
    flex = _runs(versions, [True if views[v]["flexible"] else None for v in versions])
    table: Dict[str, Any] = {"program": "lmdeploy", "generated_from": versions}
    if flex:
        if len(flex) != 1:
            raise RuntimeError("FlexibleArgumentParser comes and goes; extend the format")
        table["flexible_flags"] = _ranged(versions, flex[0][0], flex[0][1], {})
    table["root_flags"] = _flag_variants(versions, [views[v]["root_flags"] for v in versions])
    table["subcommands"] = subs
    return table


def _flow(value: Any) -> str:
    """One YAML flow node (``{nargs: 1, type: int}``), keys bare, scalars quoted only when needed."""
    import yaml
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip()
    return text[:-4].strip() if text.endswith("\n...") else text.replace("\n...", "")


def render_yaml(table: Dict[str, Any], skipped: Sequence[str]) -> str:
    """The committed table: one line per flag variant, so that diffs between regenerations are readable."""
    lines = [
        "# GENERATED by tools/extract_lmdeploy_cli.py from the argparse definitions of every lmdeploy",
        "# release listed in generated_from (parser built by lmdeploy's own code, heavy imports stubbed).",
        "# Do not edit by hand: regenerate. Format: doctor/programs.py.",
    ]
    if skipped:
        lines.append(f"# .post releases with a CLI identical to the release they patch (left out): {', '.join(skipped)}")
    lines.append(f"program: {table['program']}")
    lines.append(f"generated_from: {_flow(table['generated_from'])}")
    if "flexible_flags" in table:
        lines.append("# FlexibleArgumentParser: --foo_bar is read as --foo-bar, --opt.key VALUE builds a JSON dict")
        lines.append(f"flexible_flags: {_flow(table['flexible_flags'])}")
    lines.append("root_flags:" + ("" if table["root_flags"] else " {}"))
    for flag, variants in table["root_flags"].items():
        lines.append(f"  {_flow(flag)}: {_flow(variants)}")
    lines.append("subcommands:")
    for name, entry in table["subcommands"].items():
        lines.append(f"  {_flow(name)}:")
        for key in ("since", "until"):
            if key in entry:
                lines.append(f"    {key}: {_flow(entry[key])}")
        lines.append(f"    positionals: {_flow(entry['positionals'])}")
        lines.append("    flags:" + ("" if entry["flags"] else " {}"))
        for flag, variants in entry["flags"].items():
            if len(variants) == 1:
                lines.append(f"      {_flow(flag)}: {_flow(variants)}")
            else:
                lines.append(f"      {_flow(flag)}:")
                lines.extend(f"        - {_flow(v)}" for v in variants)
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    if sys.version_info < (3, 10):
        raise SystemExit("extract_lmdeploy_cli.py needs Python >= 3.10")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", metavar="SRC", help=argparse.SUPPRESS)
    ap.add_argument("--min", default="0.5.0", help="oldest release to include (default 0.5.0)")
    ap.add_argument("--max", default="0.18.0", help="newest release to include (default 0.18.0)")
    ap.add_argument("--versions", nargs="+", help="exact versions instead of pip's list")
    ap.add_argument("--worker-templates", metavar="SRC", help=argparse.SUPPRESS)
    ap.add_argument("--templates", type=Path, metavar="JSON",
                    help="instead: record which chat template each release's best_match_model picks for sample "
                         "model paths (the fixture that checks rules/knowledge/chat_templates.yaml)")
    ap.add_argument("--dump", metavar="VERSION", help="print one version's raw extraction as JSON and stop")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="table to write (default rules/programs/lmdeploy.yaml)")
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    if args.worker_templates:
        template_worker(args.worker_templates)
        return 0
    if args.dump:
        json.dump(extract(args.dump), sys.stdout, indent=1, sort_keys=True)
        return 0
    versions = sorted(args.versions, key=vkey) if args.versions else released_versions(args.min, args.max)
    if args.templates:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            found = dict(zip(versions, pool.map(extract_templates, versions)))
        doc = {"source": "tools/extract_lmdeploy_cli.py --templates: lmdeploy.model.best_match_model of each release",
               "probes": {p: {"family": f, "llm_arch": a} for p, (f, a) in TEMPLATE_PROBES.items()},
               "matches": {v: m for v, m in found.items() if any(t != "base" for t in m.values())}}
        args.templates.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{args.templates}: {len(doc['matches'])} releases with path-based template matching", file=sys.stderr)
        return 0
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        raws = dict(zip(versions, pool.map(extract, versions)))
    views = {v: per_version_view(raw) for v, raw in raws.items()}
    kept, skipped = select_versions(views)
    table = merge(views, kept)
    text = render_yaml(table, skipped)
    import yaml
    if yaml.safe_load(text) != json.loads(json.dumps(table)):
        raise SystemExit("internal error: the emitted YAML does not read back as the merged table")
    args.out.write_text(text, encoding="utf-8")
    n_flags = sum(len(e["flags"]) for e in table["subcommands"].values())
    print(f"{args.out}: {len(kept)} versions ({', '.join(kept)}), {len(table['subcommands'])} subcommands, "
          f"{n_flags} flags; skipped identical: {', '.join(skipped) or 'none'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
