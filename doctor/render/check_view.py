"""Human output of `lmdoctor check`: one line per area (what was seen), findings with fixes under it.

Flutter-doctor style marks: ✓ fine, ✗ error, ! warning, ? couldn't check. Fix commands are printed
on their own line, unwrapped, so they can be copied.
"""
from __future__ import annotations

from typing import Callable, Dict, List

from rich.markup import escape

from doctor.engine import needs_text
from doctor.facts import FactSet
from doctor.i18n import tr
from doctor.model import Finding, Report, Severity
from doctor.render.console import STYLES, make_console, marks, print_hanging

AREA_ORDER = ["python", "gpu", "memory", "model", "command", "host", "network", "runtime"]


def _gib(mib) -> str:
    return f"{mib / 1024:.1f} GiB" if isinstance(mib, (int, float)) else "?"


def _python_summary(f: FactSet) -> str:
    parts = [f"Python {f.value('py.version', '?')}"]
    env = f.value("py.env.name")
    parts[0] += f" ({f.value('py.env.kind', '?')}{': ' + env if env else ''})"
    lmd = f.value("pkg.lmdeploy.version")
    if lmd:
        tm = f.value("pkg.lmdeploy.turbomind")
        parts.append(f"lmdeploy {lmd}" + ("" if tm is None else (" + TurboMind" if tm else f" ({tr('no_turbomind')})")))
    else:
        parts.append(tr("lmdeploy_missing"))
    torch = f.value("pkg.torch.version")
    if torch:
        build = f.value("pkg.torch.cuda_build")
        parts.append(f"torch {torch}" + (f" (CUDA {build})" if build and build != "cpu" and "+cu" not in torch else ""))
    for pkg in ("transformers", "triton", "timm"):
        v = f.value(f"pkg.{pkg}.version")
        if v:
            parts.append(f"{pkg} {v}")
    return ", ".join(parts)


def _gpu_summary(f: FactSet) -> str:
    count = f.get("gpu.count")
    if not isinstance(count, int):
        return tr("couldnt_check")
    if count == 0:
        return tr("no_gpu")
    gpus = [f"{i}: {gpu_line(f, i)}" for i in f.indices("gpu")]
    tail = driver_line(f)
    return "; ".join(gpus + ([tail] if tail else []))


def gpu_line(f: FactSet, i: str) -> str:
    """`NVIDIA H100 80GB HBM3 sm90, 8.0 GiB free of 79.6 GiB` (check and report share it)."""
    name = f.value(f"gpu.{i}.name", "GPU")
    cc = f.value(f"gpu.{i}.cc")
    free, total = f.value(f"gpu.{i}.free_mib"), f.value(f"gpu.{i}.total_mib")
    hidden = "" if f.value(f"gpu.{i}.visible", True) else f" [{tr('gpu_hidden')}]"
    return (f"{name}" + (f" sm{cc.replace('.', '')}" if cc else "")
            + f", {tr('gpu_free_of', free=_gib(free), total=_gib(total))}{hidden}")


def driver_line(f: FactSet) -> str:
    driver = f.value("cuda.driver.version")
    if not driver:
        return ""
    cuda = f.value("compat.driver.max_cuda") or f.value("cuda.driver.max_cuda")
    return tr("driver", version=driver) + (f" (CUDA ≤ {cuda})" if cuda else "")


def host_summary(f: FactSet) -> str:
    """`RAM 124.9 GiB free of 125.9 GiB, disk …, /dev/shm …, inotify N/M` (check and report share it)."""
    parts = []
    if f.value("host.mem.available_mib") is not None:
        parts.append(tr("ram_free_of", free=_gib(f.value("host.mem.available_mib")),
                        total=_gib(f.value("host.mem.total_mib"))))
    if f.value("disk.cwd.free_mib") is not None:
        parts.append(tr("disk_free_here", free=_gib(f.value("disk.cwd.free_mib"))))
    if f.value("shm.total_mib") is not None:
        parts.append(f"/dev/shm {_gib(f.value('shm.total_mib'))}")
    watches, limit = f.value("os.inotify.user_watches"), f.value("os.inotify.max_user_watches")
    if limit is not None:
        parts.append(f"inotify {watches if watches is not None else '?'}/{limit}")
    return ", ".join(parts)


def _network_summary(f: FactSet) -> str:
    port = f.value("cmd.port")
    if port is None:
        return ""
    free = f.value(f"net.port.{port}.free")
    state = {True: tr("port_free"), False: tr("port_taken"), None: "?"}[free]
    return tr("port_state", port=port, state=state)


def _command_summary(f: FactSet) -> str:
    argv = f.value("cmd.argv")
    if not argv:
        return ""
    version = f.value("cmd.lmdeploy_version")
    flags = f"  ({tr('flags_of', version=version)})" if version and f.value("cmd.program") == "lmdeploy" else ""
    return " ".join(argv) + flags


def _memory_summary(f: FactSet) -> str:
    from doctor.render.fit_view import summary  # the verdict and the breakdown table of the memory model
    return summary(f)


SUMMARIES: Dict[str, Callable[[FactSet], str]] = {
    "python": _python_summary, "gpu": _gpu_summary, "host": host_summary, "network": _network_summary,
    "command": _command_summary, "memory": _memory_summary,
}


def _status(findings: List[Finding], unknown: bool) -> str:
    if any(f.severity is Severity.ERROR for f in findings):
        return "error"
    if any(f.severity is Severity.WARNING for f in findings):
        return "warning"
    if unknown:
        return "unknown"
    if findings:
        return "info"
    return "ok"


def render_finding(console, f: Finding, m: Dict[str, str], indent: str = "    ") -> None:
    sev = f.severity.value
    pad = len(indent)
    print_hanging(console, f"[{STYLES[sev]}]{m[sev]} {f.rule}[/] {escape(f.title)}", pad, 2)
    if f.explanation:
        print_hanging(console, f"[dim]{escape(f.explanation.strip())}[/]", pad + 2, 0)
    for e in f.evidence:
        where = f"{tr('log_line', n=e.line)}: " if e.line is not None else ""
        console.print(f"{indent}  [dim]{tr('evidence')}:[/] {where}{escape(e.text)}", soft_wrap=True)
    for fix in f.fixes:
        print_hanging(console, f"[bold]{tr('fix')}:[/] {escape(fix.summary)}", pad + 2, 5)
        for d in fix.diff or []:
            console.print(f"{indent}      [cyan]{escape(d)}[/]", soft_wrap=True)
        if fix.command:
            for line in fix.command.splitlines():
                console.print(f"{indent}      $ {escape(line)}", soft_wrap=True)
    for other in f.also_matched:
        print_hanging(console, f"[dim]{escape(tr('also_matched', rule=other['rule'], title=other['title'], why=other['why_not']))}[/]", pad + 2, 2)


def is_problem(f: Finding) -> bool:
    """What `--quiet` keeps: errors and warnings (notes are not problems)."""
    return f.severity is not Severity.INFO


def render_check(report: Report, facts: FactSet, quiet: bool = False) -> None:
    """Areas in a fixed order, each with what was seen and its findings; ``quiet`` prints only
    problems (errors, warnings, couldn't check) and nothing at all when there are none."""
    console = make_console()
    m = marks()
    by_area: Dict[str, List[Finding]] = {}
    for f in report.findings:
        if is_problem(f) or not quiet:
            by_area.setdefault(f.area, []).append(f)
    unknown_by_area: Dict[str, list] = {}
    for u in report.unchecked:
        unknown_by_area.setdefault(u.area, []).append(u)
    source = facts.source if facts.source != "live" else tr("live_machine")
    if not quiet:
        console.print(f"[bold]lmdoctor check[/] [dim]({tr('facts_from')} {escape(source)})[/]")
    for area in AREA_ORDER:
        findings = by_area.get(area, [])
        unknowns = unknown_by_area.get(area, [])
        summary = SUMMARIES.get(area, lambda _f: "")(facts)
        if not findings and not unknowns and not summary:
            continue
        status = _status(findings, bool(unknowns))
        if quiet and status == "ok":
            continue
        console.print(f"[{STYLES[status]}]{m[status]}[/] [bold]{tr('area_' + area)}[/]"
                      + (f"  {escape(summary)}" if summary else ""), soft_wrap=True)
        for f in findings:
            render_finding(console, f, m)
        for u in unknowns:
            print_hanging(console, f"[{STYLES['unknown']}]{m['unknown']} {u.rule}[/] {escape(u.title)} "
                          f"[dim]({tr('couldnt_check')}: {escape(needs_text(u))})[/]", 4, 2)
    problems = any(is_problem(f) for f in report.findings) or report.unchecked
    if not quiet or problems:
        console.print(f"[bold]{tr('summary')}:[/] " + " · ".join(summary_counts(report)))


def summary_counts(report: Report) -> List[str]:
    """`1 error(s) · 0 warning(s) · …`, with the ignored rules when a selection left some out."""
    counts = [f"{report.count(Severity.ERROR)} {tr('errors')}", f"{report.count(Severity.WARNING)} {tr('warnings')}",
              f"{len(report.unchecked)} {tr('unchecked')}", f"{len(report.passed)} {tr('passed')}"]
    ignored = len(report.extra.get("ignored", []))
    if ignored:
        counts.append(f"{ignored} {tr('ignored')}")
    return counts
