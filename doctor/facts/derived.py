"""Derived facts: observed facts joined with the knowledge tables (stage 1, after every other probe).

Rules stay declarative by comparing these (``compat.torch.ok is false``) instead of doing range
arithmetic in YAML. Each derived fact exists only when its inputs are known, so an unknown input
makes the rule that needs it "couldn't check" rather than silently passing.
"""
from __future__ import annotations

import shlex
from typing import Any, Dict, List, Optional

from doctor import knowledge
from doctor.facts import ABSENT, FactSet, ProbeContext, ProbeResult, Unknown, pattern_matches, probe

_PINNED = ("torch", "torchvision", "triton", "transformers", "numpy")
# Preference order for a new env's Python: the tutorials' 3.10 first, then newer, then older.
_PYTHON_CHOICES = ("3.10", "3.11", "3.12", "3.13", "3.9", "3.8")


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
    "compat.*.lmdeploy_min": "first newer lmdeploy release whose range includes the installed package",
    "compat.transformers_pt.spec": "transformers window the PyTorch engine was tested with",
    "compat.transformers_pt.ok": "whether transformers is inside the PyTorch engine's tested window",
    "compat.python.spec": "Python versions the installed lmdeploy supports",
    "compat.python.ok": "whether the Python version is supported",
    "compat.python.suggest": "Python version to create a new env with (3.10, the tutorials', when supported)",
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
    "compat.gpu.awq_lmdeploy_spec": "lmdeploy versions whose TurboMind AWQ kernels cover the visible GPUs (>=0.6.0)",
    "compat.gpu.needs_cuda_build": "CUDA build the newest visible GPU needs (Blackwell: 12.8)",
    "compat.gpu.torch_build_ok": "whether torch's CUDA build has kernels for the visible GPUs",
    "compat.gpu.lmdeploy_build_ok": "whether lmdeploy's CUDA build has kernels for the visible GPUs",
    "model.family": "model family (internvl, xcomposer2, internlm2...)",
    "model.vlm": "whether the model is a vision-language model",
    "model.needs": "extra packages the model family needs",
    "model.missing_packages": "packages the model needs that are not installed",
    "model.missing_requirements": "the same as pip requirements, pinned where the tutorials pin them (timm==1.0.7)",
    "gpu.best_total_mib": "total memory of the visible GPU with the most free memory (MiB)",
    "compat.lmdeploy.missing_requires": "lmdeploy's required packages (for this Python) that are not installed",
    "compat.lmdeploy.cu118_wheel": "URL of the CUDA 11.8 build of the installed lmdeploy version, where one exists",
    "compat.driver.torch_install": "pip arguments for the installed torch line built for a CUDA this driver runs",
    "compat.gpu.lmdeploy_min_version": "first lmdeploy version whose wheel is built for the visible GPUs",
    "compat.gpu.torch_install": "pip arguments for a torch build with kernels for the visible GPUs",
    "py.cp_tag": "CPython wheel tag of the examined interpreter (cp310)",
    "py.duplicate_packages": "'name: v1, v2 in FOLDER' for packages with several metadata folders side by side",
    "py.duplicate_names": "names of those packages",
    "disk.min_free_mib": "free space at the fullest checked location (MiB)",
    "disk.min_free_path": "that location",
    "os.inotify.free_watches": "max_user_watches minus the watches this user's visible processes hold",
}, stage=1, timeout_s=2.0)
def derived_facts(ctx: ProbeContext) -> ProbeResult:
    facts = ctx.facts or FactSet()
    out: Dict[str, Any] = {}
    errors = []
    # Sections run in order (later ones read what earlier ones derived); a section that trips over a
    # malformed value (a hand-edited snapshot) costs only the facts it had not derived yet.
    for section in (_gpu, _lmdeploy, _driver, lambda f, o: _model(ctx, f, o), _python, _host):
        try:
            section(facts, out)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    unknown = _unknown_derived(facts, out)
    if errors:
        reason = "derived facts failed: " + "; ".join(errors)
        unknown.update({p: reason for p in _ALL if p not in unknown and not any(pattern_matches(p, k) for k in out)})
    return ProbeResult(out, unknown)


_GPU_CC = ("gpu.min_cc", "gpu.arch", "compat.gpu.bf16", "compat.gpu.flash_attn", "compat.gpu.turbomind",
           "compat.gpu.needs_cuda_build", "compat.gpu.awq_turbomind", "compat.gpu.awq_lmdeploy_spec",
           "compat.gpu.torch_build_ok", "compat.gpu.lmdeploy_build_ok", "compat.gpu.lmdeploy_min_version",
           "compat.gpu.torch_install")
_GPU_MEM = ("gpu.max_free_mib", "gpu.other_mib", "gpu.other_processes", "gpu.best_total_mib", "gpu.max_total_mib")
_LMDEPLOY = ("compat.lmdeploy.release", "compat.lmdeploy.cuda_build", "compat.*.spec", "compat.*.ok",
             "compat.*.lmdeploy_min", "compat.transformers_pt.spec", "compat.transformers_pt.ok", "compat.python.spec",
             "compat.python.ok", "compat.python.suggest", "compat.timm.pin", "compat.gpu.awq_turbomind",
             "compat.gpu.awq_min_cc", "compat.gpu.awq_lmdeploy_spec", "compat.lmdeploy.missing_requires",
             "compat.lmdeploy.cu118_wheel", "compat.driver.lmdeploy_needs", "compat.driver.lmdeploy_ok",
             "compat.gpu.lmdeploy_build_ok", "model.missing_requirements")
_DRIVER = ("compat.driver.max_cuda", "compat.driver.torch_needs", "compat.driver.torch_ok", "compat.driver.lmdeploy_needs",
           "compat.driver.lmdeploy_ok", "compat.driver.torch_install", "compat.gpu.torch_build_ok",
           "compat.gpu.lmdeploy_build_ok", "compat.gpu.lmdeploy_min_version", "compat.gpu.torch_install")
_MODEL = ("model.family", "model.vlm", "model.needs", "model.missing_packages", "model.missing_requirements")
# Which derived facts each observed input feeds. A derived fact that could not be computed because
# an input is unknown (its probe failed or timed out) is itself unknown, with the input's reason, so
# rules that need it say "couldn't check" instead of passing on a missing value.
_INPUTS = {
    "gpu.*.visible": _GPU_CC + _GPU_MEM,
    "gpu.*.cc": _GPU_CC,
    "gpu.*.free_mib": _GPU_MEM,
    "gpu.*.total_mib": ("gpu.max_total_mib", "gpu.best_total_mib"),
    "gpu.*.processes": ("gpu.other_processes",),
    "cuda.driver.version": _DRIVER,
    "pkg.lmdeploy.version": _LMDEPLOY,
    "pkg.*.version": ("compat.*.ok", "compat.*.lmdeploy_min", "compat.transformers_pt.ok",
                      "compat.lmdeploy.missing_requires", "model.missing_packages", "model.missing_requirements"),
    "pkg.torch.cuda_build": ("compat.driver.torch_needs", "compat.driver.torch_ok", "compat.driver.torch_install",
                             "compat.gpu.torch_build_ok"),
    "pkg.count": ("py.duplicate_packages", "py.duplicate_names", "model.missing_packages",
                  "model.missing_requirements", "compat.lmdeploy.missing_requires"),
    "py.version": ("py.cp_tag", "compat.python.ok", "compat.lmdeploy.cu118_wheel", "compat.lmdeploy.missing_requires"),
    "model.architectures": _MODEL,
    "disk.*.free_mib": ("disk.min_free_mib", "disk.min_free_path"),
    "os.inotify.max_user_watches": ("os.inotify.free_watches",),
    "os.inotify.user_watches": ("os.inotify.free_watches",),
}


_ALL = sorted({p for group in _INPUTS.values() for p in group})


def _unknown_derived(facts: FactSet, out: Dict[str, Any]) -> Dict[str, str]:
    unknown: Dict[str, str] = {}
    for name, derived in _INPUTS.items():
        if "*" in name:
            reason = facts.pattern_unknown(name)
        else:
            value = facts.get(name)
            reason = value.reason if isinstance(value, Unknown) else None
        if reason is None:
            continue
        for pattern in derived:
            if pattern not in unknown and not any(pattern_matches(pattern, key) for key in out):
                unknown[pattern] = f"{name} is unknown: {reason}"
    return unknown


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
        out["gpu.best_total_mib"] = facts.value(f"gpu.{best}.total_mib")
        others = []
        for i in visible:
            for p in facts.value(f"gpu.{i}.processes", []) or []:
                if not p.get("self"):
                    used = f"{p['used_mib']} MiB" if p.get("used_mib") is not None else "? MiB"
                    others.append(f"GPU{i}: pid {p.get('pid', '?')} {p.get('name', '')} ({used})".strip())
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
        if not spec:
            continue
        out[f"compat.{pkg}.spec"] = spec  # also when not installed: fix commands pin to it
        installed = _known(facts, f"pkg.{pkg}.version")
        ok = knowledge.satisfies(installed, spec) if installed else None
        if ok is not None:
            out[f"compat.{pkg}.ok"] = ok
        if ok is False:
            newer = knowledge.first_release_allowing(pkg, installed, after=ver)
            if newer:
                out[f"compat.{pkg}.lmdeploy_min"] = newer
    spec = row.get("transformers_pt")
    installed = _known(facts, "pkg.transformers.version")
    if spec and installed and knowledge.satisfies(installed, spec) is not None:
        out["compat.transformers_pt.spec"] = spec
        out["compat.transformers_pt.ok"] = knowledge.satisfies(installed, spec)
    py = _known(facts, "py.version")
    if row.get("python"):
        out["compat.python.spec"] = row["python"]
        supported = [m for m in _PYTHON_CHOICES if knowledge.satisfies(m, row["python"])]
        if supported:
            out["compat.python.suggest"] = supported[0]
        if py:
            out["compat.python.ok"] = bool(knowledge.satisfies(py, row["python"]))
    if row.get("timm_pin"):
        out["compat.timm.pin"] = row["timm_pin"]
    missing = _missing_requires(_known(facts, "pkg.lmdeploy.requires"), facts)
    if missing is not None:
        out["compat.lmdeploy.missing_requires"] = missing
    cu118 = knowledge.table("lmdeploy").get("cu118_wheels") or {}
    cp = _cp_tag(_known(facts, "py.version"))
    if cu118 and cp and knowledge.satisfies(ver, cu118["versions"]):
        base = str(ver).split("+")[0]
        out["compat.lmdeploy.cu118_wheel"] = cu118["url"].format(version=base, py=cp)
    min_cc = _known(facts, "gpu.min_cc") or out.get("gpu.min_cc")
    awq = knowledge.feature_min_cc("awq_turbomind", ver)
    if awq:
        out["compat.gpu.awq_min_cc"] = awq
        if min_cc:
            out["compat.gpu.awq_turbomind"] = knowledge.version(min_cc) >= knowledge.version(awq)
            spec = knowledge.feature_first_release("awq_turbomind", min_cc)
            if spec:
                out["compat.gpu.awq_lmdeploy_spec"] = spec


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
        if not build or build in ("cpu", "rocm"):
            continue
        need = knowledge.min_driver_for_cuda(build)
        if need and dv is not None:
            out[f"compat.driver.{who}_needs"] = need
            out[f"compat.driver.{who}_ok"] = dv >= knowledge.version(need)
    torch_ver, torch_build = _known(facts, "pkg.torch.version"), _known(facts, "pkg.torch.cuda_build")
    if torch_ver and torch_build and torch_build != "cpu" and out.get("compat.driver.torch_ok") is False:
        build = knowledge.newest_build_for_driver(knowledge.torch_builds(torch_ver), driver)
        if build:
            out["compat.driver.torch_install"] = _torch_args(torch_ver, build, facts)
    need_build = out.get("compat.gpu.needs_cuda_build")
    if need_build:
        for who, build in (("torch", _known(facts, "pkg.torch.cuda_build")),
                           ("lmdeploy", out.get("compat.lmdeploy.cuda_build"))):
            if build and build not in ("cpu", "rocm"):
                out[f"compat.gpu.{who}_build_ok"] = knowledge.version(build) >= knowledge.version(need_build)
        first = knowledge.lmdeploy_first_version_with_build(need_build)
        if first:
            out["compat.gpu.lmdeploy_min_version"] = first
        lines = [line for line, builds in knowledge.table("torch").get("cuda_builds", {}).items()
                 if any(knowledge.version(b) >= knowledge.version(need_build) for b in builds)]
        if lines:
            line = min(lines, key=knowledge.version)
            build = min((b for b in knowledge.torch_builds(line) if knowledge.version(b) >= knowledge.version(need_build)),
                        key=knowledge.version)
            out["compat.gpu.torch_install"] = f"'torch>={line}' --index-url {knowledge.torch_index_url(build)}"


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
        missing = [p for p in needs if _known(facts, f"pkg.{p}.version") is None]
        out["model.missing_packages"] = missing
        # The tutorials pin timm per lmdeploy release; pin it the same way where the table says so.
        pins = {"timm": out.get("compat.timm.pin")}
        out["model.missing_requirements"] = [f"{p}=={pins[p]}" if pins.get(p) else p for p in missing]


def _cp_tag(py_version: Optional[str]) -> Optional[str]:
    parts = str(py_version or "").split(".")
    return f"cp{parts[0]}{parts[1]}" if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit() else None


def _torch_args(torch_version: str, build: str, facts: FactSet) -> str:
    """`torch==2.1.2 torchvision==0.16.* --index-url …/cu118` (torchvision only when installed)."""
    base = str(torch_version).split("+")[0]
    args = [f"torch=={base}"]
    vision = knowledge.table("torch").get("torchvision", {}).get(knowledge.release_line(base) or "")
    if vision and _known(facts, "pkg.torchvision.version"):
        args.append(f"torchvision=={vision}.*")
    return " ".join(shlex.quote(a) for a in args) + f" --index-url {knowledge.torch_index_url(build)}"


def _missing_requires(requires: Optional[List[str]], facts: FactSet) -> Optional[List[str]]:
    """Names of requirements whose markers hold for the examined Python and that are not installed.

    Markers are evaluated for the *examined* interpreter's version (not lmdoctor's), so a
    `; python_version < "3.10"` requirement is only demanded where it applies.
    """
    py = _known(facts, "py.version")
    if not requires or not py or _known(facts, "pkg.count") is None:
        return None
    from packaging.markers import default_environment
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    env = default_environment()
    env.update({"python_version": ".".join(py.split(".")[:2]), "python_full_version": py, "extra": ""})
    missing: List[str] = []
    for line in requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if _known(facts, f"pkg.{name}.version") is None and _known(facts, f"pkg.{name}.no_metadata") is None \
                and name not in missing:
            missing.append(name)
    return missing


def _python(facts: FactSet, out: Dict[str, Any]) -> None:
    cp = _cp_tag(_known(facts, "py.version"))
    if cp:
        out["py.cp_tag"] = cp
    if _known(facts, "pkg.count") is None:
        return
    dups, names = [], []
    for name, versions in facts.expand("pkg.*.duplicates").items():
        pkg = name.split(".")[1]
        where = facts.value(f"pkg.{pkg}.location", "?")
        dups.append(f"{pkg}: {', '.join(map(str, versions))} in {where}")
        names.append(pkg)
    out["py.duplicate_packages"] = dups
    out["py.duplicate_names"] = names


def _host(facts: FactSet, out: Dict[str, Any]) -> None:
    frees = [(v, k.split(".")[1]) for k, v in facts.expand("disk.*.free_mib").items() if isinstance(v, (int, float))]
    if frees:
        low, key = min(frees)
        out["disk.min_free_mib"] = low
        out["disk.min_free_path"] = facts.value(f"disk.{key}.path", key)
    limit, used = _known(facts, "os.inotify.max_user_watches"), _known(facts, "os.inotify.user_watches")
    if isinstance(limit, int) and isinstance(used, int):
        out["os.inotify.free_watches"] = max(0, limit - used)
