"""Derived facts: observed facts joined with the knowledge tables (stage 1, after every other probe).

Rules stay declarative by comparing these (``compat.torch.ok is false``) instead of doing range
arithmetic in YAML. Each derived fact exists only when its inputs are known, so an unknown input
makes the rule that needs it "couldn't check" rather than silently passing.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from doctor import knowledge
from doctor.facts import ABSENT, FactSet, ProbeContext, ProbeResult, Unknown, probe

_PINNED = ("torch", "torchvision", "triton", "transformers", "numpy")


def _known(facts: FactSet, name: str) -> Any:
    v = facts.get(name)
    return None if v is ABSENT or isinstance(v, Unknown) else v


def _visible_gpus(facts: FactSet) -> List[str]:
    return [i for i in facts.indices("gpu") if facts.value(f"gpu.{i}.visible", True)]


@probe("derived", {
    "gpu.min_cc": "lowest compute capability among visible GPUs",
    "gpu.arch": "architecture name of the lowest visible GPU (Volta, Ampere...)",
    "gpu.max_free_mib": "largest free memory on a visible GPU (MiB)",
    "gpu.max_total_mib": "largest total memory of a visible GPU (MiB)",
    "gpu.other_mib": "memory held by other processes on the visible GPU with most free memory (MiB)",
    "gpu.other_processes": "'pid name (N MiB)' of other processes holding GPU memory",
    "compat.lmdeploy.release": "version range of the installed lmdeploy's compatibility row",
    "compat.lmdeploy.cuda_build": "CUDA version the installed lmdeploy wheel was built with",
    "compat.*.spec": "version range the installed lmdeploy supports for a package (torch, triton...)",
    "compat.*.ok": "whether the installed package is inside that range",
    "compat.transformers_pt.spec": "transformers window the PyTorch engine was tested with",
    "compat.transformers_pt.ok": "whether transformers is inside the PyTorch engine's tested window",
    "compat.python.spec": "Python versions the installed lmdeploy supports",
    "compat.python.ok": "whether the Python version is supported",
    "compat.timm.pin": "timm version the tutorials pin for this lmdeploy",
    "compat.driver.max_cuda": "newest CUDA the driver runs (from NVML, else the driver table)",
    "compat.driver.torch_needs": "oldest driver that runs torch's CUDA build",
    "compat.driver.torch_ok": "whether the driver runs torch's CUDA build",
    "compat.driver.lmdeploy_needs": "oldest driver that runs lmdeploy's CUDA build",
    "compat.driver.lmdeploy_ok": "whether the driver runs lmdeploy's CUDA build",
    "compat.gpu.bf16": "whether every visible GPU supports bfloat16 (sm80+)",
    "compat.gpu.flash_attn": "whether every visible GPU can run FlashAttention 2 (sm80+)",
    "compat.gpu.turbomind": "whether every visible GPU is new enough for TurboMind (sm70+)",
    "compat.gpu.awq_turbomind": "whether every visible GPU has TurboMind AWQ kernels in this lmdeploy",
    "compat.gpu.awq_min_cc": "compute capability TurboMind AWQ needs in this lmdeploy",
    "compat.gpu.needs_cuda_build": "CUDA build the newest visible GPU needs (Blackwell: 12.8)",
    "compat.gpu.torch_build_ok": "whether torch's CUDA build has kernels for the visible GPUs",
    "compat.gpu.lmdeploy_build_ok": "whether lmdeploy's CUDA build has kernels for the visible GPUs",
    "model.family": "model family (internvl, xcomposer2, internlm2...)",
    "model.vlm": "whether the model is a vision-language model",
    "model.needs": "extra packages the model family needs",
    "model.missing_packages": "packages the model needs that are not installed",
}, stage=1, timeout_s=2.0)
def derived_facts(ctx: ProbeContext) -> ProbeResult:
    facts = ctx.facts or FactSet()
    out: Dict[str, Any] = {}
    _gpu(facts, out)
    _lmdeploy(facts, out)
    _driver(facts, out)
    _model(ctx, facts, out)
    return ProbeResult(out)


def _gpu(facts: FactSet, out: Dict[str, Any]) -> None:
    visible = _visible_gpus(facts)
    ccs = [(knowledge.version(facts.value(f"gpu.{i}.cc")), facts.value(f"gpu.{i}.cc")) for i in visible]
    ccs = [c for c in ccs if c[0] is not None]
    if ccs:
        low = min(ccs)[1]
        out["gpu.min_cc"] = low
        name = knowledge.arch_name(low)
        if name:
            out["gpu.arch"] = name
        for feature, key in (("bf16", "compat.gpu.bf16"), ("flash_attn", "compat.gpu.flash_attn"),
                             ("turbomind", "compat.gpu.turbomind")):
            need = knowledge.feature_min_cc(feature)
            out[key] = knowledge.version(low) >= knowledge.version(need)
        high = max(ccs)[1]
        need_build = knowledge.table("gpus").get("min_cuda_build_for_cc", {}).get(str(high))
        if need_build:
            out["compat.gpu.needs_cuda_build"] = need_build
    frees = [(facts.value(f"gpu.{i}.free_mib"), i) for i in visible if facts.value(f"gpu.{i}.free_mib") is not None]
    if frees:
        best_free, best = max(frees)
        out["gpu.max_free_mib"] = best_free
        out["gpu.other_mib"] = facts.value(f"gpu.{best}.other_mib", 0)
        others = []
        for i in visible:
            for p in facts.value(f"gpu.{i}.processes", []) or []:
                if not p.get("self"):
                    used = f"{p['used_mib']} MiB" if p.get("used_mib") is not None else "? MiB"
                    others.append(f"GPU{i}: pid {p['pid']} {p.get('name', '')} ({used})".strip())
        out["gpu.other_processes"] = others
    totals = [facts.value(f"gpu.{i}.total_mib") for i in visible if facts.value(f"gpu.{i}.total_mib") is not None]
    if totals:
        out["gpu.max_total_mib"] = max(totals)


def _lmdeploy(facts: FactSet, out: Dict[str, Any]) -> None:
    ver = _known(facts, "pkg.lmdeploy.version")
    if not ver:
        return
    row = knowledge.lmdeploy_release(ver)
    if row is None:
        return
    out["compat.lmdeploy.release"] = row["versions"]
    tag = _known(facts, "pkg.lmdeploy.cuda_tag")
    out["compat.lmdeploy.cuda_build"] = tag or row.get("cuda_build")
    for pkg in _PINNED:
        spec = row.get(pkg)
        installed = _known(facts, f"pkg.{pkg}.version")
        if spec and installed:
            ok = knowledge.satisfies(installed, spec)
            if ok is not None:
                out[f"compat.{pkg}.spec"] = spec
                out[f"compat.{pkg}.ok"] = ok
    spec = row.get("transformers_pt")
    installed = _known(facts, "pkg.transformers.version")
    if spec and installed and knowledge.satisfies(installed, spec) is not None:
        out["compat.transformers_pt.spec"] = spec
        out["compat.transformers_pt.ok"] = knowledge.satisfies(installed, spec)
    py = _known(facts, "py.version")
    if row.get("python") and py:
        out["compat.python.spec"] = row["python"]
        out["compat.python.ok"] = bool(knowledge.satisfies(py, row["python"]))
    if row.get("timm_pin"):
        out["compat.timm.pin"] = row["timm_pin"]
    min_cc = _known(facts, "gpu.min_cc") or out.get("gpu.min_cc")
    awq = knowledge.feature_min_cc("awq_turbomind", ver)
    if awq:
        out["compat.gpu.awq_min_cc"] = awq
        if min_cc:
            out["compat.gpu.awq_turbomind"] = knowledge.version(min_cc) >= knowledge.version(awq)


def _driver(facts: FactSet, out: Dict[str, Any]) -> None:
    driver = _known(facts, "cuda.driver.version")
    if not driver:
        return
    max_cuda = _known(facts, "cuda.driver.max_cuda") or knowledge.max_cuda_for_driver(driver)
    if max_cuda:
        out["compat.driver.max_cuda"] = max_cuda
    dv = knowledge.version(driver)
    for who, build in (("torch", _known(facts, "pkg.torch.cuda_build")),
                       ("lmdeploy", out.get("compat.lmdeploy.cuda_build"))):
        if not build or build == "cpu":
            continue
        need = knowledge.min_driver_for_cuda(build)
        if need and dv is not None:
            out[f"compat.driver.{who}_needs"] = need
            out[f"compat.driver.{who}_ok"] = dv >= knowledge.version(need)
    need_build = out.get("compat.gpu.needs_cuda_build")
    if need_build:
        for who, build in (("torch", _known(facts, "pkg.torch.cuda_build")),
                           ("lmdeploy", out.get("compat.lmdeploy.cuda_build"))):
            if build and build != "cpu":
                out[f"compat.gpu.{who}_build_ok"] = knowledge.version(build) >= knowledge.version(need_build)


def _model(ctx: ProbeContext, facts: FactSet, out: Dict[str, Any]) -> None:
    archs = _known(facts, "model.architectures") or []
    llm = _known(facts, "model.llm_arch")
    path = ctx.planned.model if ctx.planned is not None else None
    family: Optional[str] = knowledge.match_family(list(archs) + ([llm] if llm else []),
                                                   _known(facts, "model.model_type"), path)
    if family is None:
        return
    fam = knowledge.families()[family]
    out["model.family"] = family
    out["model.vlm"] = bool(fam.get("vlm"))
    needs = list(fam.get("needs", []))
    out["model.needs"] = needs
    if _known(facts, "pkg.count") is not None:
        out["model.missing_packages"] = [p for p in needs if _known(facts, f"pkg.{p}.version") is None]
