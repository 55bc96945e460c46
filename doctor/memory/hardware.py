"""The GPU a launch is planned for: this machine's (NVML facts) or one described by options.

``--vram 24GiB`` (a slice or card of that size), ``--gpu A100-80G`` (rules/knowledge/gpu-cards.yaml)
and ``--gpu-slice 0.3`` (a fraction of that card, as InternStudio's "30% A100" slices) plan for other
hardware from a laptop; they reach the fit probe as ``plan.*`` facts. Without them the live GPUs are
used: lmdeploy runs on the first ``tp`` visible GPUs, so their free memory (the smallest of them) is
what is available, and what other processes hold on them is reported separately.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from doctor import knowledge
from doctor.facts import FactSet

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")
_UNITS = {"": 1024.0, "g": 1024.0, "gi": 1024.0, "gib": 1024.0, "gb": 1e9 / (1 << 20),
          "m": 1.0, "mi": 1.0, "mib": 1.0, "mb": 1e6 / (1 << 20), "t": 1024.0 ** 2, "tib": 1024.0 ** 2}


class HardwareError(ValueError):
    """A --vram / --gpu / --gpu-slice value that cannot be used (a usage error: one line, exit 2)."""


def parse_size_mib(text: str) -> float:
    """'24GiB' / '24G' / '24' (GiB) / '8192MiB' / '80GB' (10^9 bytes) -> MiB."""
    m = _SIZE.match(str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise HardwareError(f"--vram {text!r}: expected a size such as 24GiB, 8192MiB or 80GB")
    value = float(m.group(1)) * _UNITS[unit]
    if value <= 0:
        raise HardwareError(f"--vram {text!r}: must be more than zero")
    return value


def cards() -> Dict[str, Dict[str, Any]]:
    return knowledge.table("gpu-cards").get("cards", {})


def _key(text) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def find_card(name: str) -> Optional[Dict[str, Any]]:
    """A card of the GPU table by its name or an alias ('A100-80G', 'a100', 'H100 80GB HBM3')."""
    wanted = _key(name)
    for card_name, card in cards().items():
        if wanted in {_key(card_name)} | {_key(a) for a in card.get("aliases", [])} | {_key(card.get("nvml_name", ""))}:
            return dict(card, name=card_name)
    return None


def card_names() -> List[str]:
    return list(cards())


def parse_slice(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise HardwareError(f"--gpu-slice {text!r}: expected a fraction such as 0.3") from None
    if not 0 < value <= 1:
        raise HardwareError(f"--gpu-slice {text!r}: must be in (0, 1]")
    return value


def plan_facts(vram: Optional[str], gpu: Optional[str], gpu_slice: Optional[str],
               backend: Optional[str]) -> Dict[str, Any]:
    """Validate the planning options and turn them into ``plan.*`` facts (HardwareError when invalid)."""
    out: Dict[str, Any] = {}
    if vram is not None:
        out["plan.vram_mib"] = round(parse_size_mib(vram), 1)
    if gpu is not None:
        card = find_card(gpu)
        if card is None:
            raise HardwareError(f"--gpu {gpu!r}: unknown GPU (known: {', '.join(card_names())}); "
                                "use --vram SIZE for any other card")
        out["plan.gpu"] = card["name"]
    if gpu_slice is not None:
        out["plan.gpu_slice"] = parse_slice(gpu_slice)
    if backend is not None:
        out["plan.backend"] = backend
    return out


@dataclass
class Hardware:
    source: str                     # for people: where the numbers come from
    name: Optional[str]             # product name lmdeploy sees (picks max_batch_size defaults)
    total_mib: float                # per GPU
    available_mib: float            # free for this launch, per GPU (smallest of the GPUs used)
    count: int                      # GPUs usable for tp
    cc: Optional[str] = None
    other_mib: float = 0.0          # held by other processes on the GPUs used (live GPUs only)
    processes: List[str] = field(default_factory=list)
    live: bool = False

    def with_available(self, mib: float) -> "Hardware":
        return Hardware(self.source, self.name, self.total_mib, mib, self.count, self.cc, self.other_mib,
                        list(self.processes), self.live)


def _visible(facts: FactSet) -> List[str]:
    return [i for i in facts.indices("gpu") if facts.value(f"gpu.{i}.visible", True)]


def from_facts(facts: FactSet, tp: int = 1) -> Optional[Hardware]:
    """The planned hardware, or None when neither options nor a usable live GPU say anything."""
    vram = facts.value("plan.vram_mib")
    card_name = facts.value("plan.gpu")
    fraction = facts.value("plan.gpu_slice")
    if vram is not None or card_name is not None or fraction is not None:
        return _planned(facts, vram, card_name, fraction, tp)
    visible = _visible(facts)
    if not visible:
        return None
    used = visible[: max(1, tp)]
    frees = [facts.value(f"gpu.{i}.free_mib") for i in used]
    totals = [facts.value(f"gpu.{i}.total_mib") for i in used]
    if any(v is None for v in frees + totals):
        return None
    others = [float(facts.value(f"gpu.{i}.other_mib", 0) or 0) for i in used]
    procs: List[str] = []
    for i in used:
        for p in facts.value(f"gpu.{i}.processes", []) or []:
            if not p.get("self"):
                held = f"{p['used_mib']} MiB" if p.get("used_mib") is not None else "? MiB"
                procs.append(f"GPU{i}: pid {p.get('pid')} {p.get('name', '')} ({held})".replace("  ", " "))
    name = facts.value(f"gpu.{used[0]}.name")
    which = f"GPU {used[0]}" if len(used) == 1 else f"GPUs {','.join(used)}"
    return Hardware(source=f"this machine's {which} ({name}, NVML free memory)", name=name,
                    total_mib=float(min(totals)), available_mib=float(min(frees)), count=len(visible),
                    cc=facts.value(f"gpu.{used[0]}.cc"), other_mib=max(others), processes=procs, live=True)


def _planned(facts: FactSet, vram: Optional[float], card_name: Optional[str], fraction: Optional[float],
             tp: int) -> Hardware:
    card = find_card(card_name) if card_name else None
    parts: List[str] = []
    name = card.get("nvml_name") if card else None
    cc = card.get("cc") if card else None
    if vram is not None:
        total = float(vram)
        available = total
        parts.append(f"--vram {total / 1024:g} GiB")
        if card:
            parts.append(f"--gpu {card['name']}")
    elif card is not None:
        total = float(card["total_mib"])
        available = total - float(card.get("idle_used_mib", 0))
        parts.append(f"--gpu {card['name']} ({total / 1024:.1f} GiB)")
    else:
        visible = _visible(facts)
        live_total = facts.value(f"gpu.{visible[0]}.total_mib") if visible else None
        if live_total is None:
            raise HardwareError("--gpu-slice needs --gpu NAME (or a visible GPU) to take a fraction of")
        total = available = float(live_total)
        name = facts.value(f"gpu.{visible[0]}.name")
        cc = facts.value(f"gpu.{visible[0]}.cc")
        parts.append(f"this machine's GPU {visible[0]} ({name})")
    if fraction is not None:
        # A vGPU slice reports its own (smaller) total; nothing else runs on it.
        total = available = total * float(fraction)
        parts.append(f"--gpu-slice {fraction:g} = {total / 1024:.1f} GiB")
    return Hardware(source="planned: " + ", ".join(parts), name=name, total_mib=total, available_mib=available,
                    count=max(1, tp), cc=cc, live=False)
