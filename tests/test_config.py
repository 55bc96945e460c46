"""Rule selection: --select/--ignore, [tool.lmdoctor] in pyproject.toml, the user config file."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from doctor.config import ConfigError, load_selection, project_config_path, user_config_path
from doctor.i18n import Text
from doctor.model import Severity
from doctor.ruleset import Rule

from conftest import REPO

NO_GPU = str(REPO / "fixtures" / "facts" / "cpu-no-gpu.json")


def rule(rid: str, name: str, area: str = "host") -> Rule:
    return Rule(id=rid, name=name, category="other", severity=Severity.WARNING, area=area,
                title=Text({"en": name, "zh": name}), explanation=Text({"en": name, "zh": name}), when=None)


RULES = [rule("HOST001", "inotify-watch-limit"), rule("HOST002", "shm-too-small"), rule("HOST010", "disk-full"),
         rule("GPU001", "no-gpu-visible", "gpu"), rule("NET001", "port-taken", "network")]


def ids(rules):
    return [r.id for r in rules]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def isolated(tmp_path):
    """A project folder and an empty XDG config home (never the developer's real config)."""
    project = tmp_path / "project"
    project.mkdir()
    return project, {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}


def test_defaults_run_everything(isolated):
    project, env = isolated
    kept, ignored = load_selection(cwd=str(project), environ=env).split(RULES)
    assert ids(kept) == ids(RULES) and ignored == []


def test_ignore_by_id_prefix_and_name(isolated):
    project, env = isolated
    sel = load_selection(ignore=["HOST00", "port-taken"], cwd=str(project), environ=env)
    kept, ignored = sel.split(RULES)
    assert ids(kept) == ["HOST010", "GPU001"]
    assert [(r.id, e.pattern) for r, e in ignored] == [("HOST001", "HOST00"), ("HOST002", "HOST00"),
                                                      ("NET001", "port-taken")]


def test_comma_separated_and_lowercase_prefix(isolated):
    project, env = isolated
    kept, _ = load_selection(select=["host,gpu001"], cwd=str(project), environ=env).split(RULES)
    assert ids(kept) == ["HOST001", "HOST002", "HOST010", "GPU001"]


def test_more_specific_pattern_wins(isolated):
    project, env = isolated
    kept, _ = load_selection(select=["HOST"], ignore=["HOST002"], cwd=str(project), environ=env).split(RULES)
    assert ids(kept) == ["HOST001", "HOST010"]
    kept, _ = load_selection(select=["HOST002"], ignore=["HOST"], cwd=str(project), environ=env).split(RULES)
    assert ids(kept) == ["HOST002"]
    kept, _ = load_selection(select=["HOST002"], ignore=["HOST002"], cwd=str(project), environ=env).split(RULES)
    assert ids(kept) == []  # a tie goes to ignore


def test_project_config_found_from_a_subfolder(isolated):
    project, env = isolated
    write(project / "pyproject.toml", """
        [project]
        name = "demo"

        [tool.lmdoctor]
        ignore = ["HOST001"]
    """)
    sub = project / "src" / "deep"
    sub.mkdir(parents=True)
    assert project_config_path(str(sub)) == project / "pyproject.toml"
    kept, ignored = load_selection(cwd=str(sub), environ=env).split(RULES)
    assert ids(kept) == ["HOST002", "HOST010", "GPU001", "NET001"]
    assert [(r.id, e.source) for r, e in ignored] == [("HOST001", str(project / "pyproject.toml"))]


def test_pyproject_without_our_table_is_skipped_even_when_broken(isolated):
    project, env = isolated
    write(project.parent / "pyproject.toml", "[tool.lmdoctor]\nignore = [\"NET001\"]\n")
    write(project / "pyproject.toml", "this is [ not toml = at all\n")  # someone else's broken file
    sel = load_selection(cwd=str(project), environ=env)
    assert ids(sel.split(RULES)[0]) == ["HOST001", "HOST002", "HOST010", "GPU001"]


def test_user_config_honours_xdg(isolated, tmp_path):
    project, env = isolated
    path = write(tmp_path / "xdg" / "lmdoctor" / "config.toml", 'ignore = ["GPU"]\n')
    assert user_config_path(env) == path
    assert user_config_path({"HOME": "/home/x"}) == Path("/home/x/.config/lmdoctor/config.toml")
    assert ids(load_selection(cwd=str(project), environ=env).split(RULES)[0]) == ["HOST001", "HOST002", "HOST010", "NET001"]


def test_precedence_cli_over_project_over_user(isolated, tmp_path):
    project, env = isolated
    write(tmp_path / "xdg" / "lmdoctor" / "config.toml", 'select = ["NET"]\nignore = ["HOST010"]\n')
    write(project / "pyproject.toml", '[tool.lmdoctor]\nselect = ["HOST"]\n')
    sel = load_selection(cwd=str(project), environ=env)
    assert ids(sel.split(RULES)[0]) == ["HOST001", "HOST002"]          # project select, user ignore still adds
    sel = load_selection(select=["GPU", "HOST"], cwd=str(project), environ=env)
    assert ids(sel.split(RULES)[0]) == ["HOST001", "HOST002", "GPU001"]  # CLI select; user's exact ignore wins
    sel = load_selection(ignore=["HOST001"], cwd=str(project), environ=env)
    assert ids(sel.split(RULES)[0]) == ["HOST002"]


@pytest.mark.parametrize("content,message", [
    ("[tool.lmdoctor]\nignore = HOST001\n", "malformed TOML"),
    ("[tool.lmdoctor]\nignores = [\"HOST001\"]\n", "unknown key(s) ignores"),
    ("[tool.lmdoctor]\nignore = \"HOST001\"\n", "must be a list of strings"),
    ("[tool.lmdoctor]\nignore = [\"HOST 001\"]\n", "is not a rule ID"),
])
def test_malformed_project_config(isolated, content, message):
    project, env = isolated
    write(project / "pyproject.toml", content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_selection(cwd=str(project), environ=env)


def test_unmatched_patterns_are_reported(isolated):
    project, env = isolated
    sel = load_selection(ignore=["HOST099", "HOST"], cwd=str(project), environ=env)
    assert [e.pattern for e in sel.unmatched(RULES)] == ["HOST099"]


# -- through the real CLI -----------------------------------------------------------------------
def test_check_honours_project_config_and_reports_ignored(run_lmdoctor, isolated):
    project, env = isolated
    # the snapshot's machine has no GPU (GPU001) and no lmdeploy (PY001): a CPU box accepted as such
    write(project / "pyproject.toml", '[tool.lmdoctor]\nignore = ["GPU001", "PY001"]\n')
    r = run_lmdoctor("check", "--json", "--facts", NO_GPU, cwd=str(project), env=env)
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["summary"]["ignored"] == 2 and doc["summary"]["errors"] == doc["summary"]["warnings"] == 0
    assert doc["ignored"][0] == {"rule": "GPU001", "title": "No NVIDIA GPU is visible", "area": "gpu",
                                 "by": "GPU001", "source": str(project / "pyproject.toml")}
    human = run_lmdoctor("check", "--facts", NO_GPU, cwd=str(project), env=env)
    assert "2 ignored" in human.out and human.code == 0


def test_cli_select_beats_a_config_prefix_ignore(run_lmdoctor, isolated, tmp_path):
    project, env = isolated
    write(tmp_path / "xdg" / "lmdoctor" / "config.toml", 'ignore = ["GPU", "PY001"]\n')
    assert run_lmdoctor("check", "--facts", NO_GPU, cwd=str(project), env=env).code == 0
    r = run_lmdoctor("check", "--json", "--facts", NO_GPU, "--select", "GPU001", cwd=str(project), env=env)
    assert r.code == 1 and r.json()["findings"][0]["rule"] == "GPU001"


def test_malformed_config_is_one_line_and_exit_2(run_lmdoctor, isolated):
    project, env = isolated
    write(project / "pyproject.toml", "[tool.lmdoctor]\nignore = [HOST001\n")
    r = run_lmdoctor("check", "--facts", NO_GPU, cwd=str(project), env=env)
    assert r.code == 2 and r.out == ""
    assert r.err.count("\n") == 1 and r.err.startswith("lmdoctor: error: ") and "pyproject.toml" in r.err
    assert "Traceback" not in r.err


def test_unknown_rule_on_the_command_line_is_a_usage_error(run_lmdoctor, isolated):
    project, env = isolated
    r = run_lmdoctor("check", "--facts", NO_GPU, "--ignore", "GPU999", cwd=str(project), env=env)
    assert r.code == 2 and "GPU999" in r.err and r.err.count("\n") == 1


def test_unknown_rule_in_a_config_file_only_warns(run_lmdoctor, isolated):
    project, env = isolated
    write(project / "pyproject.toml", '[tool.lmdoctor]\nignore = ["GPU001", "PY001", "ZZZ123"]\n')
    r = run_lmdoctor("check", "--facts", NO_GPU, cwd=str(project), env=env)
    assert r.code == 0 and "ZZZ123" in r.err and "warning" in r.err
    assert run_lmdoctor("check", "-q", "--facts", NO_GPU, cwd=str(project), env=env).err == ""


def test_equal_specificity_goes_to_the_more_important_source(isolated):
    project, env = isolated
    write(project / "pyproject.toml", '[tool.lmdoctor]\nignore = ["HOST002"]\n')
    kept, _ = load_selection(select=["HOST002"], cwd=str(project), environ=env).split(RULES)
    assert ids(kept) == ["HOST002"]                      # the command line beats the project
    kept, _ = load_selection(select=["HOST"], cwd=str(project), environ=env).split(RULES)
    assert ids(kept) == ["HOST001", "HOST010"]           # a broader CLI select keeps the exact ignore
