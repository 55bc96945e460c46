"""Facts: named, typed observations about the machine, gathered by probes that never raise.

A fact name is dot-separated lowercase segments (``gpu.0.free_mib``, ``pkg.lmdeploy.version``);
size facts carry their unit as a suffix. Every fact is in one of three states:

* known: a value was observed;
* absent: the probe that covers the name ran fine and the thing is not there
  (``pkg.timm.version`` absent means timm is not installed);
* unknown: the probe that covers the name failed, timed out, or never ran ("couldn't check").

Rules see only this module's :class:`FactSet`, so live probing and a saved snapshot
(``--facts FILE``) are interchangeable.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

FACT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.([a-z0-9_][a-z0-9_\-]*|[A-Z0-9_]+|\*))*$")


class Unknown:
    """The value of a fact nobody could observe, with the reason."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self) -> str:
        return f"Unknown({self.reason!r})"

    def __bool__(self) -> bool:  # pragma: no cover - guard against accidental truthiness
        raise TypeError("Unknown has no truth value; check isinstance(value, Unknown)")


class _Absent:
    """Known not to exist (the covering probe ran and found nothing)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


def pattern_matches(pattern: str, name: str) -> bool:
    """``*`` matches exactly one dot-separated segment; a trailing ``**`` matches any rest (even none)."""
    return patterns_overlap(pattern, name) if "*" not in name else False


def patterns_overlap(a: str, b: str) -> bool:
    """Whether some fact name matches both patterns (``*`` = one segment, trailing ``**`` = any rest)."""
    pa, pb = a.split("."), b.split(".")
    for i in range(max(len(pa), len(pb))):
        sa = pa[i] if i < len(pa) else None
        sb = pb[i] if i < len(pb) else None
        if sa == "**" or sb == "**":
            return True
        if sa is None or sb is None:
            return False
        if sa != sb and sa != "*" and sb != "*":
            return False
    return True


class FactSet:
    """Immutable-ish collection of facts plus what each probe covered or failed to observe."""

    def __init__(self, values: Optional[Mapping[str, Any]] = None, covered: Iterable[str] = (),
                 unknown: Optional[Mapping[str, str]] = None, probes: Optional[Mapping[str, dict]] = None,
                 source: str = "live"):
        self.values: Dict[str, Any] = dict(values or {})
        self.covered: List[str] = list(covered)
        self.unknown: Dict[str, str] = dict(unknown or {})
        self.probes: Dict[str, dict] = dict(probes or {})
        self.source = source

    # -- lookups -------------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        """The value, :data:`ABSENT`, or an :class:`Unknown` carrying the reason."""
        if name in self.values:
            return self.values[name]
        for pattern, reason in self.unknown.items():
            if pattern_matches(pattern, name):
                return Unknown(reason)
        if any(pattern_matches(p, name) for p in self.covered):
            return ABSENT
        return Unknown(self._not_observed())

    def _not_observed(self) -> str:
        """Why a fact nobody covered is unknown: a saved snapshot simply lacks it (ports and the
        inotify watch test are live-only), while on the live machine no probe looked."""
        return "no probe observed it" if self.source == "live" else f"not in the snapshot {self.source}"

    def value(self, name: str, default: Any = None) -> Any:
        """Plain value for code that only cares about known facts."""
        v = self.get(name)
        return default if v is ABSENT or isinstance(v, Unknown) else v

    def expand(self, pattern: str) -> Dict[str, Any]:
        """All known facts matching a wildcard pattern, in name order."""
        return {k: self.values[k] for k in sorted(self.values) if pattern_matches(pattern, k)}

    def indices(self, prefix: str) -> List[str]:
        """Distinct index segments under ``prefix`` (``indices("gpu")`` → ``["0", "1"]``)."""
        seen = []
        start = prefix + "."
        for key in self.values:
            if key.startswith(start):
                seg = key[len(start):].split(".", 1)[0]
                if seg.isdigit() and seg not in seen:
                    seen.append(seg)
        return sorted(seen, key=int)

    def pattern_unknown(self, pattern: str) -> Optional[str]:
        """Reason the facts matching a wildcard pattern may be incomplete, or None when complete."""
        for upat, reason in self.unknown.items():
            if patterns_overlap(upat, pattern):
                return reason
        if any(patterns_overlap(p, pattern) for p in self.covered):
            return None
        return self._not_observed()

    # -- building ----------------------------------------------------------------------------
    def merged(self, other: "FactSet") -> "FactSet":
        """A new FactSet where ``other`` wins on conflicts (e.g. command facts over a snapshot)."""
        out = FactSet(self.values, self.covered, self.unknown, self.probes, self.source)
        out.values.update(other.values)
        out.covered.extend(p for p in other.covered if p not in out.covered)
        for pattern in list(out.unknown):
            if pattern in other.covered:
                out.unknown.pop(pattern)
        out.unknown.update(other.unknown)
        out.probes.update(other.probes)
        return out

    def with_values(self, values: Mapping[str, Any], covered: Iterable[str] = ()) -> "FactSet":
        return self.merged(FactSet(values, covered))


# -- probes ------------------------------------------------------------------------------------
@dataclass
class ProbeResult:
    """What a probe hands back: facts, and patterns it tried but could not observe (with reasons)."""

    facts: Dict[str, Any] = field(default_factory=dict)
    unknown: Dict[str, str] = field(default_factory=dict)


@dataclass
class Probe:
    name: str
    provides: Dict[str, str]          # fact pattern -> description with unit
    fn: Callable[["ProbeContext"], ProbeResult]
    timeout_s: float = 3.0
    stage: int = 0                    # derived probes (stage 1) see the facts of stage 0


REGISTRY: Dict[str, Probe] = {}


def probe(name: str, provides: Dict[str, str], timeout_s: float = 3.0, stage: int = 0):
    """Register a probe function. Probes must be cheap, read-only and side-effect free."""
    def deco(fn: Callable[["ProbeContext"], ProbeResult]):
        REGISTRY[name] = Probe(name, provides, fn, timeout_s, stage)
        return fn
    return deco


@dataclass
class ProbeContext:
    """What probes may look at: the target interpreter, the planned command, facts of earlier stages."""

    target: Any = None                    # doctor.facts.target.Target
    planned: Any = None                   # doctor.command.Command or None
    cwd: str = "."
    environ: Mapping[str, str] = field(default_factory=dict)
    facts: Optional[FactSet] = None       # stage-0 facts, for stage-1 (derived) probes


def _load_probe_modules() -> None:
    """Import every probe module once so that they register themselves."""
    from doctor.facts import (derived, envs, envvars, host, inotify, model_dir, nvidia,  # noqa: F401
                              packages, ports, python_env)
    from doctor.facts import planned  # noqa: F401  (planned-command derived facts)
    from doctor.memory import probe as _fit  # noqa: F401  (stage 2: will the planned launch fit?)


def catalog() -> Dict[str, str]:
    """Every fact pattern any probe can provide, with its description (used to validate rules)."""
    _load_probe_modules()
    out: Dict[str, str] = {}
    for p in REGISTRY.values():
        out.update(p.provides)
    from doctor.command import COMMAND_FACTS
    out.update(COMMAND_FACTS)
    from doctor.logs.facts import LOG_FACTS
    out.update(LOG_FACTS)
    return out


def known_fact(name: str, cat: Optional[Mapping[str, str]] = None) -> bool:
    """Whether a fact name (or wildcard pattern) used by a rule is one some probe can provide."""
    cat = catalog() if cat is None else cat
    return any(patterns_overlap(p, name) for p in cat)


def collect(ctx: ProbeContext, stages: Optional[Iterable[int]] = None, base: Optional[FactSet] = None,
            only: Optional[Iterable[str]] = None) -> FactSet:
    """Run registered probes stage by stage (in parallel within a stage) on top of ``base``.

    Each probe runs in a daemon thread and gets its own timeout, so a hung probe (a stuck
    nvidia-smi, an NFS mount) turns its facts into "unknown" instead of hanging lmdoctor.
    """
    _load_probe_modules()
    names = set(only) if only is not None else set(REGISTRY)
    wanted = set(stages) if stages is not None else {p.stage for p in REGISTRY.values()}
    facts = base if base is not None else FactSet(source="live")
    for stage in sorted(wanted):
        probes = [p for p in REGISTRY.values() if p.stage == stage and p.name in names]
        ctx.facts = facts
        start = time.perf_counter()
        running = []
        for p in probes:
            box: Dict[str, Any] = {}
            th = threading.Thread(target=_probe_runner, args=(p, ctx, box), name=f"probe-{p.name}", daemon=True)
            th.start()
            running.append((p, th, box))
        for p, th, _ in running:
            th.join(max(0.0, p.timeout_s - (time.perf_counter() - start)))
        stage_facts = FactSet()
        for p, th, box in running:
            ms = round(box.get("ms", (time.perf_counter() - start) * 1000), 1)
            if th.is_alive():
                reason = f"probe '{p.name}' timed out after {p.timeout_s:g}s"
                stage_facts.unknown.update({pat: reason for pat in p.provides})
                stage_facts.probes[p.name] = {"status": "timeout", "ms": ms, "error": reason}
            elif "error" in box:
                reason = f"probe '{p.name}' failed: {box['error']}"
                stage_facts.unknown.update({pat: reason for pat in p.provides})
                stage_facts.probes[p.name] = {"status": "error", "ms": ms, "error": box["error"]}
            else:
                result: ProbeResult = box["result"]
                stage_facts.values.update(result.facts)
                stage_facts.unknown.update(result.unknown)
                stage_facts.covered.extend(pat for pat in p.provides if pat not in result.unknown)
                stage_facts.probes[p.name] = {"status": "partial" if result.unknown else "ok", "ms": ms}
        facts = facts.merged(stage_facts)
    return facts


def without_stage(facts: FactSet, stage: int) -> FactSet:
    """Drop what probes of a stage provided (to recompute derived facts from a saved snapshot)."""
    _load_probe_modules()
    patterns = [pat for p in REGISTRY.values() if p.stage == stage for pat in p.provides]
    heads = {pat.split(".", 1)[0] for pat in patterns}      # cheap pre-filter: most facts share no domain
    keep = {k: v for k, v in facts.values.items()
            if k.split(".", 1)[0] not in heads or not any(pattern_matches(pat, k) for pat in patterns)}
    covered = [c for c in facts.covered if c not in patterns]
    unknown = {k: v for k, v in facts.unknown.items() if k not in patterns}
    probes = {k: v for k, v in facts.probes.items() if k not in {p.name for p in REGISTRY.values() if p.stage == stage}}
    return FactSet(keep, covered, unknown, probes, facts.source)


def _probe_runner(p: Probe, ctx: ProbeContext, box: Dict[str, Any]) -> None:
    t0 = time.perf_counter()
    try:
        result = p.fn(ctx)
        box["result"] = result if isinstance(result, ProbeResult) else ProbeResult(dict(result or {}))
    except BaseException as exc:  # a probe bug must never crash the doctor
        box["error"] = f"{type(exc).__name__}: {exc}"
    box["ms"] = (time.perf_counter() - t0) * 1000
