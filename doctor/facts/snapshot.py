"""Fact snapshots as JSON: what `lmdoctor facts --json` prints and what `--facts FILE` reads back.

A snapshot is both the bug-report attachment and the test fixture format, so tests and bug reports
evaluate rules exactly as the live machine would, without a GPU.
"""
from __future__ import annotations

import json
from typing import Any, Dict

from doctor import __version__
from doctor.facts import FactSet

KIND = "lmdoctor-facts"
SNAPSHOT_VERSION = 1


class SnapshotError(Exception):
    """The snapshot file cannot be used; the message says why in one line."""


def to_json(facts: FactSet) -> Dict[str, Any]:
    import datetime  # only `facts --json` needs it; `check` imports this module too
    return {
        "kind": KIND,
        "schema_version": SNAPSHOT_VERSION,
        "lmdoctor_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "facts": dict(sorted(facts.values.items())),
        "covered": sorted(set(facts.covered)),
        "unknown": dict(sorted(facts.unknown.items())),
        "probes": facts.probes,
    }


def from_json(data: Any, source: str = "snapshot") -> FactSet:
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise SnapshotError(f"{source}: not an lmdoctor facts snapshot (expected \"kind\": \"{KIND}\")")
    if data.get("schema_version", 0) > SNAPSHOT_VERSION:
        raise SnapshotError(f"{source}: snapshot schema {data['schema_version']} is newer than this lmdoctor "
                            f"understands ({SNAPSHOT_VERSION}); upgrade lmdoctor")
    facts = data.get("facts")
    if not isinstance(facts, dict):
        raise SnapshotError(f"{source}: \"facts\" must be an object")
    return FactSet(facts, data.get("covered") or [], data.get("unknown") or {}, data.get("probes") or {},
                   source=source)


def load(path: str) -> FactSet:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SnapshotError(f"{path}: is a directory, expected a JSON file") from None
    except PermissionError:
        raise SnapshotError(f"{path}: permission denied") from None
    except UnicodeDecodeError:
        raise SnapshotError(f"{path}: not UTF-8 text (expected JSON from `lmdoctor facts --json`)") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except OSError as exc:
        raise SnapshotError(f"{path}: {exc.strerror or exc}") from None
    return from_json(data, source=path)
