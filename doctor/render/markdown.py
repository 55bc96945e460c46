"""Markdown for `lmdoctor report`: what renders the same on GitHub, in chat apps and as plain text.

Everything here formats data that was redacted before (doctor/redact.py); nothing here decides
what is secret. Text from rules keeps its `code spans`; other Markdown syntax in it is escaped.
"""
from __future__ import annotations

import re
import shlex
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

from doctor.facts import FactSet
from doctor.i18n import tr
from doctor.redact import MASK
from doctor.render.check_view import driver_line, gpu_line, host_summary

MARKS = {"error": "✗", "warning": "!", "info": "i", "unknown": "?", "ok": "✓"}
_SPECIAL = re.compile(r"([\\*_<>|])")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
PACKAGES = ("torchvision", "transformers", "triton", "timm", "flash-attn", "accelerate", "gradio", "streamlit")


def escape(text: str) -> str:
    """Escape Markdown syntax outside `code spans` (kept: rule texts use them for commands)."""
    out, pos = [], 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_SPECIAL.sub(r"\\\1", text[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_SPECIAL.sub(r"\\\1", text[pos:]))
    return "".join(out)


def code(text: str) -> str:
    """An inline code span that survives backticks inside."""
    ticks = "`" * (max((len(t) for t in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text: str, info: str = "text") -> str:
    """A fenced block longer than any backtick run inside, so a log cannot close it early."""
    fence = "`" * max(3, max((len(t) for t in re.findall(r"`{3,}", text)), default=0) + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


def cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table(rows: Sequence[Tuple[str, str]]) -> str:
    lines = [f"| {tr('report_item')} | {tr('report_value')} |", "| --- | --- |"]
    lines += [f"| {cell(k)} | {v} |" for k, v in rows]
    return "\n".join(lines)


def shell_line(argv: Sequence[str]) -> str:
    """A command as one shell line; the redaction mark is left unquoted so it stays readable."""
    safe = "REDACTEDMARK"
    return " ".join(shlex.quote(a.replace(MASK, safe)).replace(safe, MASK) for a in argv)


def _gib(mib: Any) -> str:
    return f"{mib / 1024:.1f} GiB" if isinstance(mib, (int, float)) else "?"


def environment_rows(f: FactSet) -> List[Tuple[str, str]]:
    """The compact facts table: versions, GPUs, driver, memory, host limits, relevant env vars."""
    rows: List[Tuple[str, str]] = []
    py = f.value("py.version")
    if py:
        env = f.value("py.env.name")
        kind = f.value("py.env.kind")
        where = f" ({kind}{': ' + env if env else ''})" if kind else ""
        exe = f.value("py.executable")
        rows.append(("Python", cell(f"{py}{where}") + (f" {code(exe)}" if exe else "")))
    lmd = f.value("pkg.lmdeploy.version")
    tm = f.value("pkg.lmdeploy.turbomind")
    rows.append(("lmdeploy", cell(f"{lmd}" + ("" if tm is None else (" + TurboMind" if tm else f" ({tr('no_turbomind')})")))
                 if lmd else cell(tr("not_installed"))))
    torch = f.value("pkg.torch.version")
    if torch:
        build = f.value("pkg.torch.cuda_build")
        rows.append(("torch", cell(torch + (f" (CUDA {build})" if build and build != "cpu" else ""))))
    others = [f"{p} {f.value(f'pkg.{p}.version')}" for p in PACKAGES if f.value(f"pkg.{p}.version")]
    if others:
        rows.append((tr("report_packages"), cell(", ".join(others))))
    count = f.get("gpu.count")
    if count == 0:
        rows.append(("GPU", cell(tr("no_gpu"))))
    for i in f.indices("gpu"):
        line = gpu_line(f, i)
        if f.value(f"gpu.{i}.mig"):
            line += " (MIG)"
        other = f.value(f"gpu.{i}.other_mib")
        if other:
            line += "; " + tr("other_processes_hold", used=_gib(other))
        rows.append((tr("report_gpu", index=i), cell(line)))
    driver = driver_line(f)
    if driver:
        rows.append(("NVIDIA", cell(driver)))
    host = [f"{f.value('host.os', '')} {f.value('host.kernel', '')}".strip(),
            f"{f.value('host.cpus')} CPUs" if f.value("host.cpus") else ""]
    host.append(host_summary(f))
    if any(host):
        rows.append((tr("report_host"), cell(", ".join(h for h in host if h))))
    env_vars = f.expand("env.*")
    if env_vars:
        rows.append((tr("report_env_vars"), " ".join(code(f"{k[4:]}={v}") for k, v in env_vars.items())))
    source = f.source if f.source != "live" else tr("live_machine")
    rows.append((tr("report_facts_from"), code(source) if f.source != "live" else cell(source)))
    return rows


def finding_lines(item: Mapping[str, Any]) -> List[str]:
    """One finding of a command's JSON document (check now; explain/run use the same shape)."""
    sev = item.get("severity", "info")
    lines = [f"- {MARKS.get(sev, '-')} **{item['rule']}** {escape(item.get('title', ''))}"]
    explanation = " ".join(str(item.get("explanation") or "").split())
    if explanation:
        lines.append(f"  {escape(explanation)}")
    for e in item.get("evidence", []):
        where = f"{tr('log_line', n=e['line'])}: " if e.get("line") is not None else ""
        lines.append(f"  - {tr('evidence')}: {where}{code(e.get('text', ''))}")
    for fix in item.get("fixes", []):
        lines.append(f"  - {tr('fix')}: {escape(fix.get('summary', ''))}")
        if fix.get("command"):
            lines.append("\n".join("    " + ln for ln in fenced(fix["command"], "shell").splitlines()))
    return lines


def unchecked_lines(doc: Mapping[str, Any]) -> List[str]:
    out = []
    for u in doc.get("unchecked", []):
        needs = ", ".join(u.get("missing", []))
        reasons = "; ".join(u.get("reasons", []))
        out.append(f"- ? **{u['rule']}** {escape(u.get('title', ''))} ({tr('couldnt_check')}: "
                   f"{tr('needs')} {code(needs)}{': ' + escape(reasons) if reasons else ''})")
    return out


def check_markdown(doc: Mapping[str, Any]) -> str:
    """The findings, couldn't-checks and ignored rules of a `check --json` document."""
    out: List[str] = []
    for item in doc.get("findings", []):
        out.extend(finding_lines(item))
    out.extend(unchecked_lines(doc))
    if not out:
        out.append(tr("report_no_findings"))
    ignored = doc.get("ignored") or []
    if ignored:
        out.append("")
        out.append(f"{tr('report_ignored')}: " + ", ".join(
            f"{i['rule']} ({code(i['by'])})" for i in ignored))
    return "\n".join(out)


def explain_markdown(doc: Mapping[str, Any]) -> str:
    """The diagnosis of an `explain --json` document: root cause first, then what else fired; an
    unexplained failure lists its most suspicious lines instead."""
    out: List[str] = []
    for item in doc.get("findings", []):
        out.extend(finding_lines(item))
    if doc.get("verdict") == "unexplained":
        out.append(f"- ? {escape(tr('explain_unexplained'))} {escape(tr('explain_suspicious'))}")
        for s in (doc.get("unexplained") or {}).get("suspicious", []):
            out.append(f"  - {tr('log_line', n=s['line'])}: {code(s['text'])}")
    elif not out:
        out.append(escape(tr("explain_no_failure")))
    out.extend(unchecked_lines(doc))
    return "\n".join(out)


def verdict_line(doc: Mapping[str, Any], counts: Iterable[str]) -> str:
    status = {"errors": "error", "warnings": "warning", "unchecked": "unknown", "healthy": "ok"}[doc["verdict"]]
    return f"**{tr('report_verdict')}:** {MARKS[status]} {' · '.join(counts)}"


def details(summary: str, body: str) -> str:
    """A collapsed block (GitHub renders it folded; plain-text readers still see everything)."""
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def section(title: str, body: str, level: int = 3) -> str:
    return f"{'#' * level} {title}\n\n{body.strip()}\n"


def join_sections(parts: Iterable[Optional[str]]) -> str:
    return "\n".join(p for p in parts if p) + "\n"
