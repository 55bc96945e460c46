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
from doctor.commands.common import fail_usage, input_errors, json_option

HELP_EPILOG = """\b
Examples:
  lmdoctor run -- lmdeploy serve api_server /root/models/internlm2_5-1_8b-chat --cache-max-entry-count 0.9
  lmdoctor run --verify-only --json -- lmdeploy serve api_server MODEL --server-port 23333
  lmdoctor run --dry-run -- streamlit run app.py --server.port 6006
  lmdoctor run --apply-preflight -- lmdeploy serve gradio /share/new_models/OpenGVLab/InternVL2-2B
  lmdoctor run -- streamlit run /root/demo/Tutorial/tools/streamlit_demo.py --server.port 6006
                                    (port taken → another free port; inotify limit → --server.fileWatcherType none)

\b
What it may change by itself: only the launched command's flags and environment (e.g.
--cache-max-entry-count 0.8 → 0.2, --server-port 23333 → 23334). pip installs and other changes
to your environment need --allow-env-changes; root-only fixes are only printed.

\b
Exit codes: 0 verified (or the verified server's own exit code in the foreground), 1 not verified,
2 usage error, 6 cause known but not automatically fixable, 130 stopped with Ctrl-C.
"""


def _say(msg: str) -> None:
    click.echo(f"lmdoctor: {msg}", err=True)


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
@click.argument("argv", nargs=-1, type=click.UNPROCESSED, required=True)
@input_errors
def command(as_json: bool, attempts: int, timeout_s: Optional[float], budget_s: float, verify_only: bool,
            dry_run: bool, apply_preflight: bool, allow_env_changes: bool, no_chat_check: bool,
            log_dir: Optional[str], quiet_child: bool, argv: Tuple[str, ...]) -> None:
    """Launch a command; on failure explain it, apply the fix and re-run it to verify."""
    from doctor.command import parse
    from doctor.launcher import preflight
    from doctor.launcher.loop import NOT_FIXABLE, VERIFIED, Options, run_loop, serve_foreground

    args: List[str] = list(argv)
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        fail_usage(tr("run_nothing_to_run"))
    planned, env, pre = preflight.prepare(args, apply=apply_preflight, say=_say)
    if dry_run:
        doc = preflight.dry_run_document(planned, env, pre)
        _emit(doc, as_json)
        sys.exit(exitcodes.OK)
    log_dir = log_dir or tempfile.mkdtemp(prefix="lmdoctor-run-")
    os.makedirs(log_dir, exist_ok=True)
    stop = [False]

    def on_signal(signum, _frame) -> None:
        stop[0] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    opts = Options(attempts=attempts, timeout_s=timeout_s, budget_s=budget_s, verify_only=verify_only,
                   allow_env_changes=allow_env_changes, chat_check=not no_chat_check, log_dir=log_dir,
                   echo=None if quiet_child else sys.stderr, say=_say)
    from doctor.launcher.diagnose import explain_attempt
    transcript = None
    try:
        transcript = run_loop(planned, env, explain_attempt, opts, stop)
        doc = preflight.transcript_document(transcript, pre, log_dir)
        _emit(doc, as_json)
        if transcript.verdict == VERIFIED and transcript.child is not None:
            _say(tr("run_serving"))
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


def _emit(doc: dict, as_json: bool) -> None:
    if as_json:
        from doctor.render import print_json
        print_json(doc)
    else:
        from doctor.render.run_view import render_run
        render_run(doc)
