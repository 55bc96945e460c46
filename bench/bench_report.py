"""How much `report` and redaction cost, as ratios against baselines measured in the same run.

    python bench/bench_report.py            # prints one line per measurement

1. `lmdoctor report LOG -- CMD` against `lmdoctor check -- CMD` (same facts snapshot, real child
   processes): what the Markdown, the sections and the redaction add to the pre-flight itself.
2. Redacting a large log (the real fixture logs repeated to ~8 MiB, with planted secrets) against
   just splitting it into lines and stripping ANSI colours (the least any log reader does).
"""
from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from doctor.redact import Redactor  # noqa: E402

FACTS = str(REPO / "fixtures" / "facts" / "h100-ballast-8gib-free.json")
LOG = str(REPO / "fixtures" / "report" / "internlm2_5-7b-chat-tm-oom.log")
CMD = ["lmdeploy", "chat", "/root/models/internlm2_5-7b-chat", "--api-keys", "sk-bench-secret"]


def child_seconds(args, runs=7) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "doctor", *args], capture_output=True, cwd=str(REPO), check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def big_log() -> str:
    real = "".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "fixtures" / "report").glob("*.log")))
    planted = ("export HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz01234567\n"
               "curl -H 'Authorization: Bearer bench-token-123456' http://0.0.0.0:23333/v1/models\n"
               "https_proxy=http://user:pw@10.0.0.1:7890 lmdeploy serve api_server m --api-keys sk-a sk-b\n")
    block = real + planted
    return block * max(1, (8 << 20) // len(block))


def best_of(fn, runs=3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    check = child_seconds(["check", "--facts", FACTS, "--", *CMD])
    report = child_seconds(["report", LOG, "--facts", FACTS, "--", *CMD])
    print(f"report vs check (child process, median of 7): {report * 1000:.0f} ms vs {check * 1000:.0f} ms "
          f"= {report / check:.2f}x")
    text = big_log()
    ansi = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
    baseline = best_of(lambda: [ansi.sub("", line) for line in text.splitlines()])
    redact = best_of(lambda: Redactor(environ={"HOME": "/home/bench"}, users=["bench"], hosts=["bench-host"]).text(text))
    mib = len(text) / (1 << 20)
    print(f"redact {mib:.1f} MiB log: {redact * 1000:.0f} ms vs split+strip-ANSI {baseline * 1000:.0f} ms "
          f"= {redact / baseline:.1f}x ({mib / redact:.0f} MiB/s)")


if __name__ == "__main__":
    main()
