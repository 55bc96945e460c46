"""The "GPU memory fit" area of `lmdoctor check`: the verdict and the breakdown table of the memory model.

Shown under the area title; the findings (MEM rules, with the rewritten commands) follow it. Numbers
are per GPU, in GiB, as ``fit.report`` (the JSON ``fit`` object) holds them in MiB.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from doctor.facts import FactSet
from doctor.i18n import UI, Text

VERDICT = {
    "fits": Text(UI["fit_verdict_fits"]),
    "fits_with_changes": Text(UI["fit_verdict_fits_with_changes"]),
    "does_not_fit": Text(UI["fit_verdict_does_not_fit"]),
    "unknown": Text(UI["fit_verdict_unknown"]),
}
LABELS = {
    "weights_mib": Text(UI["fit_labels_weights_mib"]),
    "vision_mib": Text(UI["fit_labels_vision_mib"]),
    "kv_cache_mib": Text(UI["fit_labels_kv_cache_mib"]),
    "runtime_mib": Text(UI["fit_labels_runtime_mib"]),
    "overhead_mib": Text(UI["fit_labels_overhead_mib"]),
    "image_activation_mib": Text(UI["fit_labels_image_activation_mib"]),
    "peak": Text(UI["fit_labels_peak"]),
}
WORDS = {
    "available": Text(UI["fit_words_available"]),
    "of": Text(UI["fit_words_of"]),
    "tokens": Text(UI["fit_words_tokens"]),
    "params": Text(UI["fit_words_params"]),
    "tiles": Text(UI["fit_words_tiles"]),
    "model": Text(UI["fit_words_model"]),
    "gpu": Text(UI["fit_words_gpu"]),
    "per_gpu": Text(UI["fit_words_per_gpu"]),
}

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
        return f"{model.get('name')}, {fmt}, {_billions(llm)} {WORDS['params'].get()}" + (f", tp {tp}" if tp > 1 else "")
    if key == "vision_mib" and (model.get("params") or {}).get("vision"):
        return f"{_billions(model['params']['vision'])} {WORDS['params'].get()}, 16-bit"
    if key == "kv_cache_mib":
        return (f"{r.get('kv_capacity_tokens')} {WORDS['tokens'].get()} (session_len {r.get('session_len')}), "
                f"ratio {settings.get('cache_max_entry_count'):g}, quant_policy {settings.get('quant_policy')}")
    if key == "runtime_mib":
        return (f"{eng.get('backend')}, max_batch_size {settings.get('max_batch_size')}, "
                f"max_prefill_token_num {settings.get('max_prefill_token_num')}")
    if key == "image_activation_mib" and r.get("image_tokens"):
        attn = "flash-attn" if eng.get("flash_attn") else Text(UI["fit_eager_attention"]).get()
        return f"{r['image_tokens']} {WORDS['tokens'].get()}, {attn}"
    return ""


def summary(f: FactSet) -> str:
    """The area line (verdict, peak vs available) and, below it, the breakdown table."""
    report = f.value("fit.report")
    if not isinstance(report, dict):
        return ""
    verdict = VERDICT.get(report.get("verdict"), VERDICT["unknown"]).get()
    if report.get("verdict") == "unknown":
        return f"{verdict}: {report.get('reason')}"
    avail, peak = report.get("available_mib"), report.get("predicted_peak_mib")
    hw = (report.get("hardware") or {}).get("source", "")
    eng = report.get("engine") or {}
    head = f"{verdict}: {LABELS['peak'].get()} ~{_gib(peak)}, {_gib(avail)} {WORDS['available'].get()} ({hw})"
    if report.get("job") == "quantize":
        return head + "\n      " + str(report.get("reason", ""))
    lines: List[str] = [head, f"      {WORDS['model'].get()}: {(report.get('model') or {}).get('source')}",
                        f"      lmdeploy {eng.get('lmdeploy_version')} ({eng.get('version_source')}), {eng.get('backend')}"]
    breakdown = report.get("breakdown") or {}
    reached = {s.get("stage") for s in report.get("stages") or []}
    for key in ("weights_mib", "vision_mib", "kv_cache_mib", "runtime_mib", "overhead_mib", "image_activation_mib"):
        value = breakdown.get(key)
        if not value and key in ("vision_mib", "image_activation_mib"):
            continue
        if not value and key in NOT_REACHED_STAGE and NOT_REACHED_STAGE[key] not in reached and report.get("failed_stage"):
            # the engine fails before it sizes this part: a 0 here would read as "costs nothing"
            lines.append(f"      {_pad(LABELS[key].get())}{'–':>11}   {Text(UI['fit_not_reached']).get()}")
            continue
        lines.append(f"      {_pad(LABELS[key].get())}{_gib(value):>11}   {_detail(key, report)}".rstrip())
    lines.append(f"      {_pad(LABELS['peak'].get())}{_gib(peak):>11}   {WORDS['of'].get()} {_gib(avail)} "
                 f"{WORDS['per_gpu'].get() if (eng.get('settings') or {}).get('tp', 1) > 1 else ''}".rstrip())
    return "\n".join(lines)
