"""Hold GPU memory so only LEAVE_MIB stay free: emulates a small GPU slice on a big card.

Usage: python3 lab/ballast.py LEAVE_MIB [SECONDS]
NVML then shows the memory as used by another process, which is also what users meet on shared GPUs.
"""
import sys
import time

import torch


def main() -> None:
    leave = int(sys.argv[1]) << 20
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 600.0
    free, _total = torch.cuda.mem_get_info()
    hold = torch.empty(max(free - leave, 0), dtype=torch.uint8, device="cuda")
    print(f"ballast holds {hold.numel() >> 20} MiB; free now {torch.cuda.mem_get_info()[0] >> 20} MiB", flush=True)
    time.sleep(seconds)


if __name__ == "__main__":
    main()
