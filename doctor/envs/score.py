"""Judge environments for a job and rank them: ready / ready with warnings / not suitable / broken.

An env's verdict comes from two sources, evaluated on the env's own facts (its ``py.*`` / ``pkg.*``
facts, this machine's GPU and model facts, the job's ``cmd.*`` facts parsed with the env's lmdeploy
flag table, and the derived ``compat.*`` / ``model.*`` facts recomputed for that env):

* the job's *requirements* (:func:`doctor.envs.job.requirements`): what must hold for the job to start at all —
  lmdeploy installed, the sub-command present in that version (``doctor.programs``), the model
  family still supported and its extra packages installed (``rules/knowledge/models.yaml``), the
  pinned packages inside the version's range (``rules/knowledge/lmdeploy.yaml``), the driver and GPU
  able to run the CUDA builds. They are computed from facts and knowledge tables, so they name a
  reason even where no rule covers it;
* the environment rules ``check`` uses, for the areas an env decides (python, command, model): a
  rule that fires adds its finding as a reason, or, when it speaks about a fact a requirement
  already named, is listed under that requirement instead of repeating it.

Machine-wide problems (no GPU, port taken, inotify) are the same in every env and left to ``check``.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Sequence

from doctor import knowledge
from doctor.command import Command, command_facts
from doctor.envs.job import Job, Reason, requirements
from doctor.envs.scan import Env
from doctor.envs.texts import REASONS, text
from doctor.facts import FactSet, ProbeContext, collect
from doctor.model import Severity

ENV_AREAS = ("python", "command", "model")
MACHINE_PROBES = ("nvidia", "model", "envvars")      # stage-0 probes whose facts do not depend on the env
ENV_FACT_PREFIXES = ("py.", "pkg.", "cmd.")          # recomputed for every env
VERDICT_ORDER = {"ready": 0, "warnings": 1, "unsuitable": 2, "broken": 3}


@dataclass
class Verdict:
    env: Env
    verdict: str                  # ready | warnings | unsuitable | broken
    reasons: List[Reason] = field(default_factory=list)
    activate: str = ""
    run: Optional[str] = None

    @property
    def main_reason(self) -> str:
        return self.reasons[0].text if self.reasons else text(REASONS, "ready")


# -- facts -------------------------------------------------------------------------------------------
def machine_only(facts: FactSet) -> FactSet:
    """Facts of a FactSet that describe the machine, not the env (env and derived facts dropped)."""
    from doctor.facts import REGISTRY, _load_probe_modules, pattern_matches
    _load_probe_modules()
    derived = [pat for p in REGISTRY.values() if p.stage >= 1 for pat in p.provides]
    env_probe_patterns = [pat for name in ("python", "packages") for pat in REGISTRY[name].provides]

    def env_dependent(name: str) -> bool:
        return name.startswith(ENV_FACT_PREFIXES) or any(pattern_matches(p, name) for p in derived)

    values = {k: v for k, v in facts.values.items() if not env_dependent(k)}
    covered = [c for c in facts.covered if c not in derived and c not in env_probe_patterns and not c.startswith("cmd.")]
    unknown = {k: v for k, v in facts.unknown.items() if k not in derived and k not in env_probe_patterns}
    return FactSet(values, covered, unknown, {}, facts.source)


def live_machine_facts(job: Job, environ: Mapping[str, str], cwd: str,
                       probes: Sequence[str] = MACHINE_PROBES) -> FactSet:
    """GPU, driver, model-folder and environment-variable facts of this machine (env-independent probes)."""
    ctx = ProbeContext(planned=job.command(None), cwd=cwd, environ=dict(environ))
    return collect(ctx, stages=[0], only=probes)


def env_facts(env: Env, machine: FactSet, job: Job, cwd: str, environ: Mapping[str, str]) -> FactSet:
    """Everything ``check`` would see if this env were the examined one, derived facts included."""
    from doctor.facts import REGISTRY
    from doctor.gather import derived_stages
    env_patterns = [pat for name in ("python", "packages") for pat in REGISTRY[name].provides]
    facts = machine.with_values(env.facts, covered=env_patterns)
    planned = job.command(env.package("lmdeploy"))
    if planned is not None and job.argv:
        facts = facts.with_values(command_facts(planned), covered=["cmd.*", "cmd.flag.*", "cmd.env.*"])
    ctx = ProbeContext(planned=planned, cwd=cwd, environ=dict(environ))
    derived = [p.name for p in REGISTRY.values() if p.stage >= 1 and p.name != "envs"]
    return collect(ctx, stages=derived_stages(), base=facts, only=derived)


# -- rules -----------------------------------------------------------------------------------------
def rule_reasons(facts: FactSet, subject: Optional[Command], reasons: List[Reason], rules: Sequence[Any]) -> None:
    """Add the env-area rules that fire; a rule about a fact a requirement already named joins it."""
    from doctor.engine import FIRED, build_finding, evaluate
    for rule in rules:
        if rule.area not in ENV_AREAS or evaluate(rule, facts).status != FIRED:
            continue
        names = set(rule.when.fact_names() if rule.when is not None else [])
        same = next((r for r in reasons if names & set(r.facts)), None)
        if same is not None:
            same.rules.append(rule.id)
            continue
        finding = build_finding(rule, facts, subject)
        reasons.append(Reason(rule.id, finding.severity, f"{rule.id} {finding.title}", sorted(names), [rule.id]))


# -- commands --------------------------------------------------------------------------------------
def activate_command(env: Env, environ: Mapping[str, str]) -> str:
    """How to switch to the env: ``conda activate NAME`` where conda finds it by name, else by path."""
    from doctor.facts.target import conda_env_dirs
    if env.kind == "conda":
        if env.name == "base":
            return "conda activate base"
        parent = os.path.realpath(os.path.dirname(env.prefix.rstrip("/")))
        if parent in (os.path.realpath(d) for d in conda_env_dirs(environ)):
            return f"conda activate {env.name}"
        return f"conda activate {shlex.quote(env.prefix)}"
    script = os.path.join(env.prefix, "bin", "activate")
    if os.path.isfile(script):
        return f"source {shlex.quote(script)}"
    return shlex.quote(env.python or os.path.join(env.prefix, "bin", "python"))


def run_command(env: Env, job: Job) -> Optional[str]:
    """The job started with the env's own console script or interpreter, without activating it."""
    if not job.argv or env.python is None:
        return None
    cmd = job.command(env.package("lmdeploy"))
    if cmd is None or not cmd.program:
        return None
    head = cmd.argv[cmd.start - 1] if cmd.start >= 1 else ""
    rest = cmd.argv[cmd.start:]
    env_part = cmd.argv[: max(cmd.start - 1, 0)]
    script = os.path.join(env.prefix, "bin", cmd.program)
    if os.path.basename(head) == cmd.program and os.path.isfile(script):
        argv = env_part + [script] + rest
    else:
        argv = env_part + [env.python, "-m", cmd.program] + rest
    return " ".join(shlex.quote(a) for a in argv)


# -- verdicts --------------------------------------------------------------------------------------
def judge(env: Env, machine: FactSet, job: Job, rules: Sequence[Any], cwd: str,
          environ: Mapping[str, str]) -> Verdict:
    """The verdict of one env for the job, with its reasons most important first."""
    if env.broken:
        reasons = [Reason("broken", Severity.ERROR, text(REASONS, "broken", problem=p.text)) for p in env.problems[:1]]
        return Verdict(env, "broken", reasons, activate_command(env, environ), None)
    facts = env_facts(env, machine, job, cwd, environ)
    reasons = requirements(facts, job)
    rule_reasons(facts, job.command(env.package("lmdeploy")), reasons, rules)
    reasons.sort(key=lambda r: r.severity.rank)
    if any(r.severity is Severity.ERROR for r in reasons):
        verdict = "unsuitable"
    elif any(r.severity is Severity.WARNING for r in reasons):
        verdict = "warnings"
    else:
        verdict = "ready"
    return Verdict(env, verdict, reasons, activate_command(env, environ), run_command(env, job))


def rank(verdicts: List[Verdict]) -> List[Verdict]:
    """Best first: by verdict, then fewer reasons, then the env already active, then the newest lmdeploy."""
    def key(v: Verdict) -> tuple:
        lmd = knowledge.version(v.env.package("lmdeploy"))
        newest_first = tuple(-x for x in lmd.release) if lmd is not None else (1,)
        return (VERDICT_ORDER[v.verdict], len(v.reasons), not v.env.active, newest_first, v.env.name, v.env.prefix)
    return sorted(verdicts, key=key)


def best(ranked: List[Verdict]) -> Optional[Verdict]:
    return ranked[0] if ranked and ranked[0].verdict in ("ready", "warnings") else None
