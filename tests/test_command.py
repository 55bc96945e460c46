"""Planned commands: shell splitting, argparse-faithful parsing by version, rewriting, and the facts rules see."""
from __future__ import annotations

import pytest
import yaml

from doctor.command import command_facts, parse, parse_shell, split_shell

from conftest import REPO

TUTORIAL = yaml.safe_load((REPO / "fixtures" / "commands" / "tutorial-commands.yaml").read_text())["commands"]


# -- real tutorial command lines ---------------------------------------------------------------------
@pytest.mark.parametrize("case", TUTORIAL, ids=[c["name"] for c in TUTORIAL])
def test_tutorial_commands(case):
    cmd = parse_shell(case["text"], version=case["version"])
    exp = case["expect"]
    assert cmd.program == exp.get("program", "lmdeploy")
    assert cmd.subcommand == exp["subcommand"]
    if "model" in exp:
        assert cmd.model == exp["model"]
    if "positionals" in exp:
        assert cmd.positionals == exp["positionals"]
    for name, value in (exp.get("flags") or {}).items():
        assert cmd.get_flag(name) == value, name
    if "flags" in exp:
        assert len(cmd.tokens) == len(exp["flags"])
    if "port" in exp:
        assert cmd.port == exp["port"]
    if "bind_host" in exp:
        assert cmd.bind_host == exp["bind_host"]
    for key in ("unknown_flags", "unrecognized_args"):
        if key in exp:
            assert getattr(cmd, key) == exp[key]


# -- shell text ----------------------------------------------------------------------------------------
def test_backslash_newline_joins_words_like_sh():
    assert split_shell("lmdeploy chat \\\n  /m") == [["lmdeploy", "chat", "/m"]]
    assert split_shell("--tp\\\n1") == [["--tp1"]]          # no whitespace after the continuation: one word
    assert split_shell("a\\ b 'c d' \"e \\\"f\\\"\"") == [["a b", "c d", 'e "f"']]


def test_operators_redirections_and_comments():
    text = "cd /root && CUDA_VISIBLE_DEVICES=1 nohup lmdeploy serve api_server /m --tp 1 > log.txt 2>&1 & # bg"
    assert split_shell(text) == [["cd", "/root"], ["CUDA_VISIBLE_DEVICES=1", "nohup", "lmdeploy", "serve",
                                                  "api_server", "/m", "--tp", "1"]]
    assert split_shell("lmdeploy chat /m 2>err.log | tee out; echo done") == [
        ["lmdeploy", "chat", "/m"], ["tee", "out"], ["echo", "done"]]
    assert split_shell("$ lmdeploy chat /m") == [["lmdeploy", "chat", "/m"]]
    cmd = parse_shell(text, "0.5.3")
    assert cmd.subcommand == "serve api_server" and cmd.positionals == ["/m"] and cmd.env == {"CUDA_VISIBLE_DEVICES": "1"}


def test_shell_round_trip_keeps_env_assignments_working():
    cmd = parse(["HF_ENDPOINT=https://hf-mirror.com/a b", "lmdeploy", "chat", "/my models/x", "--session-len", "4096"],
                "0.7.3")
    line = cmd.shell()
    assert line.startswith("HF_ENDPOINT='https://hf-mirror.com/a b' lmdeploy chat '/my models/x'")
    assert split_shell(line) == [cmd.argv]


# -- launchers -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, start", [
    (["python", "-m", "lmdeploy", "serve", "api_server", "/m"], 3),
    (["/opt/conda/envs/x/bin/python3.10", "-u", "-m", "lmdeploy", "serve", "api_server", "/m"], 4),
    (["python", "-X", "importtime", "-m", "lmdeploy", "serve", "api_server", "/m"], 5),
    (["env", "-u", "HF_HUB_OFFLINE", "A=1", "lmdeploy", "serve", "api_server", "/m"], 5),
    (["A=1", "B=2", "nohup", "lmdeploy", "serve", "api_server", "/m"], 4),
    (["conda", "run", "-n", "lmdeploy", "--no-capture-output", "lmdeploy", "serve", "api_server", "/m"], 6),
])
def test_launchers(argv, start):
    cmd = parse(argv, "0.5.3")
    assert (cmd.program, cmd.subcommand, cmd.start, cmd.model) == ("lmdeploy", "serve api_server", start, "/m")


def test_python_script_is_not_lmdeploy():
    cmd = parse(["python", "app.py", "--server-port", "7860"])
    assert (cmd.program, cmd.subcommand, cmd.positionals, cmd.port) == ("python", "", ["app.py"], 7860)


# -- flag reading by version ---------------------------------------------------------------------------
def test_inline_values_and_prefixes():
    cmd = parse(["lmdeploy", "serve", "api_server", "/m", "--tp=2", "--cache-max", "0.5"], "0.5.3")
    assert cmd.get_flag("tp") == "2" and cmd.get_flag("--cache-max-entry-count") == "0.5"
    assert cmd.tokens[1].written == "--cache-max" and cmd.unknown_flags == []


def test_underscores_only_where_the_version_reads_them():
    argv = ["lmdeploy", "serve", "api_server", "/m", "--cache_max_entry_count", "0.5"]
    assert parse(argv, "0.18.0").get_flag("cache-max-entry-count") == "0.5"
    old = parse(argv, "0.5.3")
    assert old.unknown_flags == ["--cache_max_entry_count"] and old.get_flag("cache-max-entry-count") is None


def test_multi_value_flags_stop_at_the_next_flag():
    cmd = parse(["lmdeploy", "serve", "api_server", "/m", "--adapters", "a=/x", "b=/y", "--api-keys", "k1", "k2",
                 "--tp", "1"], "0.7.3")
    assert cmd.get_values("adapters") == ["a=/x", "b=/y"] and cmd.get_values("api-keys") == ["k1", "k2"]
    assert cmd.positionals == ["/m"]


def test_switch_arity_comes_from_the_version_or_its_neighbour():
    # --eager-mode is a switch from 0.6.2; on 0.5.1 it is unknown but still must not swallow the model path.
    cmd = parse(["lmdeploy", "chat", "--eager-mode", "/m"], "0.5.1")
    assert cmd.positionals == ["/m"] and cmd.unknown_flags == ["--eager-mode"]


def test_search_scale_value_then_stray_word():
    argv = ["lmdeploy", "lite", "auto_awq", "/m", "--search-scale", "False", "--work-dir", "w"]
    old, new = parse(argv, "0.6.2"), parse(argv, "0.6.3")
    assert old.get_flag("search-scale") == "False" and old.unrecognized_args == []
    assert new.get_flag("search-scale") == "true" and new.unrecognized_args == ["False"]
    assert new.positionals == ["/m"]


def test_negative_numbers_are_values():
    cmd = parse(["lmdeploy", "serve", "api_server", "/m", "--kernel-block-size", "-1"], "0.18.0")
    assert cmd.get_flag("kernel-block-size") == "-1"


def test_double_dash_ends_the_options():
    cmd = parse(["streamlit", "run", "app.py", "--server.port", "6006", "--", "--model", "x"])
    assert cmd.positionals == ["app.py", "--model", "x"] and cmd.port == 6006


# -- rewriting -----------------------------------------------------------------------------------------
BASE = ["CUDA_VISIBLE_DEVICES=0", "lmdeploy", "serve", "api_server", "/m", "--cache-max-entry-count=0.8",
        "--tp", "1", "--tp", "2"]


def test_with_flag_replaces_every_occurrence_and_keeps_the_style():
    cmd = parse(BASE, "0.5.3").with_flag("cache-max-entry-count", "0.2").with_flag("--tp", "1")
    assert cmd.argv == ["CUDA_VISIBLE_DEVICES=0", "lmdeploy", "serve", "api_server", "/m",
                        "--cache-max-entry-count=0.2", "--tp", "1"]


def test_with_flag_adds_switches_lists_and_goes_before_double_dash():
    cmd = parse(["lmdeploy", "serve", "api_server", "/m"], "0.7.3")
    assert cmd.with_flag("eager-mode").argv[-1] == "--eager-mode"
    assert cmd.with_flag("adapters", ["a=/x", "b=/y"]).get_values("adapters") == ["a=/x", "b=/y"]
    st = parse(["streamlit", "run", "app.py", "--", "--x"])
    assert st.with_flag("server.fileWatcherType", "none").argv == [
        "streamlit", "run", "app.py", "--server.fileWatcherType", "none", "--", "--x"]


def test_without_flag_removes_values_and_stray_words():
    cmd = parse(BASE, "0.5.3").without_flag("tp")
    assert cmd.argv == BASE[:6]
    awq = parse(["lmdeploy", "lite", "auto_awq", "/m", "--search-scale", "False", "--w-bits", "4"], "0.7.3")
    assert awq.without_flag("search-scale").argv == ["lmdeploy", "lite", "auto_awq", "/m", "--w-bits", "4"]


def test_with_env_adds_replaces_and_respects_env_launcher():
    cmd = parse(BASE, "0.5.3")
    assert cmd.with_env("CUDA_VISIBLE_DEVICES", "1").argv[:2] == ["CUDA_VISIBLE_DEVICES=1", "lmdeploy"]
    both = cmd.with_env("TM_LOG_LEVEL", "INFO")
    assert both.argv[:3] == ["CUDA_VISIBLE_DEVICES=0", "TM_LOG_LEVEL=INFO", "lmdeploy"]
    assert both.env == {"CUDA_VISIBLE_DEVICES": "0", "TM_LOG_LEVEL": "INFO"}
    viaenv = parse(["env", "lmdeploy", "chat", "/m"], "0.5.3").with_env("A", "1")
    assert viaenv.argv == ["env", "A=1", "lmdeploy", "chat", "/m"] and viaenv.subcommand == "chat"
    plain = parse(["lmdeploy", "chat", "/m"], "0.5.3").with_env("A", "x y")
    assert plain.shell() == "A='x y' lmdeploy chat /m"


def test_with_positional_replaces_the_model():
    cmd = parse(["python", "-m", "lmdeploy", "serve", "api_server", "--tp", "1", "/root/models/InternVL2-26B"], "0.5.3")
    new = cmd.with_positional(0, "/root/models/InternVL2-26B-w4a16-4bit")
    assert new.model == "/root/models/InternVL2-26B-w4a16-4bit" and new.get_flag("tp") == "1"
    added = parse(["lmdeploy", "chat"], "0.5.3").with_positional(0, "/m")
    assert added.argv == ["lmdeploy", "chat", "/m"]


def test_with_subcommand_keeps_only_flags_the_target_has():
    cmd = parse_shell("lmdeploy serve gradio /m --cache-max-entry-count 0.1 --share --tp 1", "0.9.2")
    api = cmd.with_subcommand("serve api_server", ["/m"], keep_flags=True)
    assert api.argv == ["lmdeploy", "serve", "api_server", "/m", "--cache-max-entry-count", "0.1", "--tp", "1"]
    awq = cmd.with_subcommand("lite auto_awq", ["/m"])
    assert awq.argv == ["lmdeploy", "lite", "auto_awq", "/m"]


# -- ports, hosts, models --------------------------------------------------------------------------------
@pytest.mark.parametrize("line, version, port", [
    ("lmdeploy serve api_server /m", "0.5.3", 23333),
    ("lmdeploy serve api_server /m", "0.18.0", 23333),       # default None in 0.15+: decided at run time
    ("lmdeploy serve gradio /m", "0.5.3", 6006),
    ("lmdeploy serve proxy", "0.7.3", 8000),
    ("lmdeploy serve api_server /m --server-port 8080", "0.18.0", 8080),
    ("lmdeploy chat /m", "0.5.3", None),
    ("streamlit run app.py", None, 8501),
    ("STREAMLIT_SERVER_PORT=7000 streamlit run app.py", None, 7000),
])
def test_ports(line, version, port):
    assert parse_shell(line, version).port == port


def test_model_argument_by_positional_name():
    assert parse_shell("lmdeploy convert internlm2 /root/models/x", "0.7.3").model == "/root/models/x"
    assert parse_shell("lmdeploy serve gradio 0.0.0.0:23333", "0.7.3").model is None
    assert parse_shell("lmdeploy lite auto_awq internlm/internlm2_5-7b-chat", "0.7.3").model == "internlm/internlm2_5-7b-chat"


# -- facts -----------------------------------------------------------------------------------------------
def test_facts_for_a_removed_and_an_added_subcommand():
    gone = command_facts(parse_shell("lmdeploy serve gradio /m", "0.10.0"))
    assert gone["cmd.subcommand_exists"] is False and gone["cmd.subcommand_removed_in"] == "0.10.0"
    assert "cmd.subcommand_added_in" not in gone
    new = command_facts(parse_shell("lmdeploy serve proxy", "0.5.3"))
    assert new["cmd.subcommand_added_in"] == "0.6.1" and "cmd.subcommand_removed_in" not in new
    typo = command_facts(parse_shell("lmdeploy lite auto-awq /m", "0.5.3"))
    assert typo["cmd.subcommand_known"] is False and typo["cmd.subcommand_suggestion"] == "lite auto_awq"


def test_facts_for_flags_values_and_arguments():
    facts = command_facts(parse_shell(
        "lmdeploy serve api_server --dtype float16 --quant-policy 3 --backend pytorch --ssl", "0.5.3"))
    assert facts["cmd.unknown_flags"] == ["--dtype"]
    assert facts["cmd.flag_history"] == ["--dtype: added in 0.6.1"]
    assert facts["cmd.invalid_choices"] == ["--quant-policy: invalid choice: '3' (choose from 0, 4, 8)"]
    assert facts["cmd.missing_positionals"] == ["model_path"]
    assert facts["cmd.flag.ssl"] is True and facts["cmd.backend"] == "pytorch"
    dotted = command_facts(parse_shell("lmdeploy serve api_server /m --hf-overrides.rope_scaling.factor 2", "0.18.0"))
    assert dotted["cmd.invalid_choices"] == [] and dotted["cmd.unknown_flags"] == []
    st = command_facts(parse_shell("streamlit run app.py --server.fileWatcherType=none"))
    assert st["cmd.flag.server.fileWatcherType"] == "none" and st["cmd.invalid_choices"] == []


def test_default_backend_is_a_fact():
    assert command_facts(parse_shell("lmdeploy serve api_server /m", "0.5.3"))["cmd.backend"] == "turbomind"


# -- end to end: `lmdoctor check -- CMD` as a user runs it ------------------------------------------------
def test_check_reads_a_planned_command_with_the_given_version(run_lmdoctor):
    run = run_lmdoctor("check", "--json", "--facts", "fixtures/facts/h100.json", "--lmdeploy-version", "0.10.1", "--",
                       "lmdeploy", "serve", "gradio", "/share/new_models/OpenGVLab/InternVL2-2B",
                       "--cache-max-entry-count", "0.1")
    doc = run.json()
    assert run.code == 1 and doc["findings"][0]["rule"] == "CMD001"
    commands = [f.get("command") for f in doc["findings"][0]["fixes"]]
    assert "lmdeploy serve api_server /share/new_models/OpenGVLab/InternVL2-2B --cache-max-entry-count 0.1" in commands


def test_check_without_a_version_says_it_could_not_check(run_lmdoctor):
    run = run_lmdoctor("check", "--json", "--facts", "fixtures/facts/h100.json", "--",
                       "lmdeploy", "serve", "gradio", "/m")
    doc = run.json()
    assert not [f for f in doc["findings"] if f["rule"].startswith("CMD")]
    unchecked = [u for u in doc["unchecked"] if u["rule"] == "CMD017"]
    assert unchecked and "--lmdeploy-version" in unchecked[0]["reasons"][0]
    # the snapshot has no lmdeploy at all: PY002 reports that as the error that decides the exit code
    assert [f["rule"] for f in doc["findings"]] == ["PY002"] and run.code == 1


def test_check_without_a_planned_command_skips_the_command_rules(run_lmdoctor):
    doc = run_lmdoctor("check", "--json", "--facts", "fixtures/facts/h100.json").json()
    assert not [u for u in doc["unchecked"] if u["rule"].startswith("CMD")]
    assert not [f for f in doc["findings"] if f["rule"].startswith("CMD")]
