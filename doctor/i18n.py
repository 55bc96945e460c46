"""English and Simplified Chinese text.

Rule files carry both languages for every user-facing string (``{en: ..., zh: ...}``); command UI
strings live in :data:`UI`. The language comes from ``--lang``, else ``LMDOCTOR_LANG``, else the
locale (``LC_ALL`` / ``LC_MESSAGES`` / ``LANG`` starting with ``zh`` selects Chinese).
"""
from __future__ import annotations

import os
from typing import Mapping, Optional, Union

LANGS = ("en", "zh")
_lang: Optional[str] = None


def detect_lang(environ: Optional[Mapping[str, str]] = None) -> str:
    """Pick the language from the environment the way gettext would (first non-empty wins)."""
    env = os.environ if environ is None else environ
    explicit = env.get("LMDOCTOR_LANG", "")
    if explicit in LANGS:
        return explicit
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def set_lang(lang: Optional[str]) -> None:
    global _lang
    _lang = lang if lang in LANGS else None


def lang() -> str:
    return _lang or detect_lang()


class Text:
    """A user-facing string in several languages; renders in the current language, English as fallback."""

    __slots__ = ("by_lang",)

    def __init__(self, value: Union[str, Mapping[str, str], "Text"]):
        if isinstance(value, Text):
            self.by_lang = dict(value.by_lang)
        elif isinstance(value, str):
            self.by_lang = {"en": value}
        else:
            self.by_lang = {k: str(v) for k, v in value.items()}

    def get(self, language: Optional[str] = None) -> str:
        language = language or lang()
        return self.by_lang.get(language) or self.by_lang.get("en") or next(iter(self.by_lang.values()), "")

    def missing_langs(self) -> list:
        return [code for code in LANGS if not self.by_lang.get(code)]

    def __str__(self) -> str:
        return self.get()

    def __repr__(self) -> str:
        return f"Text({self.by_lang!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and other.by_lang == self.by_lang


# Command UI strings. Keys are stable; add both languages for every key (a test enforces it).
UI = {
    "no_problems": {"en": "No problems found.", "zh": "未发现问题。"},
    "couldnt_check": {"en": "couldn't check", "zh": "无法检查"},
    "evidence": {"en": "Evidence", "zh": "证据"},
    "fix": {"en": "Fix", "zh": "修复"},
    "summary": {"en": "Summary", "zh": "汇总"},
    "errors": {"en": "error(s)", "zh": "个错误"},
    "warnings": {"en": "warning(s)", "zh": "个警告"},
    "infos": {"en": "note(s)", "zh": "条提示"},
    "unchecked": {"en": "couldn't check", "zh": "项无法检查"},
    "passed": {"en": "checks passed", "zh": "项检查通过"},
    "needs": {"en": "needs", "zh": "需要"},
    "facts_from": {"en": "facts from", "zh": "事实来源"},
    "live_machine": {"en": "this machine", "zh": "本机"},
}


def tr(key: str, **fmt: object) -> str:
    """Translate a UI key into the current language, formatting ``{name}`` placeholders."""
    text = Text(UI[key]).get()
    return text.format(**fmt) if fmt else text
