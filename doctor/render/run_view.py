"""Human output of `lmdoctor run`: each attempt with its outcome, cause and fix; the final verdict."""
from __future__ import annotations

from typing import Any, Dict, List

from rich.markup import escape

from doctor.i18n import tr
from doctor.render.console import STYLES, make_console, marks


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
        console.print(f"  [{STYLES[mark]}]{m[mark]}[/] {tr('run_attempt')} {a['attempt']}: {kind} after {out.get('seconds', 0):.1f}s"
                      + (f" ({escape(str(detail))})" if detail else ""))
        console.print(f"      $ {escape(a['command'])}", soft_wrap=True)
        if a.get("finding"):
            f = a["finding"]
            console.print(f"      {tr('run_cause')}: {f['rule']} [{f['category']}] {escape(f['title'])}")
        if a.get("fix"):
            console.print(f"      {tr('fix')}: {escape(a['fix']['summary'])}")
            for d in a["fix"].get("diff") or []:
                console.print(f"        [cyan]{escape(d)}[/]")
        console.print(f"      [dim]log: {escape(a['log'])}[/]")
    if verdict == "verified" and doc.get("final_command"):
        console.print(f"  {tr('run_command_that_works')}: {escape(doc['final_command'])}", soft_wrap=True)
    for fix in doc.get("manual_fixes", []):
        console.print(f"  [bold]{tr('fix')}:[/] {escape(fix['summary'])} [dim]({tr('safety_' + fix['safety'])})[/]")
        if fix.get("command"):
            console.print(f"      $ {escape(fix['command'])}", soft_wrap=True)
