"""How much the memory model adds to `lmdoctor check`: a planned launch vs the plain check, same run.

    python3 bench/fit_speed.py [ROUNDS]

Both sides evaluate the real H100 snapshot in-process (facts, derived stages, every rule, rendering to
JSON), so the ratio isolates the fit probe: shape lookup, prediction, the search for the cheapest
change and the quantize-first plan. Prints per-scenario milliseconds and the ratio to the baseline.
"""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from doctor.engine import check_report  # noqa: E402
from doctor.gather import Sources, gather  # noqa: E402
from doctor.memory.hardware import plan_facts  # noqa: E402
from doctor.ruleset import load_rules  # noqa: E402

SNAPSHOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "facts", "h100.json")
SCENARIOS = {
    "baseline: check, no planned command": (None, None, None),
    "7B chat on 8 GiB (quantize first)": ("8GiB", "0.5.3", "lmdeploy chat /root/models/internlm2_5-7b-chat"),
    "26B AWQ on 24 GiB (no change fits)": ("24GiB", "0.5.3", "lmdeploy serve api_server /root/models/InternVL2-26B-w4a16-4bit "
                                           "--model-format awq --quant-policy 4 --cache-max-entry-count 0.1"),
    "InternVL2-2B on 8 GiB (ratio search)": ("8GiB", "0.5.1", "lmdeploy serve gradio /share/new_models/OpenGVLab/InternVL2-2B"),
}


def once(vram, version, planned) -> float:
    t0 = time.perf_counter()
    facts, subject = gather(Sources(facts_file=SNAPSHOT, planned=planned.split() if planned else None,
                                    lmdeploy_version=version, plan=plan_facts(vram, None, None, None) if vram else None))
    report = check_report(load_rules().env_rules(), facts, subject)
    if facts.value("fit.report") is not None:
        report.extra["fit"] = facts.value("fit.report")
    json.dumps(report.to_json(), default=str)
    return time.perf_counter() - t0


def main(rounds: int) -> None:
    results = {}
    for name, args in SCENARIOS.items():
        once(*args)                                   # warm caches (rules, tables) like a second run would
        times = sorted(once(*args) for _ in range(rounds))
        results[name] = times[len(times) // 2]
    base = results["baseline: check, no planned command"]
    for name, t in results.items():
        print(f"{name:<42} {t * 1000:7.1f} ms   x{t / base:4.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
