"""Help that teaches (real examples from the tutorial scenarios, all of them valid) and shell completion."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

import click
import pytest

from doctor.cli import COMMANDS, cli

COMMAND_PATHS = [[], ["check"], ["facts"], ["report"], ["rules"], ["rules", "list"], ["rules", "show"], ["completion"], ["envs"], ["explain"], ["run"]]
# the seed scenarios: internlm2_5-7b-chat on an 8 GiB slice, InternVL2-26B AWQ on 24 GiB, the gradio
# VLM demo fixed by `conda activate icamp3_demo`, the Streamlit inotify limit
SEED_MARKERS = ("internlm2_5-7b-chat", "InternVL2-26B", "icamp3_demo", "inotify", "streamlit")


def test_every_registered_command_is_covered():
    assert {p[0] for p in COMMAND_PATHS if p} == set(COMMANDS)


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "lmdoctor")
def test_help_has_examples(run_lmdoctor, path):
    r = run_lmdoctor(*path, "--help")
    assert r.code == 0, r.err
    assert "Examples:" in r.out
    if path != ["completion"]:
        assert any(m in r.out for m in SEED_MARKERS), f"no tutorial scenario in `{' '.join(path)} --help`"


def test_check_help_names_every_seed_scenario(run_lmdoctor):
    out = run_lmdoctor("check", "--help").out
    for marker in SEED_MARKERS:
        assert marker in out


def _examples(help_text: str):
    """Example command lines of a help page (backslash continuations joined, comments dropped)."""
    text = re.sub(r"\\\n\s*", " ", help_text.split("Examples:", 1)[1])
    for line in text.splitlines():
        line = line.split("  #", 1)[0].strip()
        m = re.search(r"(?:^|\$\(|\| |; )(lmdoctor\s.*?)(?:\)\"|$| \||>)", line)
        if m:
            yield m.group(1).strip()


def _resolve(argv):
    """Walk argv through the real click tree; return the options each level accepts and what is left."""
    ctx_cmd = cli
    known = {o for p in cli.params for o in p.opts + p.secondary_opts} | {"--help", "-h", "--version"}
    rest = list(argv)
    while rest and isinstance(ctx_cmd, click.Group):
        head = rest.pop(0)
        if head.startswith("-"):
            assert head in known, f"unknown global option {head}"
            if head == "--lang":
                rest.pop(0)
            continue
        ctx_cmd = ctx_cmd.get_command(click.Context(ctx_cmd), head)
        assert ctx_cmd is not None, f"unknown command {head}"
        known = {o for p in ctx_cmd.params for o in p.opts + p.secondary_opts} | {"--help", "-h"}
    return known, rest


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "lmdoctor")
def test_examples_use_real_commands_and_options(run_lmdoctor, path):
    examples = list(_examples(run_lmdoctor(*path, "--help").out))
    assert examples, "no `lmdoctor …` example found"
    for example in examples:
        argv = shlex.split(example)[1:]
        known, rest = _resolve(argv)
        own = rest[:rest.index("--")] if "--" in rest else rest
        for token in own:
            if token.startswith("-") and token != "-":
                assert token.split("=", 1)[0] in known, f"`{example}`: {token} is not an option"


# -- completion --------------------------------------------------------------------------------
@pytest.mark.parametrize("shell,marker", [("bash", "complete -o nosort -F _lmdoctor_completion lmdoctor"),
                                          ("zsh", "#compdef lmdoctor"), ("fish", "complete --no-files --command lmdoctor")])
def test_completion_script_is_printed(run_lmdoctor, shell, marker):
    r = run_lmdoctor("completion", shell)
    assert r.code == 0 and marker in r.out and "_LMDOCTOR_COMPLETE" in r.out


def test_completion_via_click_env_var_is_the_same_script(run_lmdoctor):
    assert run_lmdoctor(env={"_LMDOCTOR_COMPLETE": "bash_source"}).out.strip() == \
        run_lmdoctor("completion", "bash").out.strip()


def test_unknown_shell_is_a_usage_error(run_lmdoctor):
    r = run_lmdoctor("completion", "tcsh")
    assert r.code == 2 and "tcsh" in r.err


@pytest.mark.parametrize("words,cword,expected", [
    ("lmdoctor ch", 1, "plain,check"),
    ("lmdoctor re", 1, "plain,report"),
    ("lmdoctor check --fa", 2, "plain,--facts"),
    ("lmdoctor rules show GP", 3, "plain,GPU001"),
    ("lmdoctor check --ignore gp", 3, "plain,GPU001"),
])
def test_completion_answers(run_lmdoctor, words, cword, expected):
    r = run_lmdoctor(env={"_LMDOCTOR_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)})
    assert expected in r.out.splitlines()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_script_really_completes(run_lmdoctor, tmp_path):
    """Source the generated script in a real bash and ask its completion function, as TAB would."""
    script = tmp_path / "lmdoctor.bash"
    script.write_text(run_lmdoctor("completion", "bash").out)
    shim = tmp_path / "lmdoctor"
    import sys
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m doctor \"$@\"\n")
    shim.chmod(0o755)
    probe = (f"source {shlex.quote(str(script))}; COMP_WORDS=(lmdoctor rules li); COMP_CWORD=2; "
             f"_lmdoctor_completion lmdoctor; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["list"]


@pytest.mark.parametrize("path,markers", [
    (["explain"], ("internlm2_5-7b-chat", "MEM101", "23333", "NET101")),      # the seed OOM, the taken port
    (["run"], ("internlm2_5-7b-chat", "--server-port 23334", "streamlit", "inotify")),
    (["envs"], ("icamp3_demo", "internlm-xcomposer2-vl-1_8b", "InternVL2-2B")),
    (["report"], ("internlm2_5-7b-chat", "InternVL2-26B", "Aborted (core dumped)", "inotify")),
])
def test_help_of_the_diagnosing_commands_shows_their_seed_scenarios(run_lmdoctor, path, markers):
    out = run_lmdoctor(*path, "--help").out
    for marker in markers:
        assert marker in out, f"`{' '.join(path)} --help` lacks {marker}"


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "lmdoctor")
def test_rule_ids_in_help_exist(run_lmdoctor, path):
    from doctor.ruleset import load_rules
    known = {r.id for r in load_rules().rules}
    mentioned = set(re.findall(r"\b(?:PY|GPU|MEM|HOST|NET|CMD|MODEL|RUN)\d{3}\b", run_lmdoctor(*path, "--help").out))
    assert mentioned <= known, f"unknown rule IDs in help: {sorted(mentioned - known)}"
