"""Both languages everywhere: the UI table is complete, no UI text bypasses it, the locale selects
Chinese, and every rule page renders its four sections in English and in Chinese."""
from __future__ import annotations

import ast
import re
import string

import pytest

from doctor.i18n import LANGS, UI, detect_lang
from doctor.ruleset import load_rules

from conftest import REPO

SCANNED = sorted((REPO / "doctor" / "render").glob("*.py")) + sorted((REPO / "doctor" / "commands").glob("*.py"))
# constants that are not prose: click help/epilogs (click help is English by design), rich styles, marks
NOT_PROSE_NAMES = {"HELP_EPILOG", "EPILOG", "STYLES", "_MARKS_UTF", "_MARKS_ASCII", "MARKS", "PACKAGES"}
NOT_PROSE_KWARGS = {"help", "epilog", "metavar", "short_help", "spinner", "style"}
TWO_WORDS = re.compile(r"[A-Za-z]{2,}[ \t]+[A-Za-z]{2,}")
NOISE = re.compile(r"\[/?[a-z #0-9_.]*\]|\{[^{}]*\}|`[^`]*`|lmdoctor \w+|https?://\S+")


def _placeholders(text: str) -> set:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(UI))
def test_ui_key_has_every_language(key):
    entry = UI[key]
    missing = [lang for lang in LANGS if not entry.get(lang)]
    assert not missing, f"UI[{key!r}] lacks {missing}"
    assert set(entry) <= set(LANGS), f"UI[{key!r}] has unknown languages {set(entry) - set(LANGS)}"
    assert _placeholders(entry["en"]) == _placeholders(entry["zh"]), f"UI[{key!r}]: placeholders differ"


def _prose_literals(path):
    """(line, text) of string literals that are neither docstrings nor exempt constants/arguments."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            skip.add(id(body[0].value))  # docstring (module, class, function: click help of a command)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in NOT_PROSE_NAMES for t in node.targets):
            skip.update(id(n) for n in ast.walk(node.value))
        if isinstance(node, ast.keyword) and node.arg in NOT_PROSE_KWARGS:
            skip.update(id(n) for n in ast.walk(node.value))
        if isinstance(node, ast.Dict):
            skip.update(id(k) for k in node.keys if k is not None)
        if isinstance(node, ast.Subscript):
            skip.update(id(n) for n in ast.walk(node.slice))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "tr", "compile", "sub", "search", "match", "findall", "get", "startswith", "endswith", "split"):
            skip.update(id(n) for n in ast.walk(node) if n is not node.func)
        if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            skip.update(id(n) for n in ast.walk(node.format_spec))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


def test_no_ui_text_bypasses_the_ui_table():
    offenders = []
    for path in SCANNED:
        for line, text in _prose_literals(path):
            if TWO_WORDS.search(NOISE.sub(" ", text)):
                offenders.append(f"{path.relative_to(REPO)}:{line}: {text!r}")
    assert not offenders, "UI text must go through doctor.i18n.tr (add a key to UI with en and zh):\n" + "\n".join(offenders)


def test_the_lint_catches_a_bare_english_message(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('import click\nclick.echo(f"no rule matches {x} here")\n')
    assert [t for _, t in _prose_literals(bad) if TWO_WORDS.search(NOISE.sub(" ", t))] == ["no rule matches "]


@pytest.mark.parametrize("env,expected", [
    ({"LANG": "zh_CN.UTF-8"}, "zh"), ({"LANG": "en_US.UTF-8"}, "en"), ({"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US"}, "zh"),
    ({"LMDOCTOR_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"), ({}, "en"), ({"LANG": "C.UTF-8"}, "en"),
])
def test_language_detection(env, expected):
    assert detect_lang(env) == expected


NO_GPU = str(REPO / "fixtures" / "facts" / "cpu-no-gpu.json")
LOCALE_ZH = {"LMDOCTOR_LANG": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "zh_CN.UTF-8"}


def test_chinese_locale_selects_chinese_in_a_real_child(run_lmdoctor):
    r = run_lmdoctor("check", "--facts", NO_GPU, env=LOCALE_ZH)
    assert "看不到任何 NVIDIA GPU" in r.out and "汇总" in r.out
    r = run_lmdoctor("check", "--facts", NO_GPU, "--lang", "en", env=LOCALE_ZH)
    assert "No NVIDIA GPU is visible" in r.out and "汇总" not in r.out
    r = run_lmdoctor("--lang", "en", "check", "--facts", NO_GPU, env=LOCALE_ZH)
    assert "Summary:" in r.out


RULES = load_rules().rules
HEADINGS = {"en": ["What happened", "Why", "How to confirm", "How to fix"], "zh": ["发生了什么", "原因", "如何确认", "如何修复"]}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_page_has_four_sections_in_each_language(run_lmdoctor, rule, lang):
    r = run_lmdoctor("rules", "show", rule.id, "--lang", lang)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    positions = [lines.index(h) for h in HEADINGS[lang]]
    assert positions == sorted(positions), "sections out of order"
    for pos in positions:
        assert lines[pos + 1].strip(), f"{rule.id} {lang}: section {lines[pos]!r} is empty"
    flat = " ".join(r.out.split())  # the page wraps long titles at the terminal width
    assert " ".join(rule.title.get(lang).split()) in flat
    if lang == "zh":
        for section in ("what", "why", "confirm", "fix"):
            if section in rule.docs:
                assert rule.docs[section].get("zh").split()[0] in r.out
