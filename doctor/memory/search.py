"""The cheapest change that fits, searched with the memory model (not guessed).

Changes are tried from the cheapest to the most intrusive, each with the largest
``--cache-max-entry-count`` that then fits with a safety margin, still holds one full session (and one
image of the largest tiling for a VLM):

1. the KV ratio alone;
2. KV cache quantisation: ``--quant-policy 8``, then ``4`` (where that engine and version support it);
3. a smaller prefill chunk (``--max-prefill-token-num``), shrinking runtime buffers;
4. a shorter ``--session-len`` (never below 2048, nor below one image and its prompt);
5. a smaller ``--max-batch-size``;
6. tensor parallelism over more of the visible GPUs (``--tp``);
7. all of the above at once.

A change is only offered when its flags exist for that subcommand in that lmdeploy version
(``Command.spec``), so a suggestion never fails with "unrecognized arguments".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional

from doctor.memory import semantics
from doctor.memory.hardware import Hardware
from doctor.memory.launch import FLAG_OF, Launch
from doctor.memory.predict import IMAGE_STAGES, Prediction, predict
from doctor.memory.semantics import Semantics
from doctor.memory.shapes import ModelShape

RATIOS = [round(0.95 - 0.01 * i, 2) for i in range(95)]          # 0.95 ... 0.01
COARSE = [round(0.95 - 0.05 * i, 2) for i in range(19)]          # 0.95 ... 0.05


@dataclass
class Suggestion:
    kind: str                                   # ratio | quant_policy | prefill | session_len | max_batch_size | tp | combined
    launch: Launch
    prediction: Prediction
    changes: Dict[str, str] = field(default_factory=dict)     # flag -> new value
    diff: List[str] = field(default_factory=list)             # "--flag old → new"
    command: Optional[object] = None                           # doctor.command.Command, when there is one
    holds_session: bool = True                                 # KV cache holds a full session_len
    holds_image: bool = True                                   # a VLM can take an image of the largest tiling
    tight: bool = False                                        # fits only without the safety margin


def margin_mib(hw: Hardware) -> float:
    s = semantics.search_settings()
    return max(float(s.get("margin_mib", 256)), float(s.get("margin_fraction", 0.03)) * hw.total_mib)


def acceptable(pred: Prediction, margin: float, need_session: bool = True, need_image: bool = True) -> bool:
    """Fits with the margin, holds a full session (optional) and, for a VLM, one image (optional)."""
    if need_image:
        if not pred.fits or pred.headroom_mib < margin:
            return False
    elif not pred.fits_text or pred.text_headroom_mib < margin:
        return False
    return pred.session_ok or not need_session


def verdict_for_ratio(pred: Prediction, margin: float, need_session: bool, need_image: bool) -> str:
    """accept | large (a smaller ratio may help) | small (a larger one may) | none (no ratio helps).

    Raising the ratio takes memory from runtime buffers and images and gives it to the KV cache, so
    "too much" failures shrink with the ratio and "too few tokens/blocks" failures grow with it.
    """
    large = small = False
    for stage in pred.stages:
        if stage.ok or (stage.name in IMAGE_STAGES and not need_image):
            continue
        if stage.name == "weights":
            return "none"
        if stage.name == "image_tokens" or (stage.name == "kv_cache" and pred.kv_cache_mib <= pred.free_after_weights_mib):
            small = True
        else:
            large = True
    if not large and (pred.headroom_mib if need_image else pred.text_headroom_mib) < margin:
        large = True
    if need_session and not pred.session_ok and pred.blocks:
        small = True
    if large and small:
        return "none"
    return "large" if large else "small" if small else "accept"


def best_ratio(shape: ModelShape, launch: Launch, hw: Hardware, sem: Semantics, flash: bool, margin: float,
               need_session: bool = True, need_image: bool = True) -> Optional[Prediction]:
    """The largest ratio (0.01 steps) whose prediction is acceptable, or None.

    Coarse steps of 0.05 from the top, then the 0.01 steps just above the first acceptable one (or,
    when the acceptable range is narrower than 0.05, between the last "too large" and the first "too
    small" coarse step): about 25 predictions instead of 95.
    """
    def at(r: float) -> Prediction:
        return predict(shape, launch.but(ratio=r), hw, sem, flash)

    def first_accepted(ratios) -> Optional[Prediction]:
        for r in ratios:
            pred = at(r)
            if verdict_for_ratio(pred, margin, need_session, need_image) == "accept":
                return pred
        return None

    previous = None
    for r in COARSE:
        pred = at(r)
        kind = verdict_for_ratio(pred, margin, need_session, need_image)
        if kind == "none":
            return None
        upper = previous if previous is not None else RATIOS[0] + 0.01
        between = [x for x in RATIOS if r < x < upper]
        if kind == "accept":
            return first_accepted(between) or pred
        if kind == "small":
            return first_accepted(between)
        previous = r
    return first_accepted([x for x in RATIOS if x < COARSE[-1]])


def _flag_ok(cmd, flag: str) -> bool:
    """A flag may be suggested when the version's table has it (or there is no command: a pipeline)."""
    if cmd is None:
        return True
    if cmd.table is None or not cmd.subcommand:
        return False
    return cmd.spec(flag) is not None


def _variants(shape: ModelShape, launch: Launch, hw: Hardware, sem: Semantics, cmd) -> Iterable[tuple]:
    """(kind, launch without the ratio decided) candidates, cheapest first."""
    yield "ratio", launch
    if sem.kv_quant and _flag_ok(cmd, "--quant-policy"):
        for qp in {0: (8, 4), 8: (4,)}.get(launch.quant_policy, ()):
            yield "quant_policy", launch.but(quant_policy=qp)
    if _flag_ok(cmd, "--max-prefill-token-num"):
        for n in (4096, 2048, 1024):
            if n < launch.prefill:
                yield "prefill", launch.but(prefill=n)
    floor = int(semantics.search_settings().get("min_session_len", 2048))
    if shape.is_vlm:
        floor = max(floor, shape.vision.image_tokens + 512)
    if _flag_ok(cmd, "--session-len"):
        s = 1 << (max(1, launch.session_len - 1).bit_length() - 1)    # largest power of two below it
        while s >= floor:
            if s < 0.9 * launch.session_len:
                yield "session_len", launch.but(session_len=s)
            s //= 2
    if _flag_ok(cmd, "--max-batch-size"):
        for b in (64, 32, 16, 8, 4, 2, 1):
            if b < launch.max_batch_size:
                yield "max_batch_size", launch.but(max_batch_size=b)
    if _flag_ok(cmd, "--tp"):
        for tp in (2, 4, 8):
            if launch.tp < tp <= hw.count and shape.llm.kv_heads % tp == 0 and shape.llm.heads % tp == 0:
                yield "tp", launch.but(tp=tp)
    combo: Dict[str, object] = {}
    if sem.kv_quant and _flag_ok(cmd, "--quant-policy") and launch.quant_policy in (0, 8):
        combo["quant_policy"] = 4
    if _flag_ok(cmd, "--max-prefill-token-num") and launch.prefill > 2048:
        combo["prefill"] = 2048
    if _flag_ok(cmd, "--session-len") and launch.session_len > floor:
        combo["session_len"] = floor
    if _flag_ok(cmd, "--max-batch-size") and launch.max_batch_size > 16:
        combo["max_batch_size"] = 16
    if len(combo) > 1:
        yield "combined", launch.but(**combo)


def describe(original: Launch, new: Launch) -> Dict[str, str]:
    """Flag -> new value for every setting that differs."""
    out: Dict[str, str] = {}
    for attr, flag in FLAG_OF.items():
        old_v, new_v = getattr(original, attr), getattr(new, attr)
        if old_v != new_v:
            out[flag] = f"{new_v:g}" if isinstance(new_v, float) else str(new_v)
    return out


def rewrite(cmd, original: Launch, changes: Dict[str, str]):
    """The planned command with the changes applied (None for a pipeline) and a readable diff."""
    diff = []
    for flag, value in changes.items():
        attr = next(a for a, f in FLAG_OF.items() if f == flag)
        old = getattr(original, attr)
        old_text = f"{old:g}" if isinstance(old, float) else str(old)
        shown = cmd.get_flag(flag) if cmd is not None else (old_text if original.given.get(flag) else None)
        diff.append(f"{flag} {shown if shown is not None else old_text + ' (default)'} → {value}")
        if cmd is not None:
            cmd = cmd.with_flag(flag, value)
    return cmd, diff


# Requirements relaxed one at a time when nothing meets all of them: a VLM's image first matters more
# than a full session; text-only serving is the last resort.
LEVELS = ((True, True), (False, True), (True, False), (False, False))     # (need_session, need_image)


def search(shape: ModelShape, launch: Launch, hw: Hardware, sem_for: Callable[[str], Semantics], cmd,
           flash: bool) -> Optional[Suggestion]:
    """The cheapest acceptable change, or None when no rewrite of this command fits on this hardware.

    When nothing fits with the safety margin, a change that fits without it is still returned, marked
    ``tight`` (the camp3 tutorial's InternVL2-26B AWQ launch really runs with ~200 MiB to spare).
    """
    sem = sem_for(launch.backend)
    levels = LEVELS if shape.is_vlm else LEVELS[:2]
    for margin in (margin_mib(hw), 0.0):
        for need_session, need_image in levels:
            for kind, variant in _variants(shape, launch, hw, sem, cmd):
                pred = best_ratio(shape, variant, hw, sem, flash, margin, need_session, need_image)
                if pred is None:
                    continue
                changes = describe(launch, pred.launch)
                if not changes:
                    continue
                new_cmd, diff = rewrite(cmd, launch, changes)
                return Suggestion(kind=kind, launch=pred.launch, prediction=pred, changes=changes, diff=diff,
                                  command=new_cmd, holds_session=pred.session_ok,
                                  holds_image=pred.fits or not shape.is_vlm, tight=margin == 0.0)
    return None
