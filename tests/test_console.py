"""Colour and progress only on a terminal: real child processes on a pseudo-terminal and on pipes."""
from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys

import pytest

from conftest import REPO, lmdoctor

NO_GPU = str(REPO / "fixtures" / "facts" / "cpu-no-gpu.json")
SGR = re.compile(r"\x1b\[([0-9;]*)m")
COLOUR_PARAMS = {str(n) for n in [*range(30, 39), *range(40, 49), *range(90, 98), *range(100, 108)]}


def on_tty(argv, env=None, timeout=60.0) -> str:
    """Run argv with stdin/stdout/stderr on a pty (what a person's terminal is); return what it drew."""
    master, slave = pty.openpty()
    full_env = dict(os.environ, TERM="xterm-256color", COLUMNS="100", LINES="40", LMDOCTOR_LANG="en")
    full_env.pop("NO_COLOR", None)
    full_env.update(env or {})
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=full_env, cwd=str(REPO), close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            proc.kill()
            raise AssertionError("child on the pty timed out")
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


def colour_codes(text: str):
    return [p for params in SGR.findall(text) for p in params.split(";") if p in COLOUR_PARAMS]


def test_colour_on_a_terminal():
    out = on_tty([sys.executable, "-m", "doctor", "check", "--facts", NO_GPU])
    assert "GPU001" in out and colour_codes(out), "expected colours on a terminal"


def test_no_colour_with_NO_COLOR_even_on_a_terminal():
    out = on_tty([sys.executable, "-m", "doctor", "check", "--facts", NO_GPU], env={"NO_COLOR": "1"})
    assert "GPU001" in out and colour_codes(out) == []


def test_no_escape_codes_at_all_on_a_pipe():
    r = lmdoctor("check", "--facts", NO_GPU, env={"TERM": "xterm-256color"})
    assert "GPU001" in r.out and "\x1b" not in r.out and "\x1b" not in r.err


STATUS_SCRIPT = ("import time; from doctor.render.console import status\n"
                 "with status('Scanning conda envs'):\n    time.sleep(0.6)\nprint('done')\n")


def test_status_line_on_a_terminal():
    out = on_tty([sys.executable, "-c", STATUS_SCRIPT])
    assert "Scanning conda envs" in out and "done" in out


def test_status_line_is_silent_on_pipes():
    proc = subprocess.run([sys.executable, "-c", STATUS_SCRIPT], capture_output=True, text=True, cwd=str(REPO),
                          env=dict(os.environ, TERM="xterm-256color"), timeout=60)
    assert proc.stdout == "done\n" and proc.stderr == ""


@pytest.mark.parametrize("term", ["dumb"])
def test_status_line_is_silent_on_a_dumb_terminal(term):
    out = on_tty([sys.executable, "-c", STATUS_SCRIPT], env={"TERM": term})
    assert "Scanning conda envs" not in out and "done" in out


def test_live_check_shows_progress_only_on_a_terminal():
    out = on_tty([sys.executable, "-m", "doctor", "check"])
    assert "Looking at this machine" in out
    piped = lmdoctor("check")
    assert "Looking at this machine" not in piped.out + piped.err
