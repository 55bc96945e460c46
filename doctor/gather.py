"""Assemble the facts a command evaluates: live probes or a saved snapshot, plus the planned command.

Derived facts (knowledge joins, stage 1) are always recomputed, also for a snapshot, so an old
bug-report snapshot is judged with today's knowledge tables.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

from doctor.command import Command, command_facts, parse
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
        base = base.with_values(command_facts(planned), covered=["cmd.*", "cmd.flag.*", "cmd.env.*"])
    facts = collect(ctx, stages=derived_stages(), base=base)
    facts.source = src.facts_file or "live"
    return facts, planned
