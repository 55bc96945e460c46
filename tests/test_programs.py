"""The version-aware flag tables: integrity, and spot checks against facts known from lmdeploy's sources.

The expected values below were read by hand in the lmdeploy sources of the named release
(``lmdeploy/cli/*.py``); where they differ from the reference notes (shared/docs/lmdeploy.md
section 1) the sources win, and the test says so.
"""
from __future__ import annotations

import json

import pytest

from doctor.facts.planned import chat_template_for_path
from doctor.programs import FlagSpec, ProgramTable, in_range, load_program, validate

from conftest import REPO

LMDEPLOY = load_program("lmdeploy")
STREAMLIT = load_program("streamlit")


# -- integrity ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lmdeploy", "streamlit"])
def test_table_is_consistent(name):
    table = load_program(name)
    assert table is not None
    assert validate(table) == []


def test_generated_from_lists_every_release_in_order():
    from packaging.version import Version
    versions = LMDEPLOY.generated_from
    assert versions[0] == "0.5.0" and versions[-1] == "0.18.0"
    assert versions == sorted(versions, key=Version)
    assert len(versions) == 35
    # .post releases only when they change the CLI: 0.7.0.post2 dropped `llama`, post3 added a flag.
    assert [v for v in versions if "post" in v] == ["0.7.0.post2", "0.7.0.post3"]


@pytest.mark.parametrize("broken, problem", [
    ({"f": {"--x": [{"until": "0.7.0", "nargs": 1}, {"since": "0.6.0", "nargs": 0}]}}, "overlaps"),
    ({"f": {"--x": [{"since": "0.7.0", "nargs": 1}, {"until": "0.7.0", "nargs": 0}]}}, "overlaps"),
    ({"f": {"--x": [{"nargs": 1}, {"since": "0.7.0", "nargs": 0}]}}, "open-ended"),
    ({"f": {"--x": [{"nargs": "many"}]}}, "invalid nargs"),
    ({"f": {"--x": [{"nargs": 0, "type": "int"}]}}, "switch"),
    ({"f": {"--x": [{"nargs": 1, "type": "custom"}]}}, "accepts"),
    ({"f": {"--x": [{"since": "0.9.0", "until": "0.8.0", "nargs": 1}]}}, "not before"),
    ({"f": {"--x": [{"nargs": 1, "choices": ["a"], "default": "b"}]}}, "default"),
    ({"f": {"--x": [{"nargs": 1, "since": "0.4.0"}]}, "since": "0.5.0"}, "before the subcommand"),
    ({"f": {"x": [{"nargs": 1}]}}, "does not start"),
])
def test_validate_catches_broken_tables(broken, problem):
    """The integrity test above can fail: each kind of breakage is reported."""
    entry = {"flags": broken["f"]}
    if "since" in broken:
        entry["since"] = broken["since"]
    table = ProgramTable({"program": "t", "subcommands": {"run": entry}}, "test")
    problems = validate(table)
    assert any(problem in p for p in problems), problems


# -- subcommands by version (lmdeploy.md 1.1) ------------------------------------------------------------
@pytest.mark.parametrize("sub, last_with, first_without", [
    ("serve gradio", "0.9.2", "0.10.0"),
    ("convert", "0.9.2", "0.10.0"),
    ("serve api_client", "0.9.2", "0.10.0"),
    ("list", "0.11.1", "0.12.0"),
    ("serve triton_client", "0.5.1", "0.5.2"),
    ("lite kv_qparams", "0.5.3", "0.6.0"),
])
def test_removed_subcommands(sub, last_with, first_without):
    assert LMDEPLOY.has_subcommand(sub, last_with)
    assert not LMDEPLOY.has_subcommand(sub, first_without)
    assert LMDEPLOY.subcommand_until(sub) == first_without


@pytest.mark.parametrize("sub, since", [
    ("lite auto_gptq", "0.6.0"),
    # The notes say 0.7.0; lmdeploy 0.6.1 lmdeploy/cli/serve.py already has add_parser_proxy.
    ("serve proxy", "0.6.1"),
])
def test_added_subcommands(sub, since):
    assert LMDEPLOY.subcommand_since(sub) == since
    assert not LMDEPLOY.has_subcommand(sub, "0.5.3")
    assert LMDEPLOY.has_subcommand(sub, "0.18.0")


def test_subcommands_always_present():
    for version in ("0.5.0", "0.7.3", "0.18.0"):
        for sub in ("chat", "check_env", "serve api_server", "lite auto_awq", "lite calibrate", "lite smooth_quant"):
            assert LMDEPLOY.has_subcommand(sub, version), (sub, version)


# -- flags by version (lmdeploy.md 1.2) -----------------------------------------------------------------
def flag(sub: str, name: str, version: str) -> FlagSpec:
    spec = LMDEPLOY.flag(sub, name, version)
    assert spec is not None, f"{sub} {name} missing in {version}"
    return spec


def test_dtype_since_0_6_1():
    assert LMDEPLOY.flag("serve api_server", "--dtype", "0.6.0") is None
    assert flag("serve api_server", "--dtype", "0.6.1").choices == ("auto", "float16", "bfloat16")
    assert LMDEPLOY.flag_history("serve api_server", "--dtype", "0.5.3") == "--dtype: added in 0.6.1"


def test_max_prefill_token_num_on_the_cli_since_0_6_0():
    assert LMDEPLOY.flag("serve api_server", "--max-prefill-token-num", "0.5.3") is None
    assert flag("serve api_server", "--max-prefill-token-num", "0.6.0").default == 8192
    # what 0.5.x offered instead
    assert flag("serve api_server", "--num-tokens-per-iter", "0.5.1").type == "int"


def test_search_scale_type_bool_then_switch():
    old = flag("lite auto_awq", "--search-scale", "0.6.2")
    assert (old.type, old.nargs, old.is_switch) == ("bool", 1, False)
    assert old.convert("False") == (True, True)      # the trap: bool("False") is True
    new = flag("lite auto_awq", "--search-scale", "0.6.3")   # the notes say 0.7.0; 0.6.3's utils.py has store_true
    assert new.is_switch and new.action == "store_true"
    assert flag("lite auto_awq", "--search-scale", "0.18.0").is_switch


def test_calib_dataset_choices_from_0_12():
    before = flag("lite auto_awq", "--calib-dataset", "0.11.1")
    assert before.choices is None and before.default == "ptb"
    after = flag("lite auto_awq", "--calib-dataset", "0.12.0")
    assert after.default == "wikitext2" and "ptb" not in after.choices and "c4" in after.choices
    assert after.problem("ptb").startswith("--calib-dataset: invalid choice: 'ptb'")
    assert after.problem("c4") is None


@pytest.mark.parametrize("version, choices", [
    ("0.5.1", ("hf", "llama", "awq")),
    ("0.6.0", ("hf", "llama", "awq", "gptq")),
    ("0.7.0", ("hf", "llama", "awq", "gptq")),
    ("0.7.0.post2", ("hf", "awq", "gptq")),      # the notes say `llama` went in 0.8.0
    ("0.7.3", ("hf", "awq", "gptq")),
    ("0.9.0", ("hf", "awq", "gptq", "fp8")),
    ("0.18.0", ("hf", "awq", "gptq", "compressed-tensors", "fp8", "mxfp4")),
])
def test_model_format_choices_by_version(version, choices):
    assert flag("serve api_server", "--model-format", version).choices == choices


def test_quant_policy_numbers_then_names():
    old = flag("serve api_server", "--quant-policy", "0.5.1")
    assert old.choices == (0, 4, 8) and old.type == "int"
    assert old.problem("4") is None and "invalid choice" in old.problem("3")
    assert "invalid int value" in old.problem("int8")
    new = flag("serve api_server", "--quant-policy", "0.18.0")
    assert new.type == "custom"
    assert new.convert("fp8") == (True, 16) and new.convert("FP8_E5M2") == (True, 17)
    assert new.convert("int4") == (True, 4) and new.convert("8") == (True, 8)
    assert new.problem("3") is not None
    assert flag("serve api_server", "--quant-policy", "0.14.0").convert("int8") == (True, 8)


def test_defaults_that_changed():
    assert flag("serve api_server", "--log-level", "0.5.1").default == "ERROR"
    assert flag("serve api_server", "--log-level", "0.18.0").default == "WARNING"
    assert flag("serve api_server", "--max-batch-size", "0.5.1").default == 128
    assert flag("serve api_server", "--max-batch-size", "0.7.3").default is None
    assert flag("serve api_server", "--server-port", "0.5.1").default == 23333
    assert flag("serve api_server", "--server-port", "0.18.0").default is None
    assert flag("serve gradio", "--server-port", "0.5.1").default == 6006
    for version in ("0.5.1", "0.7.3", "0.18.0"):
        assert flag("serve api_server", "--cache-max-entry-count", version).default == 0.8


def test_trust_remote_code_flipped():
    old = flag("chat", "--trust-remote-code", "0.5.1")
    assert (old.action, old.default) == ("store_false", True)   # passing it *disables* remote code
    assert LMDEPLOY.flag("chat", "--trust-remote-code", "0.7.3") is None
    assert flag("chat", "--trust-remote-code", "0.13.0").action == "store_true"


def test_eager_mode_and_language_model_only():
    assert LMDEPLOY.flag_history("serve api_server", "--eager-mode", "0.6.1") == "--eager-mode: added in 0.6.2"
    assert flag("serve api_server", "--language-model-only", "0.15.0").is_switch
    assert LMDEPLOY.flag("serve api_server", "--language-model-only", "0.14.0") is None


def test_flag_history_wording():
    assert LMDEPLOY.flag_history("chat", "--cap", "0.6.0") == "--cap: removed in 0.6.0"
    gap = LMDEPLOY.flag_history("lite auto_awq", "--device", "0.6.1")
    assert gap.startswith("--device: not available in 0.6.1")
    assert "belongs to" in LMDEPLOY.flag_history("chat", "--server-port", "0.7.3")
    assert "did you mean --cache-max-entry-count" in LMDEPLOY.flag_history("chat", "--cache-max-entry-cont", "0.7.3")


def test_flexible_parser_and_abbreviations():
    assert not LMDEPLOY.flexible("0.9.1") and LMDEPLOY.flexible("0.9.2") and LMDEPLOY.flexible("0.18.0")
    sub = "serve api_server"
    assert LMDEPLOY.resolve_flag(sub, "--cache_max_entry_count", "0.18.0") == "--cache-max-entry-count"
    assert LMDEPLOY.resolve_flag(sub, "--cache_max_entry_count", "0.5.3") == "--cache_max_entry_count"
    assert LMDEPLOY.resolve_flag(sub, "--hf-overrides.rope_scaling.factor", "0.18.0") == "--hf-overrides"
    assert LMDEPLOY.resolve_flag(sub, "--cache-max", "0.5.3") == "--cache-max-entry-count"   # unique prefix
    assert LMDEPLOY.resolve_flag(sub, "--cache", "0.5.3") == "--cache"                       # ambiguous
    assert STREAMLIT.resolve_flag("run", "--server.po", None) == "--server.po"               # click: no prefixes


def test_version_ranges():
    assert in_range("0.7.0.post1", "0.7.0", "0.7.1")
    assert in_range("0.5.1+cu118", None, "0.5.2")
    assert in_range(None, "0.6.0", None) and not in_range(None, None, "0.10.0")


def test_streamlit_table():
    spec = STREAMLIT.flag("run", "--server.fileWatcherType", None)
    assert spec.choices == ("auto", "watchdog", "poll", "none")
    assert STREAMLIT.flag("run", "--server.port", None).default == 8501
    headless = STREAMLIT.flag("run", "--server.headless", None)
    assert headless.convert("true") == (True, True) and headless.convert("off") == (True, False)
    assert headless.problem("maybe") is not None


# -- chat templates chosen by folder name, against each release's real best_match_model -----------------
MATCHES = json.loads((REPO / "fixtures" / "programs" / "chat-template-matches.json").read_text())
TEMPLATE_CASES = [(v, path) for v, found in MATCHES["matches"].items() for path in found]


@pytest.mark.parametrize("version, path", TEMPLATE_CASES, ids=[f"{v}:{p.rsplit('/', 1)[-1]}" for v, p in TEMPLATE_CASES])
def test_chat_template_matcher_agrees_with_lmdeploy(version, path):
    from doctor import knowledge
    probe = MATCHES["probes"][path]
    real = MATCHES["matches"][version][path]
    family_names = {t["name"] for t in knowledge.table("chat_templates")["templates"] if t["family"] == probe["family"]}
    matched, _ = chat_template_for_path(probe["family"], path, version, probe["llm_arch"])
    assert matched == (real if real in family_names else "base")
