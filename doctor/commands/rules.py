"""`lmdoctor rules list|show ID`: the rule catalogue and each rule's documentation."""
from __future__ import annotations

import sys
from typing import List, Tuple

import click

from doctor import exitcodes
from doctor.commands.common import complete_rules, fail_usage, input_errors, json_option, lang_option

HELP_EPILOG = """\b
Examples:
  lmdoctor rules list                        # every rule: ID, severity, kind, category, title
  lmdoctor rules list | grep -i inotify      # the Streamlit "inotify watch limit reached" rule
  lmdoctor rules show GPU001                 # what happened / why / how to confirm / how to fix
  lmdoctor rules show GPU001 --lang zh       # the same page in Chinese
  lmdoctor rules list --json                 # the catalogue for other tools
"""


@click.group("rules", epilog=HELP_EPILOG)
def group() -> None:
    """List rules or show one rule's documentation."""


def _rule_json(rule) -> dict:
    return {"id": rule.id, "name": rule.name, "category": rule.category, "severity": rule.severity.value,
            "area": rule.area, "kind": "log" if rule.is_log_rule else "environment", "title": rule.title.get(),
            "explanation": rule.explanation.get(), "references": rule.references,
            "docs": {k: v.get() for k, v in rule.docs.items()},
            "fixes": [{"summary": f.summary.get(), "command": f.command, "safety": f.safety.value} for f in rule.fixes],
            "path": rule.path}


@group.command("list", epilog=HELP_EPILOG)
@json_option
@lang_option
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


def doc_sections(rule) -> List[Tuple[str, str]]:
    """The four sections of a rule page, in the current language, every one always present:
    a rule without a `docs` entry falls back to its explanation (what/why), to the facts it reads
    (confirm) and to its fixes (fix), so no page has a hole."""
    from doctor.i18n import tr
    docs = {k: v.get().strip() for k, v in rule.docs.items()}
    explanation = rule.explanation.get().strip()
    what = docs.get("what") or rule.title.get()
    why = docs.get("why") or explanation
    facts = sorted({n for c in (rule.when, rule.applies) if c is not None for n in c.fact_names()} | set(rule.evidence))
    confirm = docs.get("confirm") or tr("doc_confirm_default", facts=" ".join(facts) or "", rule=rule.id)
    fixes = []
    for fix in rule.fixes:
        fixes.append("- " + tr("fix_with_safety", summary=fix.summary.get(), safety=tr("safety_" + fix.safety.value)))
        if fix.command:
            fixes.append(f"    $ {fix.command}")
    fix_text = "\n".join(([docs["fix"]] if docs.get("fix") else []) + fixes)
    return [(tr("doc_what"), what), (tr("doc_why"), why), (tr("doc_confirm"), confirm),
            (tr("doc_fix"), fix_text)]


@group.command("show", epilog=HELP_EPILOG)
@click.argument("rule_id", shell_complete=complete_rules)
@json_option
@lang_option
@input_errors
def show_rule(rule_id: str, as_json: bool) -> None:
    """Documentation of one rule (by ID or name): what happened, why, how to confirm, how to fix."""
    from doctor.i18n import tr
    from doctor.ruleset import load_rules
    rule = load_rules().get(rule_id)
    if rule is None:
        fail_usage(tr("err_no_rule", rule=rule_id))
    if as_json:
        from doctor.render import print_json
        print_json(_rule_json(rule))
        return
    from rich.markup import escape
    from doctor.render.console import make_console
    console = make_console()
    console.print(f"[bold]{rule.id}[/] {rule.name}  "
                  f"[dim]{tr('sev_' + rule.severity.value)} · {rule.category} · {tr('area_' + rule.area)}[/]")
    console.print(f"[bold]{escape(rule.title.get())}[/]")
    explanation = rule.explanation.get().strip()
    if explanation not in (rule.docs.get("why").get().strip() if "why" in rule.docs else "", ""):
        console.print(escape(explanation))
    for title, body in doc_sections(rule):
        console.print(f"\n[bold]{title}[/]")
        console.print(escape(body), soft_wrap=True)
    if rule.references:
        console.print(f"\n[dim]{tr('references')}: {escape(', '.join(rule.references))}[/]")
    sys.exit(exitcodes.OK)
