"""The "GPU memory fit" area of `lmdoctor check`: the verdict and the breakdown table of the memory model.

Shown under the area title; the findings (MEM rules, with the rewritten commands) follow it. Numbers
are per GPU, in GiB, as ``fit.report`` (the JSON ``fit`` object) holds them in MiB.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from doctor.facts import FactSet
from doctor.i18n import tr

VERDICTS = ("fits", "fits_with_changes", "does_not_fit", "unknown")


def _word(name: str) -> str:
    return tr("fit_words_" + name)


def _label(key: str) -> str:
    return tr("fit_labels_" + key)


# breakdown rows the engine sizes only after the weights are in: the stage that sizes them
NOT_REACHED_STAGE = {"kv_cache_mib": "kv_cache", "runtime_mib": "runtime"}


def _pad(label: str, width: int = 16) -> str:
    """Left-align in terminal cells (Chinese labels are two cells per character)."""
    from rich.cells import cell_len
    return label + " " * max(1, width - cell_len(label))


def _gib(mib: Optional[float]) -> str:
    return "–" if mib is None else f"{mib / 1024:.2f} GiB"


def _billions(n: int) -> str:
    return f"{n / 1e9:.2f} B"


def _detail(key: str, r: Dict[str, Any]) -> str:
    eng = r.get("engine") or {}
    settings = eng.get("settings") or {}
    model = r.get("model") or {}
    if key == "weights_mib":
        params = model.get("params") or {}
        fmt = {"hf": "16-bit", "awq": "AWQ int4", "gptq": "GPTQ int4"}.get(model.get("weight_format"), "")
        llm = params.get("llm_linear", 0) + params.get("llm_other", 0) + params.get("plora", 0)
        tp = settings.get("tp", 1)
        return f"{model.get('name')}, {fmt}, {_billions(llm)} {_word('params')}" + (f", tp {tp}" if tp > 1 else "")
    if key == "vision_mib" and (model.get("params") or {}).get("vision"):
        return f"{_billions(model['params']['vision'])} {_word('params')}, 16-bit"
    if key == "kv_cache_mib":
        return (f"{r.get('kv_capacity_tokens')} {_word('tokens')} (session_len {r.get('session_len')}), "
                f"ratio {settings.get('cache_max_entry_count'):g}, quant_policy {settings.get('quant_policy')}")
    if key == "runtime_mib":
        return (f"{eng.get('backend')}, max_batch_size {settings.get('max_batch_size')}, "
                f"max_prefill_token_num {settings.get('max_prefill_token_num')}")
    if key == "image_activation_mib" and r.get("image_tokens"):
        attn = "flash-attn" if eng.get("flash_attn") else tr("fit_eager_attention")
        return f"{r['image_tokens']} {_word('tokens')}, {attn}"
    return ""


def summary(f: FactSet) -> str:
    """The area line (verdict, peak vs available) and, below it, the breakdown table."""
    report = f.value("fit.report")
    if not isinstance(report, dict):
        return ""
    verdict = tr("fit_verdict_" + (report.get("verdict") if report.get("verdict") in VERDICTS else "unknown"))
    if report.get("verdict") == "unknown":
        return f"{verdict}: {report.get('reason')}"
    avail, peak = report.get("available_mib"), report.get("predicted_peak_mib")
    hw = (report.get("hardware") or {}).get("source", "")
    eng = report.get("engine") or {}
    head = f"{verdict}: {_label('peak')} ~{_gib(peak)}, {_gib(avail)} {_word('available')} ({hw})"
    if report.get("job") == "quantize":
        return head + "\n      " + str(report.get("reason", ""))
    lines: List[str] = [head, f"      {_word('model')}: {(report.get('model') or {}).get('source')}",
                        f"      lmdeploy {eng.get('lmdeploy_version')} ({eng.get('version_source')}), {eng.get('backend')}"]
    breakdown = report.get("breakdown") or {}
    reached = {s.get("stage") for s in report.get("stages") or []}
    for key in ("weights_mib", "vision_mib", "kv_cache_mib", "runtime_mib", "overhead_mib", "image_activation_mib"):
        value = breakdown.get(key)
        if not value and key in ("vision_mib", "image_activation_mib"):
            continue
        if not value and key in NOT_REACHED_STAGE and NOT_REACHED_STAGE[key] not in reached and report.get("failed_stage"):
            # the engine fails before it sizes this part: a 0 here would read as "costs nothing"
            lines.append(f"      {_pad(_label(key))}{'–':>11}   {tr('fit_not_reached')}")
            continue
        lines.append(f"      {_pad(_label(key))}{_gib(value):>11}   {_detail(key, report)}".rstrip())
    lines.append(f"      {_pad(_label('peak'))}{_gib(peak):>11}   {_word('of')} {_gib(avail)} "
                 f"{_word('per_gpu') if (eng.get('settings') or {}).get('tp', 1) > 1 else ''}".rstrip())
    return "\n".join(lines)
