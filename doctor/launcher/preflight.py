"""What `run` does before launching (the `check` pre-flight on the planned command) and the documents it prints."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from doctor import __version__, exitcodes
from doctor.command import Command, parse
from doctor.model import SCHEMA_VERSION, Safety, Severity


def _check(argv: List[str], facts_file: Optional[str] = None, rules: Optional[List] = None):
    from doctor.engine import check_report
    from doctor.gather import Sources, gather
    from doctor.ruleset import load_rules
    facts, planned = gather(Sources(planned=argv, facts_file=facts_file))
    rules = load_rules(kind="env").env_rules() if rules is None else rules
    return check_report(rules, facts, planned), planned, facts


def _fit_changes(facts) -> Dict[str, str]:
    """The memory model's searched change when it predicts the launch fits only with it."""
    fit = facts.value("fit.report") or {}
    if fit.get("verdict") != "fits_with_changes":
        return {}
    return dict((fit.get("suggestion") or {}).get("changes") or {})


def prepare(argv: List[str], apply: bool, say: Callable[[str], None], facts_file: Optional[str] = None,
            rules: Optional[List] = None) -> Tuple[Command, Dict[str, str], Dict[str, Any]]:
    """Run the pre-flight; with ``apply``, apply automatic fixes of its errors (re-checking after each).

    ``facts_file``: judge a saved snapshot instead of this machine (planning with --dry-run);
    ``rules``: the environment rules left by --select/--ignore and the config files."""
    env: Dict[str, str] = {}
    applied: List[dict] = []

    def _check_here(args: List[str]):
        return _check(args, facts_file, rules)
    report, planned, facts = _check_here(argv)
    changes = _fit_changes(facts) if apply else {}
    if changes:
        # Applied onto the command as written, so launchers like `python3 -m lmdeploy` are kept.
        for flag, value in changes.items():
            planned = planned.with_flag(flag, value)
        diff = [f"{flag} → {value}" for flag, value in changes.items()]
        say("pre-flight fit: the launch as given runs out of GPU memory; applying the predicted change: "
            + "; ".join(diff))
        applied.append({"rule": "fit", "summary": "memory model: the cheapest change that fits", "safety": "auto",
                        "diff": diff, "argv": list(planned.argv)})
        report, planned, facts = _check_here(list(planned.argv))
    for _round in range(3):
        if not apply:
            break
        candidates = [(f, fix) for f in report.findings if f.severity is Severity.ERROR
                      for fix in f.fixes if fix.safety is Safety.AUTO and fix.argv and fix.argv != planned.argv]
        if not candidates:
            break
        finding, fix = candidates[0]
        say(f"pre-flight fix for {finding.rule} ({finding.title}): " + "; ".join(fix.diff or [fix.summary]))
        applied.append({"rule": finding.rule, **fix.to_json()})
        env.update(fix.env or {})
        report, planned, facts = _check_here(list(fix.argv))
    errors = [f for f in report.findings if f.severity is Severity.ERROR]
    warnings = [f for f in report.findings if f.severity is Severity.WARNING]
    say(f"pre-flight: {len(errors)} error(s), {len(warnings)} warning(s)" +
        ("" if errors or apply else "") + "".join(f"\n  ✗ {f.rule} {f.title}" for f in errors))
    if errors and not apply:
        say("launching as given (use --apply-preflight to apply the automatic fixes first)")
    pre = {"findings": [f.to_json() for f in report.findings], "applied": applied}
    return planned, env, pre


def _envelope(verdict: str, exit_code: int) -> Dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "tool": {"name": "lmdoctor", "version": __version__},
            "command": "run", "verdict": verdict, "exit_code": exit_code}


def dry_run_document(planned: Command, env: Dict[str, str], pre: Dict[str, Any]) -> Dict[str, Any]:
    doc = _envelope("dry_run", exitcodes.OK)
    prefix = " ".join(f"{k}={v}" for k, v in env.items())
    doc.update({"would_run": f"{prefix} {planned.shell()}".strip(), "argv": planned.argv, "env": env,
                "preflight": pre, "findings": pre["findings"], "attempts": []})
    return doc


def transcript_document(transcript, pre: Dict[str, Any], log_dir: str) -> Dict[str, Any]:
    from doctor.launcher.loop import NOT_FIXABLE, VERIFIED
    code = {VERIFIED: exitcodes.OK, NOT_FIXABLE: exitcodes.NOT_FIXABLE}.get(transcript.verdict, exitcodes.ERRORS)
    doc = _envelope(transcript.verdict, code)
    doc.update({
        "reason": transcript.reason,
        "log_dir": log_dir,
        "preflight": pre,
        "attempts": [a.to_json() for a in transcript.attempts],
        "final_command": transcript.final_command,
        "findings": [f.to_json() for f in transcript.findings],
        "manual_fixes": [f.to_json() for f in transcript.manual_fixes],
    })
    return doc
