"""`lmdoctor rules list|show ID`: the rule catalogue and each rule's documentation."""
from __future__ import annotations

import sys

import click

from doctor import exitcodes
from doctor.commands.common import fail_usage, input_errors, json_option

SECTION_TITLES = {
    "what": {"en": "What happened", "zh": "发生了什么"},
    "why": {"en": "Why", "zh": "原因"},
    "confirm": {"en": "How to confirm", "zh": "如何确认"},
    "fix": {"en": "How to fix", "zh": "如何修复"},
}


@click.group("rules")
def group() -> None:
    """List rules or show one rule's documentation."""


def _rule_json(rule) -> dict:
    return {"id": rule.id, "name": rule.name, "category": rule.category, "severity": rule.severity.value,
            "area": rule.area, "kind": "log" if rule.is_log_rule else "environment", "title": rule.title.get(),
            "explanation": rule.explanation.get(), "references": rule.references,
            "docs": {k: v.get() for k, v in rule.docs.items()},
            "fixes": [{"summary": f.summary.get(), "command": f.command, "safety": f.safety.value} for f in rule.fixes],
            "path": rule.path}


@group.command("list")
@json_option
@input_errors
def list_rules(as_json: bool) -> None:
    """Every rule with its ID, severity, category and title."""
    from doctor.ruleset import load_rules
    rules = load_rules().rules
    if as_json:
        from doctor.render import print_json
        print_json({"schema_version": 1, "rules": [_rule_json(r) for r in rules]})
        return
    for r in rules:
        kind = "log" if r.is_log_rule else "env"
        click.echo(f"{r.id:8s} {r.severity.value:8s} {kind:4s} {r.category:32s} {r.title.get()}")


@group.command("show")
@click.argument("rule_id")
@json_option
@input_errors
def show_rule(rule_id: str, as_json: bool) -> None:
    """Documentation of one rule (by ID or name): what happened, why, how to confirm, how to fix."""
    from doctor.i18n import Text
    from doctor.ruleset import load_rules
    rule = load_rules().get(rule_id)
    if rule is None:
        fail_usage(f"no rule {rule_id!r} (see `lmdoctor rules list`)")
    if as_json:
        from doctor.render import print_json
        print_json(_rule_json(rule))
        return
    from rich.markup import escape
    from doctor.render.console import make_console
    console = make_console()
    console.print(f"[bold]{rule.id}[/] {rule.name}  [dim]{rule.severity.value} · {rule.category} · {rule.area}[/]")
    console.print(f"[bold]{escape(rule.title.get())}[/]")
    console.print(escape(rule.explanation.get().strip()))
    for key in ("what", "why", "confirm", "fix"):
        if key in rule.docs:
            console.print(f"\n[bold]{Text(SECTION_TITLES[key]).get()}[/]")
            console.print(escape(rule.docs[key].get().strip()))
    if rule.fixes:
        console.print(f"\n[bold]{Text({'en': 'Fixes', 'zh': '修复方法'}).get()}[/]")
        for fix in rule.fixes:
            console.print(f"  - {escape(fix.summary.get())} [dim]({fix.safety.value})[/]")
            if fix.command:
                console.print(f"      $ {escape(fix.command)}", soft_wrap=True)
    if rule.references:
        console.print(f"\n[dim]References: {', '.join(rule.references)}[/]")
    sys.exit(exitcodes.OK)
