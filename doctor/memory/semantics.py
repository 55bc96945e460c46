"""What an lmdeploy version does with memory, looked up in rules/knowledge/memory.yaml.

The memory terms are the same arithmetic in every release, but which variant applies changes with
the version: what ``--cache-max-entry-count`` is a fraction of, whether the embeddings are split by
tp, the default ``max_batch_size`` per GPU, how the PyTorch engine reserves runtime memory... Those
boundaries are data (with the source file of each) so a correction never touches code.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Dict, Optional

from doctor import knowledge

NEWEST_KNOWN = "0.18.0"          # assumed when the lmdeploy version is unknown (said so in the output)


def _rows(rows: Any, version: str) -> Optional[Dict[str, Any]]:
    for row in rows or []:
        if knowledge.satisfies(version, str(row.get("versions", ">=0"))):
            return row
    return None


def in_spec(version: str, spec: Optional[str]) -> bool:
    """Whether ``version`` is inside a specifier from the table; ``never`` is never, missing is always."""
    if spec is None:
        return True
    if str(spec).strip() == "never":
        return False
    return bool(knowledge.satisfies(version, str(spec)))


@dataclass(frozen=True)
class Semantics:
    version: str
    backend: str                           # turbomind | pytorch
    ratio_of: str                          # free | total
    default_ratio: float
    ratio_at_least_one: str                # blocks | rejected
    embeddings_split: bool
    session_plus: int
    gradio_vlm_session_len: Optional[int]
    default_prefill: int
    tm_ctx_tokens: str                     # session_len | prefill_plus_batch
    tm_warmup_at_start: bool
    tm_vision_in_pytorch: bool
    tm_head_dims: tuple
    cublas_workspace_mib: float
    pt_reserve_formula: str
    pt_min_blocks: int
    pt_fail_at_or_below: int
    pt_fail_inside_halving: bool
    pt_graphs: bool
    kv_quant: bool
    host_swap_mib: float
    cuda_context_mib: float
    tp_comm_mib: float
    awq_bytes_per_param: float
    awq_group_size: int

    def max_batch_size(self, device_name: Optional[str], subcommand: str = "") -> int:
        """The default max_batch_size lmdeploy picks for this GPU (and `chat`'s own)."""
        data = _table()
        if subcommand == "chat":
            row = _rows(data.get("chat_max_batch_size"), self.version)
            if row and row.get(self.backend):
                return int(row[self.backend])
        row = _rows(data.get("max_batch_size"), self.version) or {"default": 128}
        name = (device_name or "").lower()
        for key, size in (row.get("by_device") or {}).items():
            if key in name:
                return int(size)
        return int(row.get("default", 128))


@functools.lru_cache(maxsize=1)
def _table() -> Dict[str, Any]:
    return knowledge.table("memory")


@functools.lru_cache(maxsize=64)
def for_version(version: str, backend: str) -> Semantics:
    data = _table()
    kv = _rows(data.get("kv_ratio"), version) or {"of": "free", "default": 0.8, "at_least_one": "rejected"}
    tm = data.get("turbomind") or {}
    pt = data.get("pytorch") or {}
    prefill_rows = (data.get("max_prefill_token_num") or {}).get(backend)
    prefill = _rows(prefill_rows, version) or {"value": 8192}
    head_dims = _rows(tm.get("head_dims"), version) or {"dims": [128]}
    reserve = _rows(pt.get("reserve"), version) or {"formula": "prefill_plus_2_batches_x_vocab_x2"}
    fail = _rows(pt.get("fail_at_or_below_blocks"), version) or {"value": 0}
    ctx_tokens = _rows(tm.get("ctx_buffer_tokens"), version) or {"tokens": "prefill_plus_batch"}
    session = _rows(data.get("session_len"), version) or {"plus": 0}
    gradio = _rows(data.get("gradio_vlm_session_len"), version)
    overhead = data.get("overhead_mib") or {}
    awq = data.get("awq") or {}
    return Semantics(
        version=version, backend=backend,
        ratio_of=str(kv.get("of", "free")), default_ratio=float(kv.get("default", 0.8)),
        ratio_at_least_one=str(kv.get("at_least_one", "rejected")),
        embeddings_split=in_spec(version, (data.get("embeddings_split_by_tp") or {}).get(backend, "never")),
        session_plus=int(session.get("plus", 0)),
        gradio_vlm_session_len=int(gradio["value"]) if gradio else None,
        default_prefill=int(prefill.get("value", 8192)),
        tm_ctx_tokens=str(ctx_tokens.get("tokens")),
        tm_warmup_at_start=in_spec(version, tm.get("warmup_at_start", "never")),
        tm_vision_in_pytorch=in_spec(version, tm.get("vision_in_pytorch", "never")),
        tm_head_dims=tuple(int(d) for d in head_dims.get("dims", [128])),
        cublas_workspace_mib=float(tm.get("cublas_workspace_mib", 64)),
        pt_reserve_formula=str(reserve.get("formula")),
        pt_min_blocks=int(pt.get("min_blocks", 16)),
        pt_fail_at_or_below=int(fail.get("value", 0)),
        pt_fail_inside_halving=in_spec(version, pt.get("fail_inside_halving", "never")),
        pt_graphs=in_spec(version, pt.get("cuda_graphs", "never")),
        kv_quant=True if backend == "turbomind" else in_spec(version, pt.get("kv_quant", "never")),
        host_swap_mib=float(pt.get("host_swap_mib", 4096)),
        cuda_context_mib=float((overhead.get("cuda_context") or {}).get(backend, 512)),
        tp_comm_mib=float(overhead.get("tp_comm", 384)),
        awq_bytes_per_param=float(awq.get("bytes_per_param", 0.53125)),
        awq_group_size=int(awq.get("group_size", 128)),
    )


def engine_serves(shape_engines: Dict[str, str], backend: str, version: str, head_dim: int) -> bool:
    """Whether this lmdeploy version's engine serves the model (catalogue override, else TM head_dim rule)."""
    if backend in shape_engines:
        return in_spec(version, shape_engines[backend])
    if backend == "turbomind":
        return head_dim in for_version(version, backend).tm_head_dims
    return True


def search_settings() -> Dict[str, Any]:
    return dict(_table().get("search") or {})


def auto_awq_settings() -> Dict[str, Any]:
    return dict(_table().get("auto_awq") or {})
