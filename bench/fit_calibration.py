"""Predicted vs measured GPU memory for every real launch in fixtures/measurements/*.jsonl.

    python3 bench/fit_calibration.py [FOLDER]

Each record is predicted exactly as `lmdoctor check` predicts that launch (doctor/memory/calibration.py):
ready launches are compared with the memory held after start-up, failed ones must be predicted to fail
in the same category. Also prints the CUDA-context/allocator overhead implied by pairs of records that
differ only in --cache-max-entry-count (the slope gives the free memory the ratio applies to), which is
how the PyTorch engine's `overhead_mib.cuda_context` in rules/knowledge/memory.yaml was fitted.
Exit status 1 when the median error is 5% or more, or any error exceeds 10%, or an outcome is wrong.
"""
from __future__ import annotations

import os
import sys
from itertools import combinations

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from doctor.memory import calibration, semantics, terms  # noqa: E402


def implied_overheads(rows):
    """Overhead implied by two ready records of one setup and free memory that differ only in the ratio (PyTorch)."""
    out = []
    for a, b in combinations([r for r in rows if r.measured_kind == "ready"], 2):
        ra, rb = a.record, b.record
        sa, sb = dict(ra["settings"]), dict(rb["settings"])
        if ra["backend"] != "pytorch" or a.prediction.launch.quant_policy or b.prediction.launch.quant_policy:
            continue
        ratio_a, ratio_b = sa.pop("cache_max_entry_count"), sb.pop("cache_max_entry_count")
        # Only a change of ratio on the same free memory isolates the overhead (different slices don't).
        same_slice = abs(ra["free_mib_at_start"] - rb["free_mib_at_start"]) < 256
        if sa != sb or ra["model"] != rb["model"] or ra["gpu"] != rb["gpu"] or ratio_a == ratio_b or not same_slice:
            continue
        p = a.prediction
        per_block = terms.pytorch_graph_bytes(p.launch.max_batch_size, p.shape.llm.vocab, 1) - \
            terms.pytorch_graph_bytes(p.launch.max_batch_size, p.shape.llm.vocab, 0)
        growth = 1 + per_block / (p.block_mib * (1 << 20))
        usable = (b.measured_mib - a.measured_mib) / (ratio_b - ratio_a) / growth      # free - reserve
        free = usable + p.reserve_mib
        overhead = ra["free_mib_at_start"] - p.weights_mib - free
        out.append((ra["id"], rb["id"], overhead))
    return out


def main(folder: str) -> int:
    rows = [calibration.compare(r) for r in calibration.load(folder)]
    print(f"{'record':<44} {'engine':<15} {'settings':<26} {'predicted':>10} {'measured':>10} {'error':>8}  outcome")
    for r in rows:
        rec, s = r.record, r.record["settings"]
        settings = f"ratio {s.get('cache_max_entry_count')} qp {s.get('quant_policy') or 0} tp {s.get('tp') or 1}"
        pred = f"{r.predicted_mib:.0f}" if r.predicted_mib is not None else "fails"
        meas = f"{r.measured_mib:.0f}" if r.measured_mib is not None else rec["outcome"]
        err = f"{r.error_pct:+.2f}%" if r.error_pct is not None else ""
        outcome = f"{r.predicted_outcome}" + (f" ({r.predicted_category})" if r.predicted_category else "")
        outcome += "" if r.outcome_ok else f"  MISMATCH: record says {rec['outcome']} {rec.get('category', '')}"
        print(f"{rec['id']:<44} {rec['backend'] + ' ' + rec['lmdeploy_version']:<15} {settings:<26} {pred:>10} {meas:>10} "
              f"{err:>8}  {outcome}")
    summ = calibration.summary(rows)
    print(f"\n{summ['records']} records, {summ['compared']} compared by memory: median |error| "
          f"{summ['median_abs_error_pct']:.2f}%, max |error| {summ['max_abs_error_pct']:.2f}%; "
          f"outcomes right {summ['outcomes_ok']}/{summ['records']}")
    for a, b, overhead in implied_overheads(rows):
        used = semantics.for_version("0.18.0", "pytorch").cuda_context_mib
        print(f"overhead implied by {a} vs {b}: {overhead:.0f} MiB (memory.yaml: {used:.0f} MiB)")
    bad = (summ["median_abs_error_pct"] or 0) >= 5 or (summ["max_abs_error_pct"] or 0) > 10 or \
        summ["outcomes_ok"] != summ["records"]
    return 1 if bad else 0


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "fixtures", "measurements")))
