"""Run lmdeploy's pipeline once, the way a user script does (with the `__main__` guard), for the lab runner.

Usage: python3 lab/pipeline_app.py MODEL [--cache-max-entry-count R] [--quant-policy Q] [--session-len N]
                                        [--max-batch-size B] [--eager-mode]
Prints LAB_READY once the engine is built (lab/matrix.py samples memory from start to there), then
generates for 4 short prompts and one long one, prints LAB_DONE with a JSON summary and exits.
"""
import argparse
import json
import os
import time

from client import prompt_of


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--cache-max-entry-count", type=float, default=0.8)
    ap.add_argument("--quant-policy", type=int, default=0)
    ap.add_argument("--session-len", type=int, default=None)
    ap.add_argument("--max-batch-size", type=int, default=None)
    ap.add_argument("--eager-mode", action="store_true")
    args = ap.parse_args()
    from lmdeploy import GenerationConfig, PytorchEngineConfig, pipeline
    cfg = PytorchEngineConfig(cache_max_entry_count=args.cache_max_entry_count, quant_policy=args.quant_policy,
                              session_len=args.session_len, max_batch_size=args.max_batch_size,
                              eager_mode=args.eager_mode)
    t0 = time.time()
    pipe = pipeline(args.model, backend_config=cfg)
    print("LAB_READY", flush=True)
    long_chars = 2000 if args.session_len is None else max(16, min(2000, args.session_len // 2))
    prompts = ["hello, who are you?"] * 4 + [prompt_of(long_chars)]
    out = pipe(prompts, gen_config=GenerationConfig(max_new_tokens=32))
    print("LAB_DONE", json.dumps({"init_s": round(time.time() - t0, 1), "texts": [o.text[:40] for o in out]}),
          flush=True)
    os._exit(0)  # skip the engine's slow teardown: the runner has what it measures


if __name__ == "__main__":
    main()
