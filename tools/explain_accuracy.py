"""Accuracy of `lmdoctor explain` on the log fixture corpus (fixtures/logs), per expected category.

    python tools/explain_accuracy.py            # table per category, then every miss with its reason
    python tools/explain_accuracy.py --json     # the same as a JSON document

A case is correct when explain's top error/warning finding has the expected category (``none``:
no error or warning) and every other expectation of the fixture holds (rule, exit code, text, fix,
log facts). Exit status 1 when any case is wrong.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from doctor.logs.corpus import load_cases, run_case  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print a JSON document instead of the table")
    args = ap.parse_args()
    outcomes = [run_case(case) for case in load_cases()]
    per: dict = defaultdict(lambda: {"cases": 0, "correct": 0, "sources": set()})
    for o in outcomes:
        row = per[o.case.expect["category"]]
        row["cases"] += 1
        row["correct"] += o.ok
        row["sources"].add(o.case.source)
    total = len(outcomes)
    correct = sum(o.ok for o in outcomes)
    if args.json:
        print(json.dumps({
            "cases": total, "correct": correct,
            "categories": {k: {**v, "sources": sorted(v["sources"])} for k, v in sorted(per.items())},
            "misses": [{"case": o.case.id, "got": o.category, "rule": o.rule, "problems": o.problems}
                       for o in outcomes if not o.ok],
        }, indent=2))
        return 0 if correct == total else 1
    print(f"{'category':32s} {'cases':>5s} {'correct':>7s} {'accuracy':>8s}  sources")
    for cat, row in sorted(per.items()):
        print(f"{cat:32s} {row['cases']:5d} {row['correct']:7d} {row['correct'] / row['cases']:8.0%}  "
              f"{', '.join(sorted(row['sources']))}")
    print(f"{'all':32s} {total:5d} {correct:7d} {correct / max(total, 1):8.0%}  "
          f"({len(per)} categories, {len({o.case.log for o in outcomes})} logs)")
    for o in outcomes:
        if not o.ok:
            print(f"MISS {o.case.id}: got {o.category} ({o.rule}); " + "; ".join(o.problems))
    return 0 if correct == total else 1


if __name__ == "__main__":
    sys.exit(main())
