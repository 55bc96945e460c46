"""The README walkthrough cannot drift: every `$ lmdoctor …` block of its section is run again and
must print exactly the pasted output and exit code (same settings as when it was pasted:
NO_COLOR=1, COLUMNS=100, the repository root as the working directory, no user config)."""
from __future__ import annotations

import re
import shlex

import pytest

from conftest import REPO, lmdoctor

README = REPO / "README.md"
BLOCK = re.compile(r"```console\n\$ (lmdoctor .*?)\n(.*?)\$ echo \$\?\n(\d+)\n```", re.S)


def walkthrough_blocks():
    text = README.read_text(encoding="utf-8")
    section = text.split("<!-- section: walkthrough -->", 1)[1].split("<!-- section:", 1)[0]
    return [(m.group(1), m.group(2), int(m.group(3))) for m in BLOCK.finditer(section)]


BLOCKS = walkthrough_blocks()


def test_the_walkthrough_has_the_seed_scenarios_in_both_languages():
    commands = [c for c, _, _ in BLOCKS]
    assert any(c.startswith("lmdoctor check ") and "--gpu-slice" in c and "internlm2_5-7b-chat" in c for c in commands)
    assert any("seed-000-internlm2_5-7b-chat-turbomind.log" in c and "--lang zh" not in c for c in commands)
    assert any("seed-000-internlm2_5-7b-chat-turbomind.log" in c and "--lang zh" in c for c in commands)
    assert any("port_in_use" in c for c in commands)


@pytest.mark.parametrize("command,output,code", BLOCKS, ids=[c[:60] for c, _, _ in BLOCKS])
def test_pasted_output_still_matches(tmp_path, command, output, code):
    r = lmdoctor(*shlex.split(command)[1:], env={"NO_COLOR": "1", "COLUMNS": "100", "LMDOCTOR_LANG": "en",
                                                  "XDG_CONFIG_HOME": str(tmp_path)})
    assert r.err == "", r.err
    assert r.out == output, f"README walkthrough output of `{command}` changed: check it, then python tools/paste_walkthrough.py"
    assert r.code == code
