"""Hold GPU memory so that only LEAVE_MIB stay free: emulates a small GPU slice on a big card.

Usage:
  python3 lab/ballast.py LEAVE_MIB [SECONDS]   hold, print one line, sleep SECONDS (default 600), exit
  python3 lab/ballast.py --serve               long-lived: each line on stdin is a LEAVE_MIB (or "none"
                                               to hold nothing); each answer is one JSON line
                                               {"held_mib", "free_mib"} on stdout; EOF ends it

The serving mode lets lab/matrix.py pay torch's import and CUDA start-up once per run instead of once per
launch. NVML shows the held memory as used by another process, which is what users meet on a shared GPU
(a real MIG/vGPU slice shows a smaller total instead; records say which was emulated).
"""
from __future__ import annotations

import json
import sys
import time
from typing import List, Optional

import torch

MIB = 1 << 20
TOLERANCE_MIB = 8


class Ballast:
    def __init__(self) -> None:
        self.chunks: List[torch.Tensor] = []

    def held_mib(self) -> int:
        return sum(c.numel() for c in self.chunks) // MIB

    def set(self, leave_mib: Optional[int]) -> dict:
        """Release everything, then hold all but leave_mib of what is free (None: hold nothing)."""
        self.chunks.clear()
        torch.cuda.empty_cache()
        if leave_mib is not None:
            # A second, smaller allocation corrects for the allocator's rounding of the first.
            for _ in range(2):
                free = torch.cuda.mem_get_info()[0]
                extra = free - leave_mib * MIB
                if extra <= TOLERANCE_MIB * MIB:
                    break
                self.chunks.append(torch.empty(extra, dtype=torch.uint8, device="cuda"))
        return {"held_mib": self.held_mib(), "free_mib": torch.cuda.mem_get_info()[0] // MIB}


def serve() -> None:
    ballast = Ballast()
    torch.cuda.init()
    print(json.dumps({"ready": True, "free_mib": torch.cuda.mem_get_info()[0] // MIB}), flush=True)
    for line in sys.stdin:
        word = line.strip()
        if not word:
            continue
        try:
            leave = None if word == "none" else int(word)
            reply = ballast.set(leave)
        except (ValueError, RuntimeError) as e:  # a bad line or an allocation the driver refuses
            reply = {"error": str(e).splitlines()[0], "held_mib": ballast.held_mib()}
        print(json.dumps(reply), flush=True)


def main(argv: List[str]) -> int:
    if argv == ["--serve"]:
        serve()
        return 0
    if not argv or len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    ballast = Ballast()
    state = ballast.set(int(argv[0]))
    print(f"ballast holds {state['held_mib']} MiB; free now {state['free_mib']} MiB", flush=True)
    time.sleep(float(argv[1]) if len(argv) > 1 else 600.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
