"""The pipeline a Python script starts, read statically (``lmdoctor check -- python app.py``).

Tutorial apps call ``pipeline('/root/models/InternVL2-2B', backend_config=TurbomindEngineConfig(
cache_max_entry_count=0.2))``. The script is parsed with ``ast`` (never imported or run): the first
``pipeline(...)`` call whose model path is a string literal, and its ``backend_config`` given inline or
through a variable assigned a ``TurbomindEngineConfig(...)`` / ``PytorchEngineConfig(...)`` call with
literal arguments. Anything computed at run time makes the fit "unknown" with the reason.
"""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

MAX_BYTES = 1 << 20
CONFIGS = {"TurbomindEngineConfig": "turbomind", "PytorchEngineConfig": "pytorch"}


class ScriptError(ValueError):
    """The script's pipeline cannot be read statically; the message is the reason."""


@dataclass
class PipelineSpec:
    model: str
    backend: Optional[str]                  # None: no backend_config (lmdeploy picks TurboMind)
    config: Dict[str, Any] = field(default_factory=dict)
    line: int = 0
    path: str = ""


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _literal(node: ast.AST, what: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ScriptError(f"{what} is computed at run time (line {getattr(node, 'lineno', '?')}), "
                          "lmdoctor reads only literal values") from None


def _config_call(node: ast.AST, assigned: Dict[str, ast.Call]) -> Optional[ast.Call]:
    if isinstance(node, ast.Name) and node.id in assigned:
        return assigned[node.id]
    if isinstance(node, ast.Call) and _name(node.func) in CONFIGS:
        return node
    return None


def read(path: str) -> Optional[PipelineSpec]:
    """The script's pipeline, None when it starts none; ScriptError when it cannot be read."""
    try:
        if os.path.getsize(path) > MAX_BYTES:
            raise ScriptError(f"{path} is larger than 1 MiB")
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), filename=path)
    except OSError as exc:
        raise ScriptError(f"{path}: {exc.strerror or exc}") from None
    except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
        raise ScriptError(f"{path} is not valid Python ({exc})") from None
    assigned: Dict[str, ast.Call] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _name(node.value.func) in CONFIGS:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = node.value
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _name(n.func) == "pipeline"]
    if not calls:
        return None
    call = min(calls, key=lambda n: n.lineno)
    kwargs = {k.arg: k.value for k in call.keywords if k.arg}
    model_node = call.args[0] if call.args else kwargs.get("model_path")
    if model_node is None:
        raise ScriptError(f"the pipeline(...) call on line {call.lineno} names no model")
    model = _literal(model_node, "the pipeline's model path")
    if not isinstance(model, str):
        raise ScriptError(f"the pipeline's model path on line {call.lineno} is not a string")
    spec = PipelineSpec(model=model, backend=None, line=call.lineno, path=path)
    config_node = kwargs.get("backend_config")
    if config_node is None and len(call.args) > 1:
        config_node = call.args[1]
    if config_node is not None:
        cfg = _config_call(config_node, assigned)
        if cfg is None:
            raise ScriptError(f"the backend_config on line {call.lineno} is not a TurbomindEngineConfig(...) or "
                              "PytorchEngineConfig(...) call lmdoctor can read")
        spec.backend = CONFIGS[_name(cfg.func)]
        spec.config = {k.arg: _literal(k.value, f"backend_config {k.arg}") for k in cfg.keywords if k.arg}
    return spec
