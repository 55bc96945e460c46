"""Human output of `lmdoctor explain`: one panel per finding, fixes printed under it unwrapped.

The panel holds what to read (cause, evidence lines with their numbers, consequences, what else
matched); fix commands are printed outside it, on their own lines, so they can be copied.

It renders the JSON document (the same one ``--json`` prints), after redaction: what a person
sees and what a script reads can never disagree, and a secret masked in one is masked in both.
"""
from __future__ import annotations

from typing import Any, Dict, List

from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.padding import Padding
from rich.text import Text as RichText

from doctor.i18n import tr
from doctor.render.console import STYLES, make_console, marks, print_hanging

# log facts summarised on the last line: (fact, label key or None for the fact's own label)
FACT_SUMMARY = (("log.lmdeploy_version", "lmdeploy"), ("log.python_version", "Python"),
                ("log.pkg.torch.version", "torch"), ("log.pkg.transformers.version", "transformers"),
                ("log.pkg.triton.version", "triton"), ("log.backend", "explain_backend"),
                ("log.server_url", "explain_served_at"))


def _sev(severity: str) -> str:
    return tr("sev_" + severity)


def _numbered(rows: List[Any], style: str = "") -> Any:
    """Log lines with their numbers in a column of their own, so a wrapped line stays right of the
    number instead of folding back under it (where it would read as another log line)."""
    from rich.table import Table
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", width=6, no_wrap=True)
    grid.add_column(overflow="fold")
    for line, text, row_style in rows:
        grid.add_row("" if line is None else str(line), RichText(text, style=row_style or style))
    return grid


def _panel_body(f: Dict[str, Any]) -> Group:
    parts: List[Any] = [RichText(f["title"], style="bold")]
    if f.get("explanation"):
        parts += [RichText(""), RichText(f["explanation"].strip(), style="dim")]
    parts += [RichText(""), RichText(tr("explain_evidence"), style="bold")]
    parts.append(_numbered([(e.get("line"), e["text"], "" if e.get("line") is not None else "dim")
                            for e in f.get("evidence", [])]))
    count = f.get("occurrences", 0)
    if count and count > 1:
        parts.append(RichText("        (" + tr("explain_repeated", n=count) + ")", style="dim"))
    consequences = f.get("consequences") or []
    if consequences:
        parts += [RichText(""), RichText(tr("explain_consequences"), style="bold")]
        parts.append(_numbered([(c["line"], c["text"], "") for c in consequences], style="dim"))
    if f.get("also_matched"):
        parts += [RichText(""), RichText(tr("explain_also"), style="bold")]
        for other in f["also_matched"]:
            parts.append(Padding(RichText(f"{other['rule']} {other['title']} — {other['why_not']}", style="dim"), (0, 0, 0, 2)))
    return Group(*parts)


def _render_finding(console: Any, f: Dict[str, Any], m: Dict[str, str]) -> None:
    sev = f["severity"]
    label = f"{m[sev]} {f['rule']} · {f['category']} · {_sev(sev)}"
    if f["category"] == "benign_warning":
        label += f" ({tr('explain_harmless')})"
    console.print(Panel(_panel_body(f), title=escape(label), title_align="left", border_style=STYLES[sev]))
    for i, fix in enumerate(f.get("fixes", []), 1):
        print_hanging(console, f"[bold]{tr('explain_fix')} {i}:[/] {escape(fix['summary'])} "
                      f"[dim]({tr('safety_' + fix['safety'])})[/]", 2, 4)
        for d in fix.get("diff") or []:
            console.print(f"      [cyan]{escape(d)}[/]", soft_wrap=True)
        for line in (fix.get("command") or "").splitlines():
            console.print(f"      $ {escape(line)}", soft_wrap=True)


def _header(doc: Dict[str, Any]) -> str:
    facts_src = doc.get("facts_source")
    facts_text = {"live": tr("explain_this_machine"), "none": tr("explain_no_facts")}.get(facts_src, facts_src)
    log = doc.get("log", {})
    header = f"[bold]lmdoctor explain[/] {escape(log.get('source') or '-')} [dim]({log.get('lines', 0)} " \
             f"{tr('explain_lines')} · {tr('explain_facts')}: {escape(str(facts_text))}"
    subject = doc.get("subject")
    if subject:
        where = tr("log_line", n=subject["line"]) if subject.get("line") is not None else subject["source"]
        header += f" · {tr('explain_launch')}: {escape(subject['command'])} ({escape(where)})"
    return header + ")[/]"


def is_problem(f: Dict[str, Any]) -> bool:
    """What `--quiet` keeps: errors and warnings (notes and harmless lines are not problems)."""
    return f["severity"] != "info" and f["category"] != "benign_warning"


def render_explain(doc: Dict[str, Any], quiet: bool = False) -> None:
    """Print the (redacted) explain document. ``quiet``: only problems — the failing findings, the
    unexplained failure, couldn't-check — and nothing at all for a log without a failure."""
    console = make_console()
    m = marks()
    findings = doc.get("findings", [])
    verdict = doc["verdict"]
    if not quiet:
        console.print(_header(doc), soft_wrap=True)
    if findings and (not quiet or is_problem(findings[0])):
        _render_finding(console, findings[0], m)
    for f in findings[1:]:
        if is_problem(f):
            _render_finding(console, f, m)
    for f in findings[1:] if not quiet else []:
        if not is_problem(f):
            tag = tr("explain_harmless") if f["category"] == "benign_warning" else f["category"]
            console.print(f"[{STYLES[f['severity']]}]{m[f['severity']]} {f['rule']}[/] {escape(f['title'])} "
                          f"[dim]({escape(tag)})[/]", soft_wrap=True)
    for u in doc.get("unchecked", []):
        needs = f"{tr('needs')} {', '.join(u['missing'])}: {'; '.join(u['reasons'])}"
        console.print(f"[{STYLES['unknown']}]{m['unknown']} {u['rule']}[/] {escape(u['title'])} "
                      f"[dim]({tr('explain_couldnt')}: {escape(needs)})[/]", soft_wrap=True)
    log = doc.get("log_facts", {})
    if verdict == "unexplained":
        console.print(f"[{STYLES['unknown']}]{m['unknown']}[/] [bold]{tr('explain_unexplained')}[/]")
        console.print(f"  {tr('explain_suspicious')}")
        for s in doc["unexplained"]["suspicious"]:
            console.print(f"  {s['line']:>6}  {escape(s['text'])}", soft_wrap=True)
        console.print(f"  {tr('explain_attach')}")
    elif not quiet and not log.get("log.failure") and not any(is_problem(f) for f in findings):
        console.print(f"[{STYLES['ok']}]{m['ok']}[/] {tr('explain_no_failure')}")
    if quiet:
        return
    known = [(tr(label) if label.startswith("explain_") else label, log[name])
             for name, label in FACT_SUMMARY if log.get(name)]
    gpus = [f"GPU {k.split('.')[2]}: {v}" for k, v in sorted(log.items()) if k.startswith("log.gpu.") and k.endswith(".name")]
    if known or gpus:
        console.print(f"[dim]{tr('explain_read_from_log')}: " + escape(", ".join([f"{a} {b}" for a, b in known] + gpus))
                      + "[/]", soft_wrap=True)
    hidden = doc.get("hidden")
    if hidden:
        console.print(f"[dim]{tr('explain_hidden', n=hidden['benign'])}[/]")
    ignored = doc.get("ignored")
    if ignored:
        console.print(f"[dim]{tr('explain_ignored', n=len(ignored))}[/]")
