"""Human output of `lmdoctor run`: each attempt with its outcome, cause and fix; the final verdict."""
from __future__ import annotations

from typing import Any, Dict, List

from rich.markup import escape

from doctor.i18n import UI, tr
from doctor.render.console import STYLES, make_console, marks, print_hanging


def _problems(doc: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [f for f in doc.get("findings", []) if f["severity"] in ("error", "warning")]


def render_run(doc: Dict[str, Any], quiet: bool = False) -> None:
    """Print the (redacted) run document. ``quiet``: only problems — nothing for a verified launch,
    only the pre-flight's errors and warnings for a dry run, everything for a launch that failed."""
    console = make_console()
    m = marks()
    verdict = doc["verdict"]
    if quiet and verdict in ("verified", "dry_run"):
        for f in _problems(doc) if verdict == "dry_run" else []:
            console.print(f"[{STYLES[f['severity']]}]{m[f['severity']]} {f['rule']}[/] {escape(f['title'])}",
                          soft_wrap=True)
        return
    style = {"verified": "ok", "dry_run": "info", "not_fixable": "warning"}.get(verdict, "error")
    console.print(f"[{STYLES[style]}]{m[style]}[/] [bold]lmdoctor run: {tr('run_verdict_' + verdict)}[/]"
                  + (f" — {escape(doc['reason'])}" if doc.get("reason") else ""))
    for fix in doc.get("preflight", {}).get("applied", []):
        console.print(f"  {tr('run_preflight')} {fix['rule']}: " + escape("; ".join(fix.get("diff") or [fix["summary"]])))
    if verdict == "dry_run":
        console.print(f"  {tr('run_would_run')}: {escape(doc['would_run'])}", soft_wrap=True)
        for f in doc.get("findings", []):
            console.print(f"  [{STYLES[f['severity']]}]{m[f['severity']]} {f['rule']}[/] {escape(f['title'])}",
                          soft_wrap=True)
        return
    for a in doc.get("attempts", []):
        out = a.get("outcome") or {}
        kind = out.get("kind", "?")
        mark = "ok" if kind == "ready" or (kind == "exited" and out.get("code") == 0) else "error"
        detail = out.get("ready_by") or out.get("detail") or (tr('run_exit_code', code=out['code']) if "code" in out else "")
        outcome = tr("run_outcome_" + kind) if "run_outcome_" + kind in UI else kind
        print_hanging(console, f"[{STYLES[mark]}]{m[mark]}[/] "
                      + escape(tr("run_attempt", n=a["attempt"], outcome=outcome, seconds=out.get("seconds", 0)))
                      + (f" ({escape(str(detail))})" if detail else ""), 2, 4)
        console.print(f"      $ {escape(a['command'])}", soft_wrap=True)
        if a.get("finding"):
            f = a["finding"]
            print_hanging(console, f"{tr('run_cause')}: {f['rule']} \\[{f['category']}] {escape(f['title'])}", 6, 2)
        if a.get("fix"):
            print_hanging(console, f"{tr('fix')}: {escape(a['fix']['summary'])}", 6, 2)
            for d in a["fix"].get("diff") or []:
                console.print(f"        [cyan]{escape(d)}[/]")
        console.print(f"      [dim]{tr('run_log')}: {escape(a['log'])}[/]", soft_wrap=True)
    if verdict == "verified" and doc.get("final_command"):
        console.print(f"  {tr('run_command_that_works')}: {escape(doc['final_command'])}", soft_wrap=True)
    for fix in doc.get("manual_fixes", []):
        print_hanging(console, f"[bold]{tr('fix')}:[/] {escape(fix['summary'])} [dim]({tr('safety_' + fix['safety'])})[/]", 2, 2)
        if fix.get("command"):
            console.print(f"      $ {escape(fix['command'])}", soft_wrap=True)
