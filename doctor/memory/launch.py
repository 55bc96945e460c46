"""The memory-relevant settings of a planned launch: given on the command line, else that version's default.

Reads the parsed command (``doctor.command.Command``, parsed with the flag table of the planned lmdeploy
version) and fills each setting the way that version would: ``--cache-max-entry-count`` 0.8 (0.5 in
0.2.0-0.2.1), ``max_batch_size`` by GPU name, ``session_len`` from the model's max positions (+8 in
0.5.x, 8192 for VLMs under 0.5.x-0.9.x ``serve gradio``), ``lmdeploy chat``'s batch of one...
Each setting remembers whether it was given, so the output can say "default" honestly.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Tuple

from doctor.memory import semantics
from doctor.memory.shapes import ModelShape

# lmdeploy 0.18 also takes names for --quant-policy (messages.py QuantPolicy).
QUANT_NAMES = {"none": 0, "int4": 4, "int8": 8, "fp8": 16, "fp8_e5m2": 17, "turbo_quant": 42}
# Launch attribute -> the CLI flag that sets it (the search rewrites commands through these).
FLAG_OF = {"ratio": "--cache-max-entry-count", "quant_policy": "--quant-policy", "prefill": "--max-prefill-token-num",
           "session_len": "--session-len", "max_batch_size": "--max-batch-size", "tp": "--tp"}


class LaunchError(ValueError):
    """A setting of the planned command cannot be read (e.g. ``--tp two``)."""


@dataclass
class Launch:
    subcommand: str
    backend: str
    version: str
    ratio: float
    quant_policy: int
    weight_format: str
    tp: int
    session_len: int
    max_batch_size: int
    prefill: int
    block_len: int
    eager: bool
    vision_batch: int
    given: Dict[str, bool] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    def but(self, **changes) -> "Launch":
        """A copy with some settings changed (for the search)."""
        out = replace(self, given=dict(self.given), notes=list(self.notes), **changes)
        for key in changes:
            if key in FLAG_OF:
                out.given[FLAG_OF[key]] = True
        return out


def _as_number(value: Any, kind, where: str) -> Optional[float]:
    """``value`` as ``kind``, None when absent; LaunchError naming ``where`` (`--flag 'x'`, `key='x'`) if not a number."""
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise LaunchError(f"{where} is not a number") from None


def _number(cmd, flag: str, kind=float) -> Optional[float]:
    raw = cmd.get_flag(flag)
    return _as_number(raw, kind, f"{flag} {raw!r}")


def quant_policy_of(raw: Optional[object]) -> int:
    if raw is None:
        return 0
    text = str(raw).strip().lower()
    if text in QUANT_NAMES:
        return QUANT_NAMES[text]
    try:
        return int(text)
    except ValueError:
        raise LaunchError(f"--quant-policy {raw!r} is not a quant policy (0, 4, 8)") from None


def choose_backend(cmd, shape: ModelShape, version: str, forced: Optional[str]) -> Tuple[str, List[str]]:
    """The engine lmdeploy will really use: the asked one, or PyTorch when TurboMind cannot serve it."""
    asked = forced or (cmd.get_flag("backend") if cmd is not None else None) or "turbomind"
    notes: List[str] = []
    if asked not in ("turbomind", "pytorch"):
        raise LaunchError(f"--backend {asked!r} is neither turbomind nor pytorch")
    serves = semantics.engine_serves(shape.engines, asked, version, shape.llm.head_dim)
    if not serves and asked == "turbomind" and semantics.engine_serves(shape.engines, "pytorch", version,
                                                                       shape.llm.head_dim):
        notes.append(f"TurboMind in lmdeploy {version} does not serve {shape.name} "
                     f"(head_dim {shape.llm.head_dim}); lmdeploy falls back to the PyTorch engine")
        return "pytorch", notes
    if not serves:
        raise LaunchError(f"lmdeploy {version} serves {shape.name} with neither engine it could use "
                          f"(--backend {asked})")
    return asked, notes


def from_command(cmd, shape: ModelShape, version: str, backend: str, device_name: Optional[str]) -> Launch:
    sem = semantics.for_version(version, backend)
    sub = cmd.subcommand if cmd is not None and cmd.subcommand else "pipeline"
    given: Dict[str, bool] = {}
    notes: List[str] = []

    def flag(name: str, kind=float) -> Optional[float]:
        value = _number(cmd, name, kind) if cmd is not None else None
        given[name] = value is not None
        return value

    ratio = flag("--cache-max-entry-count")
    ratio = sem.default_ratio if ratio is None else ratio
    qp = quant_policy_of(cmd.get_flag("--quant-policy") if cmd is not None else None)
    given["--quant-policy"] = cmd is not None and cmd.has_flag("--quant-policy")
    fmt_flag = (cmd.get_flag("--model-format") if cmd is not None else None) or ""
    weight_format = fmt_flag.lower() if fmt_flag.lower() in ("awq", "gptq") else shape.weight_format
    if fmt_flag.lower() in ("awq", "gptq") and shape.weight_format == "hf" and shape.source_kind == "config":
        notes.append(f"--model-format {fmt_flag} but {shape.name}'s config.json has no quantization_config")
    tp = int(flag("--tp", int) or 1)
    if tp < 1:
        raise LaunchError(f"--tp {tp} must be at least 1")
    session = flag("--session-len", int)
    if session is None:
        if sub == "serve gradio" and shape.is_vlm and sem.gradio_vlm_session_len:
            session = sem.gradio_vlm_session_len
            notes.append(f"serve gradio in lmdeploy {version} sets session_len {session} for VLMs")
        elif shape.llm.max_position:
            session = shape.llm.max_position + sem.session_plus
        else:
            session = 2048
            notes.append("the model states no max_position_embeddings: lmdeploy falls back to session_len 2048")
    batch = flag("--max-batch-size", int)
    batch = batch or sem.max_batch_size(device_name, sub)
    prefill = flag("--max-prefill-token-num", int) or flag("--num-tokens-per-iter", int) or sem.default_prefill
    block_len = int(flag("--cache-block-seq-len", int) or flag("--block-size", int) or 64)
    eager = cmd is not None and cmd.has_flag("--eager-mode")
    vision_batch = int(flag("--vision-max-batch-size", int) or 1)
    if session <= 0 or batch <= 0 or prefill <= 0 or block_len <= 0:
        raise LaunchError("--session-len, --max-batch-size, --max-prefill-token-num and the block size must be positive")
    return Launch(subcommand=sub, backend=backend, version=version, ratio=float(ratio), quant_policy=qp,
                  weight_format=weight_format, tp=tp, session_len=int(session), max_batch_size=int(batch),
                  prefill=int(prefill), block_len=block_len, eager=eager, vision_batch=vision_batch,
                  given=given, notes=notes)


def from_settings(settings: Dict[str, object], shape: ModelShape, version: str, backend: str,
                  device_name: Optional[str], subcommand: str = "pipeline") -> Launch:
    """A launch from engine-config fields (a pipeline's backend_config, a measurement record):
    missing or null fields take the version's defaults, as the engine config would."""
    sem = semantics.for_version(version, backend)

    def get(key: str, kind=float):
        value = settings.get(key)
        return _as_number(value, kind, f"{key}={value!r}")

    given = {flag: settings.get(key) is not None for key, flag in
             (("cache_max_entry_count", "--cache-max-entry-count"), ("quant_policy", "--quant-policy"),
              ("session_len", "--session-len"), ("max_batch_size", "--max-batch-size"),
              ("max_prefill_token_num", "--max-prefill-token-num"), ("tp", "--tp"))}
    fmt = str(settings.get("model_format") or "").lower()
    session = get("session_len", int) or ((shape.llm.max_position or 2048) + sem.session_plus)
    return Launch(subcommand=subcommand, backend=backend, version=version,
                  ratio=get("cache_max_entry_count") or sem.default_ratio,
                  quant_policy=quant_policy_of(settings.get("quant_policy")),
                  weight_format=fmt if fmt in ("awq", "gptq") else shape.weight_format,
                  tp=get("tp", int) or 1, session_len=session,
                  max_batch_size=get("max_batch_size", int) or sem.max_batch_size(device_name, subcommand),
                  prefill=get("max_prefill_token_num", int) or sem.default_prefill,
                  block_len=get("cache_block_seq_len", int) or get("block_size", int) or 64,
                  eager=bool(settings.get("eager_mode")), vision_batch=1, given=given)
