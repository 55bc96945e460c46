"""The log reader and analyzer on crafted inputs: prefixes, redraws, structure, line numbers, workers."""
from __future__ import annotations

import gzip
import io

import pytest

from doctor.logs import normalize
from doctor.logs.analyze import _analyze_parallel, analyze_path, analyze_stream, split_ranges
from doctor.logs.matcher import Matcher, build
from doctor.logs.reader import LINE_CAP, LogInputError, ReadStats, iter_blocks, looks_binary
from doctor.logs.spec import compile_log_spec, compile_pattern
from doctor.ruleset import load_rules


@pytest.fixture(scope="module")
def rules():
    return load_rules().log_rules()


@pytest.fixture(scope="module")
def matcher(rules):
    return build(rules)


def analyze(text, matcher, block_size=1 << 22):
    data = text.encode() if isinstance(text, str) else text
    return analyze_stream(io.BytesIO(data), matcher, block_size=block_size)


def hit_lines(an, matcher, rule_id):
    return sorted({o.line for pid, h in an.hits.items() if matcher.owner[pid] == rule_id for o in h.occ.items()})


# -- normalisation -----------------------------------------------------------------------------
@pytest.mark.parametrize("line,level,logger,proc,msg", [
    (b"2026-11-22 03:01:49,394 - lmdeploy - WARNING - __init__.py:47 - For higher performance", "warning",
     "lmdeploy", "", b"For higher performance"),
    (b"INFO:     127.0.0.1:35482 - \"POST /v1/chat/completions HTTP/1.1\" 404 Not Found", "info", "uvicorn", "",
     b"127.0.0.1:35482 - \"POST /v1/chat/completions HTTP/1.1\" 404 Not Found"),
    (b"ERROR:    [Errno 98] error while attempting to bind", "error", "uvicorn", "", b"[Errno 98] error while attempting to bind"),
    (b"[TM][WARNING] gemm_config.in is not found", "warning", "TM", "", b"gemm_config.in is not found"),
    (b"[TM][FATAL][2026-01-02 03:04:05.678][memory_utils.cu:32] CUDA error: out of memory", "fatal", "TM", "",
     b"[memory_utils.cu:32] CUDA error: out of memory"),
    (b"[rank1]: Traceback (most recent call last):", "", "", "rank1", b"Traceback (most recent call last):"),
    (b"(RayWorkerWrapper pid=4242) RuntimeError: boom", "", "", "RayWorkerWrapper pid=4242", b"RuntimeError: boom"),
    (b"2024-05-01T10:00:00.123Z ERROR something broke", "error", "", "", b"something broke"),
    (b"WARNING:root:careful", "warning", "root", "", b"careful"),
    (b"RuntimeError: [TM][ERROR] CUDA runtime error: out of memory", "", "", "",
     b"RuntimeError: [TM][ERROR] CUDA runtime error: out of memory"),
])
def test_prefixes_are_stripped_keeping_level_logger_and_process(line, level, logger, proc, msg):
    assert normalize.strip_prefix(line) == (level, logger, proc, msg)


def test_clean_keeps_what_a_terminal_shows():
    raw = b"\x1b[93mLoading:  10%|#  | 1/10\rLoading: 100%|##########| 10/10\x1b[0m"
    assert normalize.clean(raw) == [b"Loading: 100%|##########| 10/10"]
    assert normalize.clean(b"half a line\rTraceback (most recent call last):") == \
        [b"half a line", b"Traceback (most recent call last):"]
    assert normalize.clean(b"a\x00b\x00c") == [b"abc"]


# -- reading -----------------------------------------------------------------------------------
def test_blocks_are_whole_lines_and_long_lines_keep_head_and_tail():
    body = b"start\n" + b"x" * (LINE_CAP * 3) + b"END\nafter\n"
    stats = ReadStats()
    pieces = [data[a:b] for data, a, b in iter_blocks(io.BytesIO(body), stats, block=1000)]
    joined = b"".join(pieces)
    assert all(p.endswith(b"\n") for p in pieces)
    assert joined.startswith(b"start\n") and joined.endswith(b"END\nafter\n")
    assert stats.cut_lines == 1 and b"bytes cut" in joined and len(joined) < LINE_CAP * 2


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (bytes(range(256)) * 64, "binary"),
    (b"y" * (LINE_CAP * 4), "single"),
])
def test_unreadable_inputs_raise_one_clear_error(data, message, matcher):
    with pytest.raises(LogInputError, match=message):
        analyze(data, matcher, block_size=4096)


def test_text_with_some_invalid_bytes_is_still_text():
    assert not looks_binary("日志 traceback 中文\n".encode() * 50 + b"\xff\xfe bad bytes\n" + b"\x00")
    assert looks_binary(bytes(range(256)) * 10)


def test_gzip_logs_are_read_transparently(tmp_path, matcher):
    path = tmp_path / "server.log.gz"
    path.write_bytes(gzip.compress(b"INFO:     Started server process [1]\n"
                                   b"ERROR:    [Errno 98] error while attempting to bind on address "
                                   b"('0.0.0.0', 23333): address already in use\n"))
    an = analyze_path(str(path), matcher)
    assert hit_lines(an, matcher, "NET101") == [2]


# -- line numbers and the fast path ---------------------------------------------------------------
NOISE = 'INFO:     10.0.0.{i}:5000 - "POST /v1/chat/completions HTTP/1.1" 200 OK\n'


def test_line_numbers_survive_noise_skipping_and_block_boundaries(matcher):
    lines = [NOISE.format(i=i % 250) for i in range(5000)]
    lines[1234] = "2026-11-22 03:01:49,394 - lmdeploy - WARNING - __init__.py:47 - For higher performance, please install FlashAttention-3 x\n"
    lines[4321] = 'INFO:     10.0.0.1:5000 - "POST /v1/chat/completions HTTP/1.1" 404 Not Found\n'
    lines[4999] = "ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 23333): address already in use"
    for block_size in (4096, 65536, 1 << 22):
        an = analyze("".join(lines), matcher, block_size=block_size)
        assert an.lines == 5000
        assert hit_lines(an, matcher, "RUN103") == [1235]
        assert hit_lines(an, matcher, "NET103") == [4322]
        assert hit_lines(an, matcher, "NET101") == [5000]
        assert an.processed == 3            # the 2xx access lines never reached Python


def test_repeated_lines_that_differ_only_in_digits_are_matched_by_their_own_digits():
    m = Matcher()
    p4 = compile_pattern(r"Skipping invalid \w+ request for id \d+, code = 4", "line", None, "t")
    p6 = compile_pattern(r"Skipping invalid \w+ request for id \d+, code = 6", "line", None, "t")
    m.add(p4, "CODE4")
    m.add(p6, "CODE6")
    text = "".join(f"[TM][WARNING] [RejectInvalidRequests] Skipping invalid stop request for id {i}, code = 4\n"
                   for i in range(50))
    text += "[TM][WARNING] [RejectInvalidRequests] Skipping invalid infer request for id 7, code = 6\n"
    an = analyze(text, m)
    assert an.hits[p4.id].count == 50
    assert [o.line for o in an.hits[p6.id].occ.items()] == [51]


def test_crlf_and_progress_redraws_keep_line_numbers(matcher):
    text = ("line one\r\n"
            "Loading weights:  10%|#   | 1/10\rLoading weights: 100%|####| 10/10\r\n"
            "\x1b[31mERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 23333): "
            "address already in use\x1b[0m\r\n")
    an = analyze(text, matcher)
    assert an.lines == 3
    assert hit_lines(an, matcher, "NET101") == [3]


# -- structure ---------------------------------------------------------------------------------
CHAINED = """\
Traceback (most recent call last):
  File "/root/app.py", line 3, in load
    return open(path)
FileNotFoundError: [Errno 2] No such file or directory: 'x.json'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/root/app.py", line 9, in main
    load()
RuntimeError: could not load the config
"""


def test_chained_tracebacks_form_one_group_with_the_cause_first(matcher):
    an = analyze(CHAINED, matcher)
    tbs = an.tracebacks.items()
    assert [tb.exc.short for tb in tbs] == ["FileNotFoundError", "RuntimeError"]
    assert tbs[0].group == tbs[1].group and tbs[1].chain_kind == "context"
    assert [e.chain_index for e in an.exceptions.items()] == [0, 1]
    assert an.facts.get("log.user_script") is None  # derived later, from frames
    assert [f.func for f in tbs[0].frames] == ["load"]


def test_interleaved_tracebacks_of_two_ranks_are_followed_separately(matcher):
    text = ("[rank0]: Traceback (most recent call last):\n"
            "[rank1]: Traceback (most recent call last):\n"
            '[rank0]:   File "/x/lmdeploy/pytorch/engine/engine.py", line 10, in start\n'
            '[rank1]:   File "/x/lmdeploy/pytorch/distributed.py", line 20, in init\n'
            "[rank1]: torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, unhandled system error\n"
            "[rank0]: RuntimeError: [TM][ERROR] CUDA runtime error: out of memory /x/memory_utils.cu:32\n")
    an = analyze(text, matcher)
    by_proc = {tb.proc: tb for tb in an.tracebacks.items()}
    assert by_proc["rank0"].exc.short == "RuntimeError" and by_proc["rank0"].frames[0].func == "start"
    assert by_proc["rank1"].exc.short == "DistBackendError" and by_proc["rank1"].frames[0].func == "init"


def test_process_header_and_remote_traceback(matcher):
    text = ("Process mp_engine_proc:\n"
            "Traceback (most recent call last):\n"
            '  File "/usr/lib/python3.12/multiprocessing/process.py", line 314, in _bootstrap\n'
            "    self.run()\n"
            "RuntimeError: No enough gpu memory for kv cache.\n"
            "concurrent.futures.process._RemoteTraceback: \n"
            '"""\n'
            "Traceback (most recent call last):\n"
            '  File "/x/worker.py", line 5, in work\n'
            "ValueError: bad shape\n"
            '"""\n')
    an = analyze(text, matcher)
    tbs = an.tracebacks.items()
    assert tbs[0].header == "Process mp_engine_proc:"
    assert [tb.exc.short for tb in tbs] == ["RuntimeError", "ValueError"]


def test_logged_multiline_exception_message_is_one_record(matcher):
    an = analyze_path("fixtures/logs/multiprocessing_main_guard/pipeline-missing-main-guard.log", matcher)
    first = an.exceptions.items()[0]
    assert first.line == 1 and first.tb == -1
    assert "bootstrapping phase" in first.message


def test_traceback_source_lines_are_not_events(matcher):
    an = analyze_path("fixtures/logs/oom_kv_cache/pytorch-engine-no-memory-for-kv-cache.log", matcher)
    assert hit_lines(an, matcher, "MEM103") == [41]  # not line 40 (`raise RuntimeError('No enough gpu memory ...')`)


def test_facts_read_from_lines(matcher):
    an = analyze_path("fixtures/logs/oom_weight_load/seed-000-internlm2_5-7b-chat-turbomind.log", matcher)
    facts = {k: v for k, (_, v) in an.facts.items()}
    assert facts["log.backend"] == "turbomind"
    assert facts["log.engine_config.session_len"] == 32768
    assert facts["log.lmdeploy_location"] == "/root/.conda/envs/lmdeploy/lib/python3.10/site-packages/lmdeploy"
    assert facts["log.oom.site"] == "memory_utils.cu:32"
    commands = [(c.line, c.kind, c.text) for c in an.commands.items()]
    assert (98, "prompt", "lmdeploy chat /root/models/internlm2_5-7b-chat") in commands
    assert any(c[2].startswith("lmdeploy lite auto_awq /root/models/InternVL2-26B --calib-dataset") for c in commands)


def test_torch_oom_numbers(matcher):
    an = analyze_path("fixtures/logs/oom_other_process/pytorch-engine-oom-other-process-holds-gpu.log", matcher)
    facts = {k: v for k, (_, v) in an.facts.items()}
    assert facts["log.oom.total_mib"] == pytest.approx(139.80 * 1024)
    assert facts["log.oom.other_mib"] == pytest.approx(136.86 * 1024)
    assert facts["log.oom.self_mib"] == pytest.approx(2.89 * 1024)
    assert facts["log.oom.other_pids"] == [4294]


# -- workers -----------------------------------------------------------------------------------
def test_forked_workers_give_the_same_analysis_as_one_pass(tmp_path, matcher):
    real = open("fixtures/logs/oom_other_process/pytorch-engine-oom-other-process-holds-gpu.log").read()
    parts = []
    for i in range(6000):
        parts.append(NOISE.format(i=i % 250))
        if i == 2500:
            parts.append(real)
        if i % 97 == 0:
            parts.append(f"2026-11-22 03:01:{i % 60:02d},394 - lmdeploy - WARNING - async_engine.py:3 - Truncate max_new_tokens to {i}\n")
    path = tmp_path / "big.log"
    path.write_text("".join(parts))
    ranges = split_ranges(str(path), path.stat().st_size, 4)
    assert len(ranges) == 4
    one = analyze_path(str(path), matcher, workers=1)
    many = _analyze_parallel(str(path), ranges, matcher, None)
    assert many.workers == 4 and many.lines == one.lines and many.processed == one.processed
    assert {pid: (h.count, [o.line for o in h.occ.items()]) for pid, h in many.hits.items()} == \
        {pid: (h.count, [o.line for o in h.occ.items()]) for pid, h in one.hits.items()}
    assert {k: v for k, v in many.facts.items()} == {k: v for k, v in one.facts.items()}
    assert [(e.line, e.type) for e in many.exceptions.items()] == [(e.line, e.type) for e in one.exceptions.items()]


# -- the log: spec -----------------------------------------------------------------------------
def test_spec_derives_literals_and_digit_sensitivity():
    p = compile_pattern(r"(?i)No enough gpu memory for (?P<what>kv cache|runtime)", "line", None, "t")
    assert p.literals == ("no enough gpu memory for ",) and p.icase and p.groups == ("what",)
    assert compile_pattern(r"code = [45]", "line", None, "t").digit_sensitive
    assert not compile_pattern(r"Tried to allocate \d+ MiB", "line", None, "t").digit_sensitive
    assert compile_pattern(r"(?:Errno 98|port in range)", "line", None, "t").literals == ("Errno 00", "port in range")


@pytest.mark.parametrize("data,error", [
    ({"any": [".*"]}, "no literal"),
    ({"any": ["ok literal"], "scope": "everywhere"}, "scope must be"),
    ({"any": ["ok literal"], "also": [{"any": ["xyz"], "within": "nearby"}]}, "within is"),
    ({"any": ["ok literal"], "level": ["loud"]}, "level must"),
    ({"any": ["(unclosed literal"]}, "bad regex"),
    ({"anything": ["ok literal"]}, "unknown key"),
])
def test_spec_rejects_bad_sections(data, error):
    with pytest.raises(ValueError, match=error):
        compile_log_spec(data, "rule: log")


def test_every_log_rule_pattern_compiles(rules):
    for rule in rules:
        for p in rule.log.all_patterns():
            assert p.regex.pattern == p.source


@pytest.mark.parametrize("line,kind", [
    ("Aborted (core dumped)", "abort"),
    ("bash: line 1:  4242 Segmentation fault      (core dumped) lmdeploy chat /m", "segfault"),
    ("Killed", "killed"),
    ("terminate called after throwing an instance of 'std::runtime_error'", "terminate"),
    ("/lmdeploy/src/turbomind/models/llama/LlamaBatch.cc:512: Assertion fail: ...", "assertion"),
    ("Fatal Python error: Segmentation fault", "segfault"),
])
def test_native_crashes_are_failures(line, kind, matcher):
    an = analyze("starting\n" + line + "\n", matcher)
    assert an.facts["log.crash"][1] == kind
    assert an.first_failure == 2


def test_a_failing_worker_is_redone_in_the_parent(tmp_path, matcher, monkeypatch):
    import os as _os

    import doctor.logs.analyze as analyze_mod
    path = tmp_path / "big.log"
    path.write_text("".join(NOISE.format(i=i % 250) for i in range(3000)) +
                    "ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 1): address already in use\n")
    parent = _os.getpid()
    real = analyze_mod._analyze_range

    def flaky(*args, **kwargs):
        if _os.getpid() != parent:
            raise MemoryError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(analyze_mod, "_analyze_range", flaky)
    ranges = split_ranges(str(path), path.stat().st_size, 3)
    an = _analyze_parallel(str(path), ranges, matcher, None)
    assert an.lines == 3001 and hit_lines(an, matcher, "NET101") == [3001]


def test_lines_logged_at_error_that_are_not_failures(matcher):
    an = analyze("2024-07-01 10:00:00,000 - lmdeploy - ERROR - async_engine.py:500 - Truncate max_new_tokens to 128\n"
                 "2024-07-01 10:00:01,000 - lmdeploy - ERROR - engine.py:12 - something really broke\n", matcher)
    assert [(m.line, m.kind) for m in an.markers.items()] == [(2, "error")]
