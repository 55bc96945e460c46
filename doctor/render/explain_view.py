"""Human output of `lmdoctor explain`: one panel per finding, fixes printed under it unwrapped.

The panel holds what to read (cause, evidence lines with their numbers, consequences, what else
matched); fix commands are printed outside it, on their own lines, so they can be copied.
"""
from __future__ import annotations

from typing import Any, Dict, List

from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text as RichText

from doctor.engine import needs_text
from doctor.i18n import UI as I18N_UI
from doctor.i18n import Text
from doctor.model import Finding, Severity
from doctor.render.console import STYLES, make_console, marks

UI = {key: Text(I18N_UI["explain_" + key]) for key in (
    "lines", "facts", "this_machine", "no_facts", "launch", "evidence", "consequences", "also", "fix", "repeated", "harmless", "no_failure", "hidden", "unexplained", "suspicious", "attach", "read_from_log", "couldnt", "also_found")}

FACT_SUMMARY = (("log.lmdeploy_version", "lmdeploy"), ("log.python_version", "Python"),
                ("log.pkg.torch.version", "torch"), ("log.pkg.transformers.version", "transformers"),
                ("log.pkg.triton.version", "triton"), ("log.backend", "backend"), ("log.server_url", I18N_UI["explain_served_at"]["en"]))


def _t(key: str, **fmt: Any) -> str:
    text = UI[key].get()
    return text.format(**fmt) if fmt else text


def _panel_body(f: Finding) -> Group:
    parts: List[Any] = [RichText(f.title, style="bold")]
    if f.explanation:
        parts += [RichText(""), RichText(f.explanation.strip(), style="dim")]
    parts += [RichText(""), RichText(_t("evidence"), style="bold")]
    for e in f.evidence:
        where = f"{e.line:>6}  " if e.line is not None else "        "
        parts.append(RichText(where + e.text, style="" if e.line is not None else "dim", overflow="fold"))
    count = f.data.get("occurrences", 0)
    if count and count > 1:
        parts.append(RichText("        (" + _t("repeated", n=count) + ")", style="dim"))
    consequences = f.data.get("consequences") or []
    if consequences:
        parts += [RichText(""), RichText(_t("consequences"), style="bold")]
        for c in consequences:
            parts.append(RichText(f"{c['line']:>6}  {c['text']}", style="dim", overflow="fold"))
    if f.also_matched:
        parts += [RichText(""), RichText(_t("also"), style="bold")]
        for other in f.also_matched:
            parts.append(RichText(f"  {other['rule']} {other['title']} — {other['why_not']}", style="dim"))
    return Group(*parts)


def _render_finding(console: Any, f: Finding, m: Dict[str, str]) -> None:
    sev = f.severity.value
    style = STYLES[sev]
    label = f"{m[sev]} {f.rule} · {f.category} · {sev}"
    if f.category == "benign_warning":
        label += f" ({_t('harmless')})"
    console.print(Panel(_panel_body(f), title=escape(label), title_align="left", border_style=style))
    for i, fix in enumerate(f.fixes, 1):
        console.print(f"  [bold]{_t('fix')} {i}:[/] {escape(fix.summary)} [dim]({fix.safety.value})[/]", soft_wrap=True)
        for d in fix.diff or []:
            console.print(f"      [cyan]{escape(d)}[/]", soft_wrap=True)
        if fix.command:
            for line in fix.command.splitlines():
                console.print(f"      $ {escape(line)}", soft_wrap=True)


def render_explain(result: Any, show_all: bool = False) -> None:
    console = make_console()
    m = marks()
    report, an, log = result.report, result.analysis, result.log_facts
    facts_src = report.extra.get("facts_source")
    facts_text = {"live": _t("this_machine"), "none": _t("no_facts")}.get(facts_src, facts_src)
    header = f"[bold]lmdoctor explain[/] {escape(an.source or '-')} [dim]({an.lines} {_t('lines')} · {_t('facts')}: " \
             f"{escape(str(facts_text))}"
    subject = report.extra.get("subject")
    if subject:
        header += f" · {_t('launch')}: {escape(subject['command'])} ({escape(subject['source'])})"
    console.print(header + ")[/]", soft_wrap=True)
    findings = report.findings
    shown = [f for f in findings if f.severity is not Severity.INFO or show_all or f is findings[0]]
    if findings:
        _render_finding(console, findings[0], m)
        for f in findings[1:]:
            if f in shown and f.severity is not Severity.INFO and f.category != "benign_warning":
                _render_finding(console, f, m)
        rest = [f for f in findings[1:] if f.severity is Severity.INFO or f.category == "benign_warning"]
        for f in rest:
            tag = _t("harmless") if f.category == "benign_warning" else f.category
            console.print(f"[{STYLES[f.severity.value]}]{m[f.severity.value]} {f.rule}[/] {escape(f.title)} "
                          f"[dim]({escape(tag)})[/]", soft_wrap=True)
    for u in report.unchecked:
        console.print(f"[{STYLES['unknown']}]{m['unknown']} {u.rule}[/] {escape(u.title)} "
                      f"[dim]({_t('couldnt')}: {escape(needs_text(u))})[/]", soft_wrap=True)
    verdict = report.verdict
    if verdict == "unexplained":
        console.print(f"[{STYLES['unknown']}]{m['unknown']}[/] [bold]{_t('unexplained')}[/]")
        console.print(f"  {_t('suspicious')}")
        for s in report.extra["unexplained"]["suspicious"]:
            console.print(f"  {s['line']:>6}  {escape(s['text'])}", soft_wrap=True)
        console.print(f"  {_t('attach')}")
    elif not findings or all(f.severity is Severity.INFO for f in findings):
        if not log.get("log.failure"):
            console.print(f"[{STYLES['ok']}]{m['ok']}[/] {_t('no_failure')}")
    known = [(label, log[name]) for name, label in FACT_SUMMARY if log.get(name)]
    gpus = [f"GPU {k.split('.')[2]}: {v}" for k, v in sorted(log.items()) if k.startswith("log.gpu.") and k.endswith(".name")]
    if known or gpus:
        console.print(f"[dim]{_t('read_from_log')}: " + escape(", ".join([f"{a} {b}" for a, b in known] + gpus)) + "[/]",
                      soft_wrap=True)
    hidden = report.extra.get("hidden")
    if hidden:
        console.print(f"[dim]{_t('hidden', n=hidden['benign'])}[/]")
