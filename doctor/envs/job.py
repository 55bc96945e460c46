"""A job (a planned command or a model) and its requirements: what must hold in an env for it to start.

The requirements are computed from facts and the knowledge tables (``doctor.programs`` for the
sub-commands of each lmdeploy version, ``rules/knowledge/models.yaml`` for the model families,
``rules/knowledge/lmdeploy.yaml`` for the version ranges), so they name a reason even where no rule
covers it. Kept apart from the scanner so that ``check``'s ``envs`` probe can test the examined env
without importing the machinery that reads other envs.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from doctor import knowledge
from doctor.command import Command, parse
from doctor.envs.texts import REASONS, text
from doctor.facts import ABSENT, FactSet, Unknown
from doctor.model import Severity
from doctor.programs import load_program

PINNED_ERRORS = ("python", "torch", "torchvision", "transformers", "numpy")


@dataclass
class Job:
    """What the env must run: a planned command (argv) and/or a model path or hub id."""

    argv: Optional[List[str]] = None
    model: Optional[str] = None

    @classmethod
    def from_planned(cls, planned: Optional[Command]) -> "Job":
        return cls(argv=list(planned.argv) if planned is not None else None)

    def command(self, version: Optional[str]) -> Optional[Command]:
        """The job parsed with the flag table of ``version``.

        ``--model`` alone means "serve this model": ``lmdeploy serve api_server MODEL`` exists in every
        version, so it adds no sub-command requirement, and the parser knows which word is the model.
        """
        if self.argv:
            return parse(self.argv, version=version)
        if self.model:
            return parse(["lmdeploy", "serve", "api_server", self.model], version=version)
        return None

    @property
    def program(self) -> str:
        cmd = self.command(None)
        return cmd.program if cmd is not None and cmd.program else "lmdeploy"

    def describe(self) -> str:
        if self.argv:
            return " ".join(shlex.quote(a) for a in self.argv)
        return f"lmdeploy + {self.model}" if self.model else "lmdeploy"


@dataclass
class Reason:
    code: str
    severity: Severity
    text: str
    facts: List[str] = field(default_factory=list)
    rules: List[str] = field(default_factory=list)   # environment rules that say the same

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"code": self.code, "severity": self.severity.value, "text": self.text}
        if self.rules:
            out["rules"] = self.rules
        return out


def _known(facts: FactSet, name: str) -> Any:
    v = facts.get(name)
    return None if v is ABSENT or isinstance(v, Unknown) else v


# -- requirements ----------------------------------------------------------------------------------
def requirements(facts: FactSet, job: Job) -> List[Reason]:
    """What keeps the job from starting (errors) or makes it fragile (warnings) in the env of ``facts``."""
    out: List[Reason] = []

    def add(code: str, severity: Severity, names: Sequence[str], **fmt: Any) -> None:
        out.append(Reason(code, severity, text(REASONS, code, **fmt), list(names)))

    program = job.program
    lmd = _known(facts, "pkg.lmdeploy.version")
    if program != "lmdeploy":
        if program in ("streamlit", "gradio") and not _known(facts, f"pkg.{program}.version"):
            add("program_missing", Severity.ERROR, [f"pkg.{program}.version"], program=program)
    elif not lmd:
        add("program_missing", Severity.ERROR, ["pkg.lmdeploy.version"], program="lmdeploy")
    cmd = job.command(lmd)
    sub = cmd.subcommand if cmd is not None and job.argv and program == "lmdeploy" else ""
    if lmd and sub:
        _subcommand(sub, lmd, facts, add)
    _model(facts, cmd, lmd, add)
    if program == "lmdeploy" and lmd and not _known(facts, "pkg.torch.version"):
        add("torch_missing", Severity.ERROR, ["pkg.torch.version"])
    if lmd:
        _compat(facts, cmd, lmd, add)
    for pkg in ("lmdeploy", "torch", "transformers", "triton"):
        dup = _known(facts, f"pkg.{pkg}.duplicates")
        if dup:
            add("duplicates", Severity.ERROR, [f"pkg.{pkg}.duplicates"], package=pkg, versions=", ".join(dup))
    return out


def _subcommand(sub: str, lmd: str, facts: FactSet, add) -> None:
    table = load_program("lmdeploy")
    if table is None:
        return
    if not table.has_subcommand(sub, lmd):
        until, since = table.subcommand_until(sub), table.subcommand_since(sub)
        if until:
            add("subcommand_removed", Severity.ERROR, ["cmd.subcommand_removed_in"], sub=sub, until=until, version=lmd)
        elif since:
            add("subcommand_added", Severity.ERROR, ["cmd.subcommand_added_in"], sub=sub, since=since, version=lmd)
        return
    needs = knowledge.table("lmdeploy").get("subcommand_needs", {}).get(sub, [])
    missing = [p for p in needs if not _known(facts, f"pkg.{p}.version")]
    if missing:
        add("subcommand_needs", Severity.ERROR, [f"pkg.{p}.version" for p in missing], sub=sub, packages=", ".join(missing))


def _model(facts: FactSet, cmd: Optional[Command], lmd: Optional[str], add) -> None:
    family = _known(facts, "model.family")
    if not family:
        return
    row = knowledge.families().get(family, {})
    removed = row.get("removed_in")
    if lmd and removed and knowledge.satisfies(lmd, f">={removed}"):
        add("model_removed", Severity.ERROR, ["model.family"], family=family, removed_in=removed, version=lmd)
    if row.get("turbomind_only"):
        if lmd and _known(facts, "pkg.lmdeploy.turbomind") is False:
            add("turbomind_required", Severity.ERROR, ["pkg.lmdeploy.turbomind"], family=family)
        if cmd is not None and cmd.get_flag("backend") == "pytorch":
            add("turbomind_backend", Severity.ERROR, ["cmd.backend"], family=family)
    missing = _known(facts, "model.missing_packages")
    if missing:
        add("missing_packages", Severity.ERROR, ["model.missing_packages"], family=family, packages=", ".join(missing))


def _compat(facts: FactSet, cmd: Optional[Command], lmd: str, add) -> None:
    if not _known(facts, "compat.lmdeploy.release"):
        add("unknown_release", Severity.WARNING, ["compat.lmdeploy.release"], version=lmd)
        return
    pytorch_engine = cmd is not None and cmd.get_flag("backend") == "pytorch"
    for pkg in PINNED_ERRORS + ("triton",):
        if _known(facts, f"compat.{pkg}.ok") is False:
            installed = _known(facts, "py.version") if pkg == "python" else _known(facts, f"pkg.{pkg}.version")
            severity = Severity.ERROR if pkg in PINNED_ERRORS or pytorch_engine else Severity.WARNING
            add("out_of_range", severity, [f"compat.{pkg}.ok"], package=pkg, installed=installed, version=lmd,
                spec=_known(facts, f"compat.{pkg}.spec"))
    if _known(facts, "compat.transformers_pt.ok") is False and _known(facts, "compat.transformers.ok") is not False:
        add("transformers_pt", Severity.ERROR if pytorch_engine else Severity.WARNING, ["compat.transformers_pt.ok"],
            installed=_known(facts, "pkg.transformers.version"), spec=_known(facts, "compat.transformers_pt.spec"))
    builds = {"torch": _known(facts, "pkg.torch.cuda_build"), "lmdeploy": _known(facts, "compat.lmdeploy.cuda_build")}
    for who, build in builds.items():
        if _known(facts, f"compat.driver.{who}_ok") is False:
            add("driver_too_old", Severity.ERROR, [f"compat.driver.{who}_ok"], who=who, build=build,
                driver=_known(facts, "cuda.driver.version"), needs=_known(facts, f"compat.driver.{who}_needs"))
        if _known(facts, f"compat.gpu.{who}_build_ok") is False:
            add("gpu_build", Severity.ERROR, [f"compat.gpu.{who}_build_ok"], who=who, build=build,
                needs=_known(facts, "compat.gpu.needs_cuda_build"))
    if _known(facts, "pkg.lmdeploy.turbomind") is False and not pytorch_engine:
        add("no_turbomind", Severity.WARNING, ["pkg.lmdeploy.turbomind"])
