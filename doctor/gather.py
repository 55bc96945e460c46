"""Assemble the facts a command evaluates: live probes or a saved snapshot, plus the planned command.

Derived facts (knowledge joins, stage 1) are always recomputed, also for a snapshot, so an old
bug-report snapshot is judged with today's knowledge tables.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence, Tuple

from doctor.command import COMMAND_COVERED, Command, command_facts, parse
from doctor.facts import REGISTRY, FactSet, ProbeContext, _load_probe_modules, collect, without_stage
from doctor.facts import snapshot as snapshot_io
from doctor.facts.target import resolve


@dataclass
class Sources:
    python: Optional[str] = None            # --python PATH
    env: Optional[str] = None               # --env NAME
    facts_file: Optional[str] = None        # --facts FILE
    planned: Optional[Sequence[str]] = None  # argv after `--`
    lmdeploy_version: Optional[str] = None  # --lmdeploy-version (plan for another version)
    plan: Optional[Mapping[str, object]] = None  # plan.* facts: --vram / --gpu / --gpu-slice / --backend


def derived_stages() -> list:
    """Stages after the observation probes: knowledge joins (1), then models built on them (2+)."""
    _load_probe_modules()
    return sorted({p.stage for p in REGISTRY.values() if p.stage >= 1})


def gather(src: Sources, environ: Optional[Mapping[str, str]] = None,
           cwd: Optional[str] = None) -> Tuple[FactSet, Optional[Command]]:
    """Facts plus the parsed planned command. Raises TargetError / SnapshotError for bad inputs."""
    environ = dict(os.environ if environ is None else environ)
    cwd = cwd or os.getcwd()
    planned = parse(list(src.planned), version=src.lmdeploy_version) if src.planned else None
    ctx = ProbeContext(planned=planned, cwd=cwd, environ=environ)
    if src.facts_file:
        base = snapshot_io.load(src.facts_file)
        for stage in derived_stages():
            base = without_stage(base, stage)
    else:
        ctx.target = resolve(src.python, src.env, environ)
        base = collect(ctx, stages=[0])
    if src.plan:
        base = base.with_values(src.plan)
    if planned is not None:
        version = src.lmdeploy_version or base.value("pkg.lmdeploy.version")
        planned = parse(list(src.planned), version=version)
        ctx.planned = planned
    base = base.with_values(command_facts(planned) if planned else {}, covered=COMMAND_COVERED)
    facts = collect(ctx, stages=derived_stages(), base=base)
    facts.source = src.facts_file or "live"
    return facts, planned


def gather_in_background(src: Sources) -> Callable[[], Tuple[FactSet, Optional[Command]]]:
    """Start :func:`gather` in a thread; the returned function waits and returns (or raises) its result.

    A plain thread rather than concurrent.futures, whose import (with logging) costs `check` ~5 ms.
    """
    box: dict = {}

    def work() -> None:
        try:
            box["result"] = gather(src)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=work, name="lmdoctor-gather", daemon=True)
    thread.start()

    def result() -> Tuple[FactSet, Optional[Command]]:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["result"]
    return result
