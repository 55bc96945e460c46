"""Other environments on this machine that could run the job the examined env cannot (stage 2).

Runs after the knowledge joins, and only when the examined env itself blocks the job (a package the
model needs is missing, a pinned package is outside the installed lmdeploy's range, the sub-command
is gone in that version, the driver cannot run its CUDA build...): a healthy ``check`` never pays for
the scan. Then every env ``lmdoctor envs`` would find is judged for the same job, and rules can name
the best one in a fix (``{envs.activate_command}``). With facts from a snapshot the machine they came
from cannot be scanned, so the facts are unknown.
"""
from __future__ import annotations

from doctor.facts import ProbeContext, ProbeResult, probe

PROVIDES = {
    "envs.current_problem": "why the examined env cannot run the job (its first blocking requirement)",
    "envs.scanned": "how many other environments were judged for the job",
    "envs.ready_alternative": "name of the best other environment that can run the job",
    "envs.alternative_verdict": "ready | warnings: how well that environment fits",
    "envs.alternative_path": "folder of that environment",
    "envs.activate_command": "command that switches to it (conda activate NAME, source .../bin/activate)",
    "envs.run_command": "the planned command started with that environment's own lmdeploy",
    "envs.ready": "names of every other environment that can run the job, best first",
}


@probe("envs", PROVIDES, stage=2, timeout_s=4.0)
def envs_facts(ctx: ProbeContext) -> ProbeResult:
    if ctx.target is None or ctx.facts is None:
        reason = "facts come from a snapshot: the other environments of that machine cannot be scanned"
        return ProbeResult({}, unknown={pattern: reason for pattern in PROVIDES})
    from doctor.envs.job import Job, requirements
    from doctor.envs.score import machine_only
    from doctor.model import Severity
    job = Job.from_planned(ctx.planned)
    # Without a planned command, "lmdeploy is not installed" is no reason to scan: plain `check` stays fast.
    blocking = [r for r in requirements(ctx.facts, job) if r.severity is Severity.ERROR
                and (ctx.planned is not None or r.code != "program_missing")]
    if not blocking:
        return ProbeResult({})
    from doctor.envs.survey import survey
    result = survey(job, machine_only(ctx.facts), ctx.environ, ctx.cwd, exclude=ctx.target.prefix)
    facts = {"envs.current_problem": blocking[0].text, "envs.scanned": len(result.verdicts)}
    usable = [v for v in result.verdicts if v.verdict in ("ready", "warnings")]
    facts["envs.ready"] = [v.env.name for v in usable]
    best = result.best
    if best is not None:
        facts.update({"envs.ready_alternative": best.env.name, "envs.alternative_verdict": best.verdict,
                      "envs.alternative_path": best.env.prefix, "envs.activate_command": best.activate})
        if best.run:
            facts["envs.run_command"] = best.run
    return ProbeResult(facts)
