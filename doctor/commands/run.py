"""`lmdoctor run -- CMD…`: launch, diagnose a failure, apply the fix, re-run, verify."""
from __future__ import annotations

import os
import signal
import sys
import tempfile
from typing import List, Optional, Tuple

import click

from doctor.i18n import tr

from doctor import exitcodes
from doctor.commands.common import (fail_usage, input_errors, json_option, lang_option, quiet_option,
                                    redact_option, select_rules, selection_options)

HELP_EPILOG = """\b
Examples:
  # the seed crash (internlm2_5-7b-chat, TurboMind out of memory on a small slice): plan it first
  lmdoctor run --dry-run --facts facts.json -- lmdeploy chat /root/models/internlm2_5-7b-chat
  # or let the memory model's change (--cache-max-entry-count, --session-len) be applied first
  lmdoctor run --apply-preflight -- lmdeploy serve api_server /root/models/internlm2_5-7b-chat
\b
  # api_server on a taken port: explained as NET101, relaunched with --server-port 23334, verified
  lmdoctor run --verify-only -- lmdeploy serve api_server /root/models/internlm2_5-1_8b-chat --server-port 23333
\b
  # the Streamlit demo on a shared container: port taken → a free port; inotify limit →
  # --server.fileWatcherType none
  lmdoctor run -- streamlit run /root/demo/Tutorial/tools/streamlit_demo.py --server.port 6006
\b
  lmdoctor run --json --verify-only -- lmdeploy serve api_server MODEL   # scripts (secrets redacted)
  lmdoctor run --quiet --ignore NET002 -- lmdeploy serve gradio /share/new_models/OpenGVLab/InternVL2-2B

\b
What it may change by itself: only the launched command's flags and environment (e.g.
--cache-max-entry-count 0.8 → 0.2, --server-port 23333 → 23334). pip installs and other changes
to your environment need --allow-env-changes; root-only fixes are only printed.

\b
Exit codes: 0 verified (or the verified server's own exit code in the foreground), 1 not verified,
2 usage error, 6 cause known but not automatically fixable, 130 stopped with Ctrl-C.
"""


class _CurrentStderr:
    """The child's mirrored output goes to whatever ``sys.stderr`` is at the time of writing, so that
    it scrolls above the status line (rich redirects sys.stderr while the line is shown)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@click.command("run", epilog=HELP_EPILOG, context_settings={"ignore_unknown_options": True})
@json_option
@click.option("--attempts", default=3, show_default=True, type=click.IntRange(1, 10), help="Launches at most.")
@click.option("--timeout", "timeout_s", type=float, help="Seconds one launch may take to become ready "
              "(default 900 for lmdeploy, 120 otherwise).")
@click.option("--budget", "budget_s", default=1800.0, show_default=True, type=float, help="Seconds for all attempts.")
@click.option("--verify-only", is_flag=True, help="Stop the server once it is verified.")
@click.option("--dry-run", is_flag=True, help="Print the pre-flight and what would run; launch nothing.")
@click.option("--apply-preflight", is_flag=True, help="Apply automatic fixes of pre-flight errors before the first launch.")
@click.option("--allow-env-changes", is_flag=True, help="Allow fixes that change your environment (pip install …).")
@click.option("--no-chat-check", is_flag=True, help="Verify lmdeploy's api_server by /v1/models only.")
@click.option("--log-dir", type=click.Path(file_okay=False), help="Where attempt logs go (default: a new temp dir).")
@click.option("--quiet-child", is_flag=True, help="Do not mirror the command's output.")
@click.option("--facts", "facts_file", metavar="FILE",
              help="Pre-flight and diagnose with a saved snapshot (`lmdoctor facts --json`) instead of this "
                   "machine; for planning with --dry-run.")
@quiet_option
@selection_options
@redact_option
@lang_option
@click.argument("argv", nargs=-1, type=click.UNPROCESSED, required=True)
@input_errors
def command(as_json: bool, attempts: int, timeout_s: Optional[float], budget_s: float, verify_only: bool,
            dry_run: bool, apply_preflight: bool, allow_env_changes: bool, no_chat_check: bool,
            log_dir: Optional[str], quiet_child: bool, facts_file: Optional[str], quiet: bool,
            select: Tuple[str, ...], ignore: Tuple[str, ...], no_redact: bool, argv: Tuple[str, ...]) -> None:
    """Launch a command; on failure explain it, apply the fix and re-run it to verify."""
    from doctor.launcher import preflight
    from doctor.launcher.loop import NOT_FIXABLE, VERIFIED, Options, run_loop, serve_foreground
    from doctor.redact import Redactor
    from doctor.render.console import status
    from doctor.ruleset import load_rules

    args: List[str] = list(argv)
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        fail_usage(tr("run_nothing_to_run"))
    redactor = Redactor(enabled=not no_redact)
    redactor.learn(args)

    def say(msg: str) -> None:  # lmdoctor's own progress lines: stderr, redacted, none with --quiet/--dry-run
        if not (quiet or dry_run):
            click.echo(f"lmdoctor: {redactor.text(msg)}", err=True)

    catalogue = load_rules()
    env_rules, ignored = select_rules(catalogue.env_rules(), select, ignore, quiet, known=catalogue.rules)
    log_rules, ignored_log = select_rules(catalogue.log_rules(), select, ignore, True, known=catalogue.rules)
    planned, env, pre = preflight.prepare(args, apply=apply_preflight, say=say, facts_file=facts_file, rules=env_rules)
    if dry_run:
        doc = preflight.dry_run_document(planned, env, pre)
        doc["ignored"] = ignored + ignored_log
        _emit(redactor.data(doc), as_json, quiet)
        sys.exit(exitcodes.OK)
    log_dir = log_dir or tempfile.mkdtemp(prefix="lmdoctor-run-")
    os.makedirs(log_dir, exist_ok=True)
    stop = [False]

    def on_signal(signum, _frame) -> None:
        stop[0] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    opts = Options(attempts=attempts, timeout_s=timeout_s, budget_s=budget_s, verify_only=verify_only,
                   allow_env_changes=allow_env_changes, chat_check=not no_chat_check, log_dir=log_dir,
                   echo=None if quiet_child else _CurrentStderr(), say=say,
                   waiting=lambda n, program: status(tr("status_waiting", n=n, program=program)))
    from doctor.launcher.diagnose import explainer
    transcript = None
    try:
        transcript = run_loop(planned, env, explainer(facts_file, log_rules), opts, stop)
        doc = preflight.transcript_document(transcript, pre, log_dir)
        doc["ignored"] = ignored + ignored_log
        _emit(redactor.data(doc), as_json, quiet)
        if transcript.verdict == VERIFIED and transcript.child is not None:
            say(tr("run_serving"))
            code = serve_foreground(transcript.child, stop)
            sys.exit(code)
        if stop[0]:
            sys.exit(130)
        sys.exit({VERIFIED: exitcodes.OK, NOT_FIXABLE: exitcodes.NOT_FIXABLE}.get(transcript.verdict, exitcodes.ERRORS))
    finally:
        if transcript is not None and transcript.child is not None:
            transcript.child.kill_tree()
        for s, handler in old.items():
            signal.signal(s, handler)


def _emit(doc: dict, as_json: bool, quiet: bool) -> None:
    if as_json:
        from doctor.render import print_json
        print_json(doc)
    else:
        from doctor.render.run_view import render_run
        render_run(doc, quiet=quiet)
