"""The Python ``pipeline(...)`` equivalent of a launch, for users who serve from a script.

``lmdeploy serve api_server MODEL --cache-max-entry-count 0.4 --session-len 8192`` and
``pipeline(MODEL, backend_config=TurbomindEngineConfig(cache_max_entry_count=0.4, session_len=8192))``
allocate the same memory; the CLI flags map one-to-one onto the engine config fields.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from doctor.memory.launch import Launch

# Launch attribute -> (engine-config field, CLI flag that marks it as given)
FIELDS = [("ratio", "cache_max_entry_count", "--cache-max-entry-count"),
          ("quant_policy", "quant_policy", "--quant-policy"),
          ("session_len", "session_len", "--session-len"),
          ("max_batch_size", "max_batch_size", "--max-batch-size"),
          ("prefill", "max_prefill_token_num", "--max-prefill-token-num"),
          ("tp", "tp", "--tp")]


def config_fields(launch: Launch, changed: Optional[Dict[str, str]] = None) -> Dict[str, object]:
    """Engine-config keyword arguments: the ratio and session_len always (a subcommand may have chosen
    its own, e.g. `serve gradio` 8192 for VLMs), the batch for `chat` (1 in old TurboMind), the rest
    when given or changed."""
    changed = changed or {}
    out: Dict[str, object] = {}
    always = {"ratio", "session_len"} | ({"max_batch_size"} if launch.subcommand == "chat" else set())
    for attr, name, flag in FIELDS:
        value = getattr(launch, attr)
        if attr in always or launch.given.get(flag) or flag in changed:
            if attr == "quant_policy" and value == 0 and flag not in changed:
                continue
            if attr == "tp" and value == 1 and flag not in changed:
                continue
            out[name] = value
    if launch.weight_format in ("awq", "gptq") and launch.backend == "turbomind":
        out["model_format"] = launch.weight_format
    if launch.eager and launch.backend == "pytorch":
        out["eager_mode"] = True
    return out


def code(model: str, launch: Launch, changed: Optional[Dict[str, str]] = None) -> str:
    """Two lines of Python that start the same engine with the same memory settings."""
    cls = "TurbomindEngineConfig" if launch.backend == "turbomind" else "PytorchEngineConfig"
    args: List[str] = []
    for key, value in config_fields(launch, changed).items():
        shown = f"{value:g}" if isinstance(value, float) else repr(value)
        args.append(f"{key}={shown}")
    return (f"from lmdeploy import pipeline, {cls}\n"
            f"pipe = pipeline({model!r}, backend_config={cls}({', '.join(args)}))")
