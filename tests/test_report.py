"""`lmdoctor report`: the Markdown document, its redaction, and the section hook other commands use."""
from __future__ import annotations

import re

import pytest

from doctor import report as report_mod
from doctor.facts import snapshot
from doctor.redact import MASK, Redactor

from conftest import REPO

FACTS = REPO / "fixtures" / "facts"
LOGS = REPO / "fixtures" / "report"
BALLAST = str(FACTS / "h100-ballast-8gib-free.json")
OOM_LOG = LOGS / "internlm2_5-7b-chat-tm-oom.log"
PLANNED = ["lmdeploy", "chat", "/root/models/internlm2_5-7b-chat"]

# secrets planted around a real log, in the planned command and in the environment of the child
SECRET_LINES = [
    "$ export HF_TOKEN=hf_plantedInLogAbcdefghijklmnopqrstuv",
    "$ pip config set global.index-url https://student:Pa55w0rd@mirror.example.edu/simple",
    "$ curl -H 'Authorization: Bearer planted-bearer-0987654321' http://0.0.0.0:23333/v1/models",
    "$ export https_proxy=http://proxyuser:proxyPw123@10.1.2.3:7890",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
    "-----END OPENSSH PRIVATE KEY-----",
    "INFO: using key sk-plantedapikey42 for /home/alice/models/internlm2_5-7b-chat",
]
SECRETS = ["hf_plantedInLogAbcdefghijklmnopqrstuv", "Pa55w0rd", "student:", "planted-bearer-0987654321",
           "proxyPw123", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
           "sk-plantedapikey42", "hf_envOnlySecretZyxwvutsrqponmlkjihg", "/home/alice", "alice"]
CHILD_ENV = {"HOME": "/home/alice", "USER": "alice", "LOGNAME": "alice",
             "HF_TOKEN": "hf_envOnlySecretZyxwvutsrqponmlkjihg"}


@pytest.fixture
def planted_log(tmp_path):
    path = tmp_path / "chat.log"
    real = OOM_LOG.read_text(encoding="utf-8")
    path.write_text("\n".join(SECRET_LINES) + "\n" + real +
                    "note: the env token hf_envOnlySecretZyxwvutsrqponmlkjihg was set\n", encoding="utf-8")
    return path


def test_report_has_every_part_and_exits_0(run_lmdoctor, planted_log):
    r = run_lmdoctor("report", str(planted_log), "--facts", BALLAST, "--", *PLANNED, "--api-keys", "sk-plantedapikey42",
                     env=CHILD_ENV)
    assert r.code == 0, r.err
    md = r.out
    for heading in ("## lmdoctor report", "### Environment", "### Planned command", "### Pre-flight (`lmdoctor check`)",
                    "### Log"):
        assert heading in md
    assert "| GPU 0 | NVIDIA H100 80GB HBM3 sm90, 8.0 GiB free of 79.6 GiB; other processes hold 71.2 GiB |" in md
    assert "| NVIDIA | driver 580.159.04 (CUDA ≤ 13.0) |" in md
    assert f"lmdeploy chat /root/models/internlm2_5-7b-chat --api-keys {MASK}" in md
    # the explain section diagnoses the log with the facts check saw; the raw tail is then folded
    explain = md.split("### Diagnosis of the log (`lmdoctor explain`)\n", 1)[1].split("\n### ", 1)[0]
    assert explain.lstrip().startswith("- ✗ **MEM104** Another process holds most of the GPU memory")
    assert "<details><summary>Last 40 of" in md
    # the last 40 lines of the log, in a fenced block, with the real root-cause line
    lines = re.search(r"```+text\n(.*?)\n```+", md, re.S).group(1).splitlines()
    assert len(lines) == 40
    assert lines[-2].startswith("RuntimeError: [TM][ERROR] CUDA runtime error: out of memory "
                                "/lmdeploy/src/turbomind/utils/memory_utils.cu:32")


def test_no_planted_secret_survives(run_lmdoctor, planted_log):
    r = run_lmdoctor("report", str(planted_log), "--facts", BALLAST, "--", *PLANNED, "--api-keys", "sk-plantedapikey42",
                     env=CHILD_ENV)
    assert r.code == 0, r.err
    for secret in SECRETS:
        assert secret not in r.out, f"{secret!r} leaked into the report"
    assert "~/models/internlm2_5-7b-chat" in r.out            # home → ~, the path itself stays useful
    assert "/root/models/internlm2_5-7b-chat" in r.out        # /root is kept on purpose
    assert "-----BEGIN OPENSSH PRIVATE KEY-----" in r.out      # the reader still sees what was there


def test_no_redact_keeps_everything(run_lmdoctor, planted_log):
    r = run_lmdoctor("report", str(planted_log), "--facts", BALLAST, "--no-redact", "--", *PLANNED,
                     "--api-keys", "sk-plantedapikey42", env=CHILD_ENV)
    assert r.code == 0
    assert "sk-plantedapikey42" in r.out and "Pa55w0rd" in r.out and "/home/alice" in r.out
    assert "Not redacted" in r.out


def test_output_file_and_chinese(run_lmdoctor, tmp_path):
    out = tmp_path / "report.md"
    r = run_lmdoctor("--lang", "zh", "report", str(OOM_LOG), "--facts", BALLAST, "-o", str(out), "--", *PLANNED)
    assert r.code == 0 and r.out == "" and str(out) in r.err
    md = out.read_text(encoding="utf-8")
    for heading in ("## lmdoctor 诊断报告", "### 环境", "### 计划执行的命令", "### 预检（`lmdoctor check`）", "### 日志"):
        assert heading in md
    assert "### 日志诊断（`lmdoctor explain`）\n\n- ✗ **MEM104** 另一个进程占用了大部分显存" in md
    assert run_lmdoctor("report", "--facts", BALLAST, "-q", "-o", str(out)).err == ""


def test_without_log_or_command(run_lmdoctor):
    r = run_lmdoctor("report", "--facts", str(FACTS / "cpu-no-gpu.json"))
    assert r.code == 0
    assert "### Log" not in r.out and "### Planned command" not in r.out
    assert "- ✗ **GPU001** No NVIDIA GPU is visible" in r.out
    assert "```shell\n    docker run --gpus all ...\n    ```" in r.out


def test_double_dash_separates_the_planned_command_from_the_log(run_lmdoctor):
    r = run_lmdoctor("report", "--facts", BALLAST, "--", "lmdeploy", "serve", "api_server", "/root/models/x")
    assert r.code == 0 and "lmdeploy serve api_server /root/models/x" in r.out and "### Log" not in r.out


def test_log_from_stdin_with_fences_and_colours(run_lmdoctor):
    log = b"\x1b[31mERROR\x1b[0m first\n```\nnot the end of the block\n\xff\xfe bad bytes\nlast line\n"
    r = run_lmdoctor("report", "-", "--facts", BALLAST, input=log)
    assert r.code == 0
    assert "````text\nERROR first\n```\nnot the end of the block\n\ufffd\ufffd bad bytes\nlast line\n````" in r.out


@pytest.mark.parametrize("args,needle", [
    (["report", "/nonexistent/chat.log"], "cannot read log /nonexistent/chat.log"),
    (["report", "--facts", "/nonexistent.json"], "/nonexistent.json"),
    (["report", "--facts", BALLAST, "-o", "/nonexistent/dir/report.md"], "cannot write /nonexistent/dir/report.md"),
])
def test_bad_input_is_one_line_and_exit_2(run_lmdoctor, args, needle):
    r = run_lmdoctor(*args)
    assert r.code == 2 and needle in r.err and r.err.count("\n") == 1 and "Traceback" not in r.err


# -- the section hook (what `explain` plugs into) -----------------------------------------------
def demo_explain(ctx):
    """A section like the one `explain` will register: quotes the log's last line and the key it saw."""
    last = ctx.log_text.strip().splitlines()[-1]
    return report_mod.Section("explain", f"Root cause line: `{last}` (key {ctx.planned.argv[-1]})", diagnoses_log=True)


def broken_section(ctx):
    raise RuntimeError("boom")


def _context(log_text):
    from doctor.commands.check import evaluate
    from doctor.gather import Sources
    check, facts, planned = evaluate(Sources(facts_file=BALLAST, planned=PLANNED + ["--api-keys", "sk-hooksecret9"]))
    return report_mod.SectionContext(facts=facts, check=check, planned=planned, log_text=log_text, log_name="chat.log",
                                     redactor=Redactor(environ={}, users=[], hosts=[]))


def test_registered_section_replaces_the_explain_note(monkeypatch):
    monkeypatch.setattr(report_mod, "sections", {})
    report_mod.register("explain", "test_report:demo_explain")
    md = report_mod.build(_context(OOM_LOG.read_text(encoding="utf-8")))
    assert "### explain\n\nRoot cause line: `RuntimeError: [TM][ERROR] CUDA runtime error: out of memory" in md
    assert "is not available" not in md
    assert "<details><summary>Last 31 of 31 lines of `chat.log`:</summary>" in md  # the raw tail is folded
    assert "sk-hooksecret9" not in md  # the section's own text is redacted too


def test_a_failing_or_missing_section_is_a_note(monkeypatch):
    monkeypatch.setattr(report_mod, "sections", {"explain": "test_report:broken_section",
                                                 "run": "doctor.commands.no_such_module:section"})
    md = report_mod.build(_context("one line\n"))
    assert "The explain section could not be produced: RuntimeError: boom" in md
    assert "The run section could not be produced: ModuleNotFoundError" in md
    assert "Last 1 of 1 lines" in md


def test_snapshot_facts_are_redacted_in_the_table(tmp_path, run_lmdoctor):
    facts = snapshot.load(BALLAST)
    facts.values["py.executable"] = "/home/alice/miniconda3/envs/lmdeploy/bin/python"
    facts.values["env.HTTPS_PROXY"] = "http://alice:hunter22@proxy:3128"
    path = tmp_path / "facts.json"
    import json
    path.write_text(json.dumps(snapshot.to_json(facts)), encoding="utf-8")
    r = run_lmdoctor("report", "--facts", str(path), env=CHILD_ENV)
    assert r.code == 0
    assert "`~/miniconda3/envs/lmdeploy/bin/python`" in r.out and f"`HTTPS_PROXY=http://{MASK}@proxy:3128`" in r.out
    assert "hunter22" not in r.out and "alice" not in r.out
