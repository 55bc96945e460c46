"""Derived facts about the planned command (stage 2): values rules compare but YAML cannot compute.

The parser (``doctor/command.py``) says what was written; these facts say what the installed
lmdeploy will *do* with it: the effective ``--tp``/``--cache-max-entry-count``/``--quant-policy``
(given or that version's default, names such as ``fp8`` turned into numbers), how many GPUs the
command will see (its own ``CUDA_VISIBLE_DEVICES`` wins over lmdoctor's), what ``--search-scale
False`` means in that version, which chat template a model path selects on versions that pick the
template by folder name, and ready-made rewrites where a fix is more than a flag edit.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from doctor import knowledge
from doctor.facts import ABSENT, FactSet, ProbeContext, ProbeResult, Unknown, probe
from doctor.programs import parse_version

_FALSE_WORDS = ("false", "0", "no", "off", "none", "")


@probe("planned", {
    "cmd.version_for_flags": "lmdeploy version whose flag table judged the planned command",
    "cmd.flag_table_range": "lmdeploy releases the flag table was generated from (first..last)",
    "cmd.flag_table_covers": "whether that version lies inside the releases the flag table was generated from",
    "cmd.tp": "tensor parallel size the planned lmdeploy command uses (given or default)",
    "cmd.tp_power_of_two": "whether --tp is a power of two",
    "cmd.tp_suggestion": "largest power of two <= both --tp and the GPUs the command sees",
    "cmd.visible_gpus": "GPUs the planned command will see (its own CUDA_VISIBLE_DEVICES, else this machine's)",
    "cmd.cache_max_entry_count": "--cache-max-entry-count the planned command uses (given or default)",
    "cmd.cache_max_entry_count_ok": "whether that value is accepted by the engine of that version",
    "cmd.cache_max_entry_count_suggestion": "a valid ratio for a rejected one (80 -> 0.8, else the default)",
    "cmd.quant_policy": "--quant-policy as a number (names such as fp8 converted as that version does)",
    "cmd.kv_fp8": "whether --quant-policy asks for an FP8 KV cache (16 fp8 / 17 fp8_e5m2)",
    "cmd.calib_dataset": "calibration dataset a `lite` command uses (given or default)",
    "cmd.search_scale_word": "word written after --search-scale (`False` in the tutorials), when any",
    "cmd.search_scale_on": "whether lmdeploy will run the slow scale search (type=bool turns `False` into True)",
    "cmd.search_scale_is_switch": "whether --search-scale is a switch (store_true) in that version",
    "cmd.search_scale_fixed": "the planned command with --search-scale written as that version reads it as intended",
    "cmd.without_unknown_flags": "the planned command without the flags its lmdeploy version does not have",
    "cmd.unknown_flags_added_in": "oldest lmdeploy that has every unknown flag (when all were added later)",
    "cmd.as_api_server": "a `serve gradio` command rewritten as `serve api_server` with the flags that exist there",
    "cmd.chat_template_by_path": "whether that lmdeploy version picks the chat template from the model path",
    "cmd.chat_template_matched": "chat template of the model's family that the model path matches, or `base`",
    "cmd.chat_template_expected": "chat template name the model family needs (for --chat-template)",
}, stage=2, timeout_s=2.0)   # stage 2: needs model.family from the stage-1 knowledge joins
def planned_facts(ctx: ProbeContext) -> ProbeResult:
    cmd = ctx.planned
    out: Dict[str, Any] = {}
    unknown: Dict[str, str] = {}
    if cmd is None or cmd.program != "lmdeploy" or cmd.table is None:
        return ProbeResult(out)
    facts = ctx.facts or FactSet()
    known = cmd.table.generated_from
    if known:
        out["cmd.flag_table_range"] = f"{known[0]}..{known[-1]}"
    if cmd.version:
        out["cmd.version_for_flags"] = cmd.version
        v = parse_version(cmd.version)
        if known and v is not None:
            first, last = parse_version(known[0]), parse_version(known[-1])
            out["cmd.flag_table_covers"] = first <= v and v.release <= last.release   # .postN of the last: same CLI
    else:
        reason = ("lmdeploy is not installed in the examined environment; "
                  "pass --lmdeploy-version to judge the planned command for a version")
        unknown["cmd.version_for_flags"] = unknown["cmd.flag_table_covers"] = reason
    _rewrites(cmd, out)
    if not cmd.table.has_subcommand(cmd.subcommand, cmd.version):
        return ProbeResult(out, unknown)
    _parallel(cmd, facts, out, unknown)
    _unknown_flags(cmd, out)
    _engine(cmd, out)
    _lite(cmd, out)
    _chat_template(cmd, facts, out)
    return ProbeResult(out, unknown)


def _number(text: Optional[str], kind=float) -> Optional[Any]:
    if text is None:
        return None
    try:
        return kind(text)
    except (TypeError, ValueError):
        return None


def _parallel(cmd, facts: FactSet, out: Dict[str, Any], unknown: Dict[str, str]) -> None:
    if cmd.spec("tp") is None:
        return
    tp = _number(cmd.value("tp"), int)
    if tp is None:
        return
    out["cmd.tp"] = tp
    out["cmd.tp_power_of_two"] = tp > 0 and tp & (tp - 1) == 0
    count = facts.get("gpu.count")
    if "CUDA_VISIBLE_DEVICES" in cmd.env and isinstance(count, int):
        from doctor.facts.nvidia import _visible_indices
        uuids = [str(facts.value(f"gpu.{i}.uuid", "")) for i in range(count)]
        out["cmd.visible_gpus"] = len(_visible_indices(cmd.env["CUDA_VISIBLE_DEVICES"], uuids))
    else:
        visible = facts.get("gpu.visible_count")
        if isinstance(visible, Unknown) or visible is ABSENT:
            unknown["cmd.visible_gpus"] = visible.reason if isinstance(visible, Unknown) else "GPU count not observed"
        else:
            out["cmd.visible_gpus"] = visible
    _tp_suggestion(tp, out)


def _tp_suggestion(tp: int, out: Dict[str, Any]) -> None:
    limit = min(tp, out.get("cmd.visible_gpus", tp))
    if limit >= 1:
        out["cmd.tp_suggestion"] = 1 << (limit.bit_length() - 1)


def _unknown_flags(cmd, out: Dict[str, Any]) -> None:
    flags = cmd.unknown_flags
    if not flags:
        return
    trimmed = cmd
    for flag in flags:
        trimmed = trimmed.without_flag(flag)
    out["cmd.without_unknown_flags"] = trimmed.shell()
    v = parse_version(cmd.version)
    firsts = []
    for flag in flags:
        later = [s.since for s in cmd.table.variants(cmd.subcommand, flag) if s.since and v is not None
                 and parse_version(s.since) > v]
        if not later:
            return
        firsts.append(min(later, key=parse_version))
    out["cmd.unknown_flags_added_in"] = max(firsts, key=parse_version)


def _engine(cmd, out: Dict[str, Any]) -> None:
    ratio = _number(cmd.value("cache-max-entry-count"))
    if ratio is not None and cmd.spec("cache-max-entry-count") is not None:
        out["cmd.cache_max_entry_count"] = ratio
        v = parse_version(cmd.version)
        # TurboMind 0.10-0.14 reads a value >= 1 as a number of KV blocks (Python checks only > 0);
        # every other engine/version asserts 0 < ratio < 1 ('invalid cache_max_entry_count').
        block_count = (cmd.value("backend") == "turbomind" and v is not None
                       and parse_version("0.10.0") <= v < parse_version("0.15.0"))
        out["cmd.cache_max_entry_count_ok"] = ok = ratio > 0 and (ratio < 1 or block_count)
        if not ok:
            default = _number(cmd.default("cache-max-entry-count")) or 0.8
            out["cmd.cache_max_entry_count_suggestion"] = ratio / 100 if 1 <= ratio < 100 else default
    spec = cmd.spec("quant-policy")
    given = cmd.value("quant-policy")
    if spec is not None and given is not None:
        ok, policy = spec.convert(given)
        if ok and isinstance(policy, int):
            out["cmd.quant_policy"] = policy
            out["cmd.kv_fp8"] = policy in (16, 17)


def _lite(cmd, out: Dict[str, Any]) -> None:
    if not cmd.subcommand.startswith("lite "):
        return
    dataset = cmd.value("calib-dataset")
    if dataset is not None:
        out["cmd.calib_dataset"] = dataset
    spec = cmd.spec("search-scale")
    if spec is None:
        return
    out["cmd.search_scale_is_switch"] = spec.is_switch
    toks = [t for t in cmd.tokens if t.flag == "--search-scale"]
    if not toks:
        out["cmd.search_scale_on"] = False
        return
    last = toks[-1]
    word = (last.values or last.stray or [None])[0]
    if word is not None:
        out["cmd.search_scale_word"] = word
    if spec.is_switch:
        out["cmd.search_scale_on"] = True
    else:
        ok, value = spec.convert(word if word is not None else "")
        out["cmd.search_scale_on"] = bool(value) if ok else False
    if word is None:
        return
    if word.lower() in _FALSE_WORDS:     # meant "no search": the flag must go (False is truthy / rejected)
        out["cmd.search_scale_fixed"] = cmd.without_flag("search-scale").shell()
    elif spec.is_switch:                 # meant "search": the switch alone
        out["cmd.search_scale_fixed"] = cmd.with_flag("search-scale").shell()


def _rewrites(cmd, out: Dict[str, Any]) -> None:
    if cmd.subcommand == "serve gradio" and cmd.model:
        out["cmd.as_api_server"] = cmd.with_subcommand("serve api_server", [cmd.model], keep_flags=True).shell()


def _chat_template(cmd, facts: FactSet, out: Dict[str, Any]) -> None:
    """Versions before 0.10.0 choose the chat template from substrings of the model path."""
    until = (knowledge.table("chat_templates").get("path_matching") or {}).get("until")
    v = parse_version(cmd.version)
    if v is None or not until or cmd.spec("chat-template") is None:
        return
    by_path = v < parse_version(str(until))
    out["cmd.chat_template_by_path"] = by_path
    family = facts.value("model.family")
    if not by_path or not family or not cmd.model:
        return
    found = chat_template_for_path(family, cmd.model, cmd.version, facts.value("model.llm_arch"))
    if found is not None:
        out["cmd.chat_template_matched"], expected = found
        if expected:
            out["cmd.chat_template_expected"] = expected


def chat_template_for_path(family: str, model_path: str, version: str,
                           llm_arch: Optional[str] = None) -> Optional[tuple]:
    """(template the path selects among the family's templates or ``base``, template to suggest).

    None when lmdoctor has no template data for the family. Mirrors lmdeploy's ``best_match_model``
    for the families in ``rules/knowledge/chat_templates.yaml``.
    """
    v = parse_version(version)
    templates = [t for t in knowledge.table("chat_templates").get("templates", []) if t.get("family") == family
                 and (not t.get("since") or (v is not None and v >= parse_version(str(t["since"]))))]
    if not templates:
        return None
    matched = next((t["name"] for t in templates if template_matches(t, model_path)), "base")
    suggest = [t["name"] for t in templates if t.get("suggest") and (not t.get("llm") or t.get("llm") == llm_arch)]
    return matched, (suggest[0] if suggest else None)


def template_matches(template: Dict[str, Any], model_path: str) -> bool:
    """One template's path test, as lmdeploy's ``match()``: substrings of the lower-cased path."""
    path = model_path.lower()
    if any(word in path for word in template.get("none", [])):
        return False
    if not all(word in path for word in template.get("all", [])):
        return False
    alternatives: List[str] = template.get("any", [])
    return not alternatives or any(word in path for word in alternatives)

