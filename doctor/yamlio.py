"""Reading the YAML data files (rules, knowledge and flag tables), fast enough for `check`'s start-up.

An installed lmdoctor carries ``_bundle.json`` next to its data files, written when the wheel is
built (setup.py): every file's parsed content with the SHA-1 of its bytes. A file whose bytes still
hash the same is served from the bundle (JSON parses ~10x faster than YAML, and PyYAML is not even
imported); anything else — a checkout without a bundle, an edited file, a file JSON cannot represent
— is parsed as YAML, with libyaml when available. The result is the same either way.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

BUNDLE = "_bundle.json"


class DataError(Exception):
    """A data file (rule, table, knowledge) is malformed; the message names the file."""


def parse_yaml(raw: bytes, path: Path) -> Any:
    import yaml
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(raw, Loader=loader)
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: invalid YAML: {exc}") from None


@functools.lru_cache(maxsize=1)
def _bundle() -> Dict[str, Dict[str, Any]]:
    from doctor import paths
    try:
        with open(paths.rules_dir() / BUNDLE, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@functools.lru_cache(maxsize=1)
def _rules_roots() -> Tuple[Path, Path]:
    from doctor import paths
    root = paths.rules_dir()
    return root, root.resolve()


def _bundle_key(path: Path) -> Optional[str]:
    """The file's name in the bundle. Rule files are found under the rules folder, so a plain prefix
    test usually answers; resolving symlinks (two syscalls per path component) only when it does not."""
    path = Path(path)
    for root in _rules_roots():
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    try:
        return path.resolve().relative_to(_rules_roots()[1]).as_posix()
    except ValueError:
        return None


def load(path: Path) -> Any:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DataError(f"{path}: {exc.strerror}") from None
    entry = _bundle().get(_bundle_key(path) or "")
    if entry and entry.get("sha1") == hashlib.sha1(raw).hexdigest():
        return entry["data"]
    return parse_yaml(raw, Path(path))


def build_bundle(root: Path) -> Dict[str, Dict[str, Any]]:
    """Parse every ``*.yaml`` under ``root`` for the bundle (files JSON would alter are left out)."""
    bundle: Dict[str, Dict[str, Any]] = {}
    for path in sorted(Path(root).rglob("*.yaml")):
        raw = path.read_bytes()
        data = parse_yaml(raw, path)
        if json.loads(json.dumps(data)) != data:  # dates, non-string keys...: keep reading the YAML
            continue
        bundle[path.relative_to(root).as_posix()] = {"sha1": hashlib.sha1(raw).hexdigest(), "data": data}
    return bundle
