"""Re-run every `$ lmdoctor …` block of the README walkthrough and paste its current output.

`tests/test_readme_walkthrough.py` fails when a change alters what a walkthrough command prints;
after checking the new output is right, run ``python tools/paste_walkthrough.py`` from the repository
root and review the README diff. Same settings as the test: NO_COLOR=1, COLUMNS=100, English by
default, no user config.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MARK = "<!-- section: walkthrough -->"
BLOCK = re.compile(r"(```console\n\$ )(lmdoctor .*?)\n(.*?)(\$ echo \$\?\n)(\d+)(\n```)", re.S)


def run(command: str, config_home: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update({"NO_COLOR": "1", "COLUMNS": "100", "LMDOCTOR_LANG": "en", "XDG_CONFIG_HOME": config_home})
    return subprocess.run([sys.executable, "-m", "doctor", *shlex.split(command)[1:]], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def main() -> int:
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(MARK, 1)
    section, sep, tail = rest.partition("<!-- section:")
    with tempfile.TemporaryDirectory() as config_home:
        def repaste(m: re.Match) -> str:
            proc = run(m.group(2), config_home)
            if proc.stderr:
                sys.stderr.write(f"{m.group(2)}: stderr: {proc.stderr}")
            return f"{m.group(1)}{m.group(2)}\n{proc.stdout}{m.group(4)}{proc.returncode}{m.group(6)}"
        section, n = BLOCK.subn(repaste, section)
    README.write_text(head + MARK + section + sep + tail, encoding="utf-8")
    print(f"re-pasted {n} walkthrough block(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
