"""Shared test helpers: run lmdoctor as a real child process, the way users and scripts do."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


class Run:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self):
        return json.loads(self.out)


def lmdoctor(*args: str, env: Optional[dict] = None, input: Optional[bytes] = None, cwd: Optional[str] = None,
             timeout: float = 60) -> Run:
    full_env = dict(os.environ)
    full_env.pop("VIRTUAL_ENV", None)
    full_env.setdefault("LMDOCTOR_LANG", "en")
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "doctor", *args], capture_output=True, env=full_env,
                          input=input, cwd=cwd or str(REPO), timeout=timeout)
    return Run(subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                                           proc.stderr.decode("utf-8", "replace")))


@pytest.fixture
def run_lmdoctor():
    return lmdoctor
