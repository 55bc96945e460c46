"""explain / run / report / envs as shared output: redaction, rule selection, --quiet, progress lines.

Secrets are planted where each command really prints them (the launch line of a log, an evidence
line, the suspicious lines of an unexplained failure, the planned command, a fix that rewrites it);
every test also runs with --no-redact and asserts the secrets are then there, so a test cannot pass
because the secret simply never reached the output.
"""
from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest

from conftest import REPO, lmdoctor
from test_report import SECRET_LINES

FACTS = REPO / "fixtures" / "facts"
H100 = str(FACTS / "h100.json")
BALLAST = str(FACTS / "h100-ballast-8gib-free.json")
SEED = REPO / "fixtures" / "logs" / "oom_weight_load" / "seed-000-internlm2_5-7b-chat-turbomind.log"
PORT = REPO / "fixtures" / "logs" / "port_in_use" / "api-server-port-in-use.log"
HEALTHY = str(REPO / "fixtures" / "logs" / "healthy" / "api-server-healthy.log")

API_KEY = "sk-plantedapikey42abcdefgh"
HF = "hf_plantedInLogAbcdefghijklmnopqrstuv"
PROXY_PW = "proxyPw123"
URL_PW = "Pa55w0rd"
BEARER = "planted-bearer-0987654321"
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
SECRETS = [API_KEY, HF, PROXY_PW, URL_PW, "proxyuser:", "student:", BEARER, KEY_BODY, "/home/alice"]
USER_ENV = {"HOME": "/home/alice", "USER": "alice", "LOGNAME": "alice"}
PLANTED_CMD = f"lmdeploy serve api_server /home/alice/models/internlm2_5-7b-chat --server-port 23333 --api-keys {API_KEY}"


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Real fixture logs with secrets planted where explain quotes them."""
    d = tmp_path_factory.mktemp("planted")
    seed = SEED.read_text(encoding="utf-8").replace(
        "(lmdeploy) root@intern-studio-50193904:~# lmdeploy chat /root/models/internlm2_5-7b-chat",
        f"(lmdeploy) alice@intern-studio-50193904:~$ HF_TOKEN={HF} lmdeploy chat "
        f"/home/alice/models/internlm2_5-7b-chat --api-keys {API_KEY}")
    assert HF in seed
    port = PORT.read_text(encoding="utf-8").replace(
        "address already in use", f"address already in use (via proxy http://proxyuser:{PROXY_PW}@10.1.2.3:7890)")
    unexplained = "\n".join(SECRET_LINES[4:7] + [
        "Traceback (most recent call last):", '  File "/home/alice/app.py", line 3, in <module>',
        f"RuntimeError: mirror https://student:{URL_PW}@mirror.example.edu/simple refused "
        f"Authorization: Bearer {BEARER}"]) + "\n"
    out = {}
    for name, text in (("seed", seed), ("port", port), ("unexplained", unexplained)):
        out[name] = d / f"{name}.log"
        out[name].write_text(text, encoding="utf-8")
    return out


def leaked(text):
    return [s for s in SECRETS if s in text]


# -- redaction ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,extra,planted", [
    ("seed", [], [API_KEY, HF, "/home/alice"]),                           # the launch line in the header
    ("port", ["--cmd", PLANTED_CMD], [API_KEY, PROXY_PW, "/home/alice"]),  # evidence, and the fix's command
    ("unexplained", [], [URL_PW, BEARER]),                               # the most suspicious lines
])
def test_explain_text_and_json_never_show_planted_secrets(logs, name, extra, planted):
    args = ["explain", str(logs[name]), "--facts", H100, *extra]
    raw = lmdoctor(*args, "--no-redact", env=USER_ENV)
    assert all(s in raw.out for s in planted), "the secrets must reach the output for this test to mean anything"
    for as_json in ([], ["--json"]):
        r = lmdoctor(*args, *as_json, env=USER_ENV)
        assert r.code == raw.code and r.code in (1, 5), r.err
        assert leaked(r.out + r.err) == [], f"leaked into explain {' '.join(as_json)}"
        assert "[REDACTED]" in r.out
    assert lmdoctor(*args, "--json", "--no-redact", env=USER_ENV).json()["exit_code"] == raw.code


def test_explain_json_is_the_redacted_document_the_view_renders(logs):
    doc = lmdoctor("explain", str(logs["seed"]), "--facts", H100, "--json", env=USER_ENV).json()
    assert doc["subject"]["command"] == "HF_TOKEN=[REDACTED] lmdeploy chat ~/models/internlm2_5-7b-chat --api-keys [REDACTED]"
    text = lmdoctor("explain", str(logs["seed"]), "--facts", H100, env=USER_ENV).out
    assert doc["subject"]["command"] in text and doc["findings"][0]["title"] in text


def test_report_diagnoses_the_log_and_redacts_the_explain_section(logs):
    args = ["report", str(logs["port"]), "--facts", H100]
    planned = ["--", *PLANTED_CMD.split()]
    r = lmdoctor(*args, *planned, env=USER_ENV)
    assert r.code == 0, r.err
    section = r.out.split("### Diagnosis of the log (`lmdoctor explain`)\n", 1)[1].split("\n### ", 1)[0]
    assert "**NET101** Port 23333 is already in use" in section and "--server-port 23334" in section
    assert leaked(r.out) == []
    raw = lmdoctor(*args, "--no-redact", *planned, env=USER_ENV).out
    assert PROXY_PW in raw and API_KEY in raw
    ignored = lmdoctor(*args, "--ignore", "NET101", *planned, env=USER_ENV).out  # --ignore reaches the section
    section = ignored.split("### Diagnosis of the log (`lmdoctor explain`)\n", 1)[1].split("\n### ", 1)[0]
    assert "NET101" not in section and "no rule explains it" in section


def test_run_dry_run_redacts_the_planned_command(tmp_path):
    args = ["run", "--dry-run", "--facts", H100, "--", *PLANTED_CMD.split(), "--proxy-url",
            f"http://proxyuser:{PROXY_PW}@10.1.2.3:7890"]
    for as_json in ([], ["--json"]):
        r = lmdoctor(*args[:2], *as_json, *args[2:], env=USER_ENV)
        assert r.code == 0 and leaked(r.out + r.err) == [], r.out
    raw = lmdoctor(*args[:2], "--json", "--no-redact", *args[2:], env=USER_ENV).json()
    assert API_KEY in raw["would_run"] and PROXY_PW in raw["would_run"]


def test_run_of_a_real_failing_program_redacts_attempts_findings_and_progress_lines(tmp_path):
    """A real child prints the port-in-use failure with proxy credentials and exits; run explains it."""
    script = tmp_path / "server.py"
    script.write_text(
        "import sys\n"
        f"print(\"ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 23333): address already \"\n"
        f"      \"in use (via proxy http://proxyuser:{PROXY_PW}@10.1.2.3:7890)\")\n"
        "sys.exit(1)\n", encoding="utf-8")
    args = ["run", "--attempts", "1", "--quiet-child", "--log-dir", str(tmp_path / "logs"), "--", sys.executable,
            str(script), "--server-port", "23333", "--api-keys", API_KEY]
    for as_json in ([], ["--json"]):
        r = lmdoctor(*args[:6], *as_json, *args[6:], env=USER_ENV)
        assert r.code == 1, r.out + r.err
        assert leaked(r.out + r.err) == [], r.out + r.err
    doc = lmdoctor(*args[:6], "--json", *args[6:], env=USER_ENV).json()
    assert doc["findings"][0]["rule"] == "NET101" and doc["attempts"][0]["command"].endswith("--api-keys [REDACTED]")
    raw = lmdoctor(*args[:6], "--json", "--no-redact", *args[6:], env=USER_ENV)
    assert API_KEY in raw.out and PROXY_PW in raw.out and API_KEY in raw.err  # err: "attempt 1/1: …"


# -- rule selection ---------------------------------------------------------------------------------
def test_explain_ignore_and_select_choose_the_log_rules(logs):
    top = lmdoctor("explain", str(SEED), "--facts", H100, "--json").json()
    assert top["findings"][0]["rule"] == "MEM101" and top["summary"]["ignored"] == 0
    doc = lmdoctor("explain", str(SEED), "--facts", H100, "--json", "--ignore", "MEM101").json()
    assert doc["findings"][0]["rule"] != "MEM101" and [i["rule"] for i in doc["ignored"]] == ["MEM101"]
    only_net = lmdoctor("explain", str(SEED), "--facts", H100, "--select", "NET")
    assert only_net.code == 5 and "no rule explains it" in only_net.out and "MEM101" not in only_net.out
    bad = lmdoctor("explain", str(SEED), "--ignore", "NOPE999")
    assert bad.code == 2 and bad.err.count("\n") == 1 and "matches no rule" in bad.err


def test_config_files_apply_to_explain_and_run(tmp_path):
    xdg = tmp_path / "xdg"
    (xdg / "lmdoctor").mkdir(parents=True)
    (xdg / "lmdoctor" / "config.toml").write_text('ignore = ["NET101"]\n', encoding="utf-8")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.lmdoctor]\nignore = ["PY002"]\n', encoding="utf-8")
    env = {"XDG_CONFIG_HOME": str(xdg)}
    doc = lmdoctor("explain", str(PORT), "--facts", H100, "--json", env=env, cwd=str(project)).json()
    assert doc["verdict"] == "unexplained" and [i["rule"] for i in doc["ignored"]] == ["NET101"]
    assert doc["ignored"][0]["source"] == str(xdg / "lmdoctor" / "config.toml")
    planned = ["--", "lmdeploy", "chat", "/root/models/internlm2_5-7b-chat"]
    plain = lmdoctor("run", "--dry-run", "--json", "--facts", BALLAST, *planned, cwd=str(REPO)).json()
    assert "PY002" in [f["rule"] for f in plain["findings"]]
    run = lmdoctor("run", "--dry-run", "--json", "--facts", BALLAST, *planned, env=env, cwd=str(project)).json()
    assert "PY002" not in [f["rule"] for f in run["findings"]]
    assert {i["rule"] for i in run["ignored"]} == {"PY002", "NET101"}
    assert lmdoctor("run", "--dry-run", "--select", "MEM", "--json", "--facts", BALLAST, *planned).json()[
        "findings"][0]["rule"] == "MEM002"


# -- --quiet ----------------------------------------------------------------------------------------
def test_quiet_prints_only_problems():
    loud = lmdoctor("explain", str(PORT), "--facts", H100)
    quiet = lmdoctor("explain", str(PORT), "--facts", H100, "--quiet")
    assert loud.out.startswith("lmdoctor explain ") and "harmless warning(s) not shown" in loud.out
    assert quiet.code == loud.code == 1 and quiet.err == ""
    assert quiet.out.startswith("╭─ ✗ NET101") and "harmless" not in quiet.out and "Read from the log" not in quiet.out
    healthy = lmdoctor("explain", HEALTHY, "--no-facts", "--quiet")
    assert (healthy.code, healthy.out, healthy.err) == (0, "", "")
    dry = lmdoctor("run", "--dry-run", "--quiet", "--facts", H100, "--", "streamlit", "run", "app.py")
    assert dry.code == 0 and dry.err == "" and "would run" not in dry.out
    assert [line.split()[1] for line in dry.out.splitlines()] == ["PY001"]  # the one warning, nothing else


# -- progress lines: a status line on a terminal, nothing on pipes ----------------------------------
def test_nothing_extra_on_pipes(logs):
    for args in (["explain", str(PORT), "--facts", H100], ["explain", str(SEED), "--no-facts", "--workers", "2"],
                 ["envs", "--no-discover", "--path", str(REPO / "fixtures"), "--facts", H100],
                 ["run", "--dry-run", "--", "lmdeploy", "chat", "/root/models/internlm2_5-7b-chat"]):
        r = lmdoctor(*args)
        assert r.err == "", (args, r.err)
        assert "\x1b[" not in r.out and "\r" not in r.out, args


def _on_a_terminal(args, seconds=60.0):
    """Run lmdoctor with stderr on a pseudo-terminal (stdout piped); return (exit code, what the terminal got)."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "LMDOCTOR_LANG": "en", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "doctor", *args], stdout=subprocess.PIPE, stderr=slave,
                            stdin=subprocess.DEVNULL, cwd=str(REPO), env=env)
    os.close(slave)
    got, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    proc.stdout.close()
    os.close(master)
    return proc.returncode, got.decode("utf-8", "replace")


def test_run_shows_a_status_line_on_a_terminal_while_it_waits(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import time, sys\ntime.sleep(1.5)\nsys.exit(3)\n", encoding="utf-8")
    code, tty = _on_a_terminal(["run", "--attempts", "1", "--quiet-child", "--log-dir", str(tmp_path / "logs"), "--",
                                sys.executable, str(script)])
    assert code == 1
    assert "Attempt 1: waiting for" in tty, tty


def test_envs_shows_a_status_line_on_a_terminal():
    code, tty = _on_a_terminal(["envs", "--no-discover", "--path", str(REPO / "fixtures"), "--facts", H100])
    assert "Looking for Python environments" in tty, tty
