"""Benchmark: `lmdoctor explain --json` on a generated 200 MB server log vs a bare Python line read.

The log looks like a busy lmdeploy api_server: uvicorn access lines (mostly 200, some 4xx/5xx),
periodic throughput statistics, lmdeploy and TurboMind warnings with changing numbers, tqdm progress
redraws, ANSI colours, and one real failure near the end (the real log of an OOM caused by another
process, fixtures/logs/oom_other_process). ``--heavy`` makes a tenth of the lines something else
than a plain access line (see MIXES). Both programs run as child processes on the same file,
in the same run, page cache warm, bytecode caches written (PYTHONDONTWRITEBYTECODE is dropped for
the children, as for any installed package); the best of a few runs is kept. lmdoctor is the one a
user gets from `pip install .` (installed into the same throwaway venv as bench/check_speed.py uses,
with the pre-parsed rule bundle); an editable install parses the rule YAML at every start instead. The explain child's
peak RSS comes from wait4() (its own, or its largest worker's).

    python bench/explain_speed.py                 # 200 MB, default settings, `pip install .` of this checkout
    python bench/explain_speed.py --lmdoctor-python .venv/bin/python   # a development (editable) install
    python bench/explain_speed.py --heavy --workers 1   # worst mix, no worker processes
    python bench/explain_speed.py --size 50 --stdin

Exit status 1 when explain names the wrong category (the speed targets are reported, not asserted).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Tuple

from check_speed import APP_VENV, lmdoctor_venv   # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
FAILURE = REPO / "fixtures" / "logs" / "oom_other_process" / "pytorch-engine-oom-other-process-holds-gpu.log"
EXPECTED = "oom_other_process"
TARGET_RATIO = 3.0
TARGET_RSS_MB = 150.0
PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/models", "/generate", "/health"]


# Share of lines of each kind (the rest are 2xx access lines). Default: a busy server, about one
# stats line a second at ~100 requests/s; --heavy: a troubled one where a tenth of the lines are not
# plain access lines (many failed requests and warnings), the hardest case for the noise fast path.
MIXES = {
    "default": {"access_error": 0.005, "stats": 0.01, "warning": 0.01, "tm": 0.005, "progress": 0.001},
    "heavy": {"access_error": 0.043, "stats": 0.05, "warning": 0.035, "tm": 0.01, "progress": 0.005},
}


def generate(path: Path, size_mb: int, mix: str = "default", seed: int = 7) -> int:
    """Write the log; returns the number of lines."""
    rng = random.Random(seed)
    shares = MIXES[mix]
    cuts = []
    acc = 0.0
    for kind in ("access_error", "stats", "warning", "tm", "progress"):
        acc += shares[kind]
        cuts.append((acc, kind))
    target = size_mb << 20
    failure = FAILURE.read_bytes()
    fail_at = int(target * 0.97)
    written = lines = 0
    failed = False
    with open(path, "wb", buffering=1 << 20) as out:
        out.write(b"2026-11-22 03:01:49,394 - lmdeploy - WARNING - __init__.py:47 - For higher performance, "
                  b"please install FlashAttention-3 https://github.com/Dao-AILab/flash-attention\n"
                  b"\rLoading weights from safetensors:   0%|          | 0/4 [00:00<?, ?it/s]"
                  b"\rLoading weights from safetensors: 100%|##########| 4/4 [00:03<00:00,  1.20it/s]\n"
                  b"HINT:    Please open \x1b[93m\x1b[1mhttp://0.0.0.0:23333\x1b[0m in a browser for detailed api usage!!!\n"
                  b"INFO:     Started server process [3492]\nINFO:     Waiting for application startup.\n"
                  b"INFO:     Application startup complete.\n"
                  b"INFO:     Uvicorn running on http://0.0.0.0:23333 (Press CTRL+C to quit)\n")
        chunk: List[bytes] = []
        i = 0
        while written < target:
            i += 1
            r = rng.random()
            kind = next((k for c, k in cuts if r < c), "access")
            if kind in ("access", "access_error"):
                status = 200 if kind == "access" else rng.choice((400, 404, 500))
                reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}[status]
                line = (f'INFO:     10.{i % 250}.{i % 199}.{i % 97}:{30000 + i % 30000} - "POST {rng.choice(PATHS)} '
                        f'HTTP/1.1" {status} {reason}\n')
            elif kind == "stats":
                line = (f"[2026-11-22 03:{i // 3600 % 60:02d}:{i // 60 % 60:02d} DP0] Avg thr (in/out): {i % 997}.0 / "
                        f"{i % 113}.8 tokens/s, Server (succeeded/failed/routed/waiting): {i} / {i % 7} / 0 / 0, "
                        f"Engine (running/waiting): {i % 9} / 0, KV cache: {i % 100}.0%, \n")
            elif kind == "warning":
                line = (f"2026-11-22 03:{i // 3600 % 60:02d}:{i // 60 % 60:02d},{i % 1000:03d} - lmdeploy - WARNING - "
                        f"async_engine.py:{300 + i % 7} - Truncate max_new_tokens to {128 + i % 3968}\n")
            elif kind == "tm":
                line = f"[TM][WARNING] [RejectInvalidRequests] Skipping invalid stop request for id {i}, code = 4\n"
            else:
                line = (f"\rGenerating: {i % 100}%|{'#' * (i % 10)}{' ' * (10 - i % 10)}| {i % 100}/100 "
                        f"[00:{i % 60:02d}<00:00, {i % 50}.1it/s]\n")
            chunk.append(line.encode())
            lines += 1
            if len(chunk) >= 4096:
                data = b"".join(chunk)
                out.write(data)
                written += len(data)
                chunk = []
                if not failed and written >= fail_at:
                    out.write(failure)
                    written += len(failure)
                    lines += failure.count(b"\n")
                    failed = True
        data = b"".join(chunk)
        out.write(data)
        lines += 8
    return lines


def timed(argv: List[str], stdin_path: Optional[Path] = None, repeat: int = 3) -> Tuple[float, float, bytes, int, float]:
    """Fastest wall time, peak RSS, output, exit code, and CPU seconds (user+sys, with workers) of that run."""
    best = None
    rss = 0.0
    for _ in range(repeat):
        result = _wait4_child(argv, stdin_path)
        rss = max(rss, result[1])
        if best is None or result[0] < best[0]:
            best = result
    assert best is not None
    return best[0], rss, best[2], best[3], best[4]


def _wait4_child(argv: List[str], stdin_path: Optional[Path]) -> Tuple[float, float, bytes, int, float]:
    """Run a child and reap it with wait4 to get its own peak RSS (not the max over all children)."""
    stdin = open(stdin_path, "rb") if stdin_path else None
    out_fd, out_path = tempfile.mkstemp(prefix="lmdoctor-bench-")
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # installed packages run from bytecode
            os.chdir(str(REPO))
            if stdin is not None:
                os.dup2(stdin.fileno(), 0)
            else:
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
            os.dup2(out_fd, 1)
            errfd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(errfd, 2)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - t0
    if stdin is not None:
        stdin.close()
    os.close(out_fd)
    out = Path(out_path).read_bytes()
    os.unlink(out_path)
    code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
    rss = usage.ru_maxrss / 1024 if sys.platform.startswith("linux") else usage.ru_maxrss / (1 << 20)
    return seconds, rss, out, code, usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=200, help="log size in MB (default 200)")
    ap.add_argument("--heavy", action="store_true", help="a troubled server: ~10%% of lines are not plain access lines")
    ap.add_argument("--workers", type=int, default=None, help="pass --workers N to explain (1 = no worker processes)")
    ap.add_argument("--stdin", action="store_true", help="pipe the log into explain instead of naming the file")
    ap.add_argument("--no-facts", action="store_true", help="explain --no-facts (default: live facts, as users run it)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each program; the fastest counts (default 3)")
    ap.add_argument("--keep", metavar="PATH", help="write the log here and keep it (reused if it exists)")
    ap.add_argument("--lmdoctor-python", type=Path, help="time the lmdoctor installed for this interpreter "
                    f"instead of installing this checkout into {APP_VENV}")
    args = ap.parse_args()
    python = str(args.lmdoctor_python or lmdoctor_venv(APP_VENV))
    with tempfile.TemporaryDirectory(prefix="lmdoctor-bench-") as tmp:
        log = Path(args.keep) if args.keep else Path(tmp) / "server.log"
        t0 = time.perf_counter()
        if not (args.keep and log.is_file()):
            lines = generate(log, args.size, "heavy" if args.heavy else "default")
            print(f"generated {log}: {log.stat().st_size / 1e6:.0f} MB, {lines} lines in {time.perf_counter() - t0:.1f} s")
        size = log.stat().st_size
        bare_code = "import sys\nfor line in open(sys.argv[1], 'rb'):\n    pass\n"
        bare_s, bare_rss, _, _, bare_cpu = timed([python, "-c", bare_code, str(log)], repeat=args.repeat)
        # the console script, not `-m doctor`: from the repository root that would import the checkout
        script = str(Path(python).parent / "lmdoctor")
        cmd = [script, "explain", "--json"]
        if args.no_facts:
            cmd.append("--no-facts")
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        cmd.append("-" if args.stdin else str(log))
        _wait4_child([script, "--version"], None)  # writes the bytecode caches
        ex_s, ex_rss, out, code, ex_cpu = timed(cmd, stdin_path=log if args.stdin else None, repeat=args.repeat)
    try:
        doc = json.loads(out)
    except ValueError:
        print(f"explain printed no JSON (exit {code})")
        return 1
    top = doc["findings"][0] if doc.get("findings") else {}
    category = top.get("category", "none")
    ratio = ex_s / bare_s
    workers = doc.get("log", {}).get("workers")
    print(f"bare line read  : {bare_s:6.2f} s wall  {bare_cpu:5.2f} s cpu  {size / 1e6 / bare_s:6.0f} MB/s  "
          f"peak RSS {bare_rss:4.0f} MB")
    print(f"lmdoctor explain: {ex_s:6.2f} s wall  {ex_cpu:5.2f} s cpu  {size / 1e6 / ex_s:6.0f} MB/s  "
          f"peak RSS {ex_rss:4.0f} MB  (workers {workers}, {'stdin' if args.stdin else 'file'}, "
          f"facts {doc.get('facts_source')}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})")
    print(f"cpu-time ratio: {ex_cpu / max(bare_cpu, 1e-9):.2f}x (all work of explain, workers included)")
    print(f"ratio explain / bare read: {ratio:.2f}x (target <= {TARGET_RATIO:g}x: {'ok' if ratio <= TARGET_RATIO else 'MISSED'}); "
          f"peak RSS target < {TARGET_RSS_MB:g} MB: {'ok' if ex_rss < TARGET_RSS_MB else 'MISSED'}")
    print(f"top finding: {top.get('rule')} {category} at line "
          f"{(top.get('evidence') or [{}])[0].get('line')} (expected {EXPECTED}); exit {code}")
    return 0 if category == EXPECTED else 1


if __name__ == "__main__":
    sys.exit(main())
