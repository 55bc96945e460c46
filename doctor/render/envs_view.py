"""Human output of `lmdoctor envs`: one table row per env, best first, then how to use the best one.

Commands are printed on their own unwrapped lines so they can be copied; folders that could not be
examined are listed at the end instead of being skipped silently.
"""
from __future__ import annotations

import sys

from rich.markup import escape
from rich.table import Table

from doctor.envs.survey import Survey
from doctor.envs.texts import UI, text
from doctor.render.console import STYLES, make_console, marks

_STATUS = {"ready": "ok", "warnings": "warning", "unsuitable": "error", "broken": "error"}


def render_envs(result: Survey, verbose: bool = False, quiet: bool = False) -> None:
    """``quiet``: only problems — nothing when a ready env exists; otherwise the one line saying
    none is ready (or none was found) and the folders that could not be examined."""
    # Off a terminal the table keeps its natural width (no wrapped paths or commands in logs and pipes).
    console = make_console(width=None if sys.stdout.isatty() else 400)
    m = marks()
    if quiet:
        best = result.best
        if best is None:
            console.print(f"[{STYLES['error']}]{text(UI, 'none_ready' if result.verdicts else 'none_found')}[/]")
        elif best.verdict != "ready":
            console.print(f"[{STYLES['warning']}]{m['warning']}[/] {text(UI, 'best')}: {escape(best.env.name)} "
                          f"({text(UI, best.verdict)}) — {escape(best.main_reason)}", soft_wrap=True)
        _not_scanned(console, result, m)
        return
    console.print(f"[bold]{text(UI, 'title')}[/] [dim]({text(UI, 'for_job')}: {escape(result.job.describe())})[/]",
                  soft_wrap=True)
    if not result.verdicts:
        console.print(text(UI, "none_found"))
    else:
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        for col in ("", text(UI, "env"), text(UI, "path"), "Python", "lmdeploy", "torch", "transformers", "timm",
                    text(UI, "verdict"), text(UI, "reason")):
            table.add_column(col, overflow="fold")
        for v in result.verdicts:
            e = v.env
            status = _STATUS[v.verdict]
            name = e.name + (f" ({text(UI, 'current')})" if e.active or (e.is_self and not _any_active(result)) else "")
            table.add_row(f"[{STYLES[status]}]{m[status]}[/]", escape(name), escape(e.prefix), e.python_version or "?",
                          *(escape(e.package(p) or "-") for p in ("lmdeploy", "torch", "transformers", "timm")),
                          f"[{STYLES[status]}]{text(UI, v.verdict)}[/]", escape(v.main_reason))
        if sys.stdout.isatty():
            console.print(table)
        else:  # rich pads every cell to the column width; piped output should not end lines in spaces
            with console.capture() as cap:
                console.print(table)
            sys.stdout.write("".join(line.rstrip() + "\n" for line in cap.get().splitlines()))
    if verbose:
        for v in result.verdicts:
            if len(v.reasons) > 1 or v.env.problems:
                console.print(f"[bold]{escape(v.env.name)}[/] [dim]{escape(v.env.prefix)}[/]", soft_wrap=True)
                for r in v.reasons:
                    rules = f" [dim]({', '.join(r.rules)})[/]" if r.rules else ""
                    console.print(f"    [{STYLES[r.severity.value]}]{m[r.severity.value]}[/] {escape(r.text)}{rules}",
                                  soft_wrap=True)
                shown = {r.text for r in v.reasons}
                for p in v.env.problems:
                    if any(p.text in t for t in shown):
                        continue
                    console.print(f"    [dim]- {escape(p.text)}[/]", soft_wrap=True)
    b = result.best
    if b is None:
        if result.verdicts:
            console.print(f"[{STYLES['error']}]{text(UI, 'none_ready')}[/]")
    else:
        console.print(f"[bold]{text(UI, 'best')}:[/] {escape(b.env.name)} ({text(UI, b.verdict)})")
        if b.env.active:
            console.print(f"    {text(UI, 'already_here')}")
        else:
            console.print(f"    {text(UI, 'use_it')}:", soft_wrap=True)
            console.print(f"      $ {escape(b.activate)}", soft_wrap=True)
            if b.run:
                console.print(f"    {text(UI, 'or_run')}:")
                console.print(f"      $ {escape(b.run)}", soft_wrap=True)
    _not_scanned(console, result, m)
    if sys.stdout.isatty():  # the scan time varies from run to run: not in piped output (scripts, snapshots)
        console.print(f"[dim]{text(UI, 'scanned', n=len(result.verdicts), ms=round(result.total_ms))}[/]")


def _not_scanned(console, result: Survey, m) -> None:
    if result.problems:
        console.print(f"[{STYLES['unknown']}]{m['unknown']}[/] {text(UI, 'not_scanned')}:")
        for p in result.problems:
            console.print(f"    {escape(p.text)}", soft_wrap=True)


def _any_active(result: Survey) -> bool:
    return any(v.env.active for v in result.verdicts)
