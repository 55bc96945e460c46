"""Redaction: every kind of secret planted in text, argv, JSON and fact snapshots is gone afterwards,
while look-alikes that carry diagnostic meaning survive untouched."""
from __future__ import annotations

import json

import pytest

from doctor.redact import MASK, PRESENT, Redactor, env_value, secret_name

from conftest import REPO

# kind -> (text with the secret planted, the secret values that must disappear)
PLANTED = {
    "api-keys flag": ("lmdeploy serve api_server /root/models/internlm2_5-7b-chat --api-keys sk-abc123 sk-def456 "
                      "--server-port 23333", ["sk-abc123", "sk-def456"]),
    "api-keys flag, continued lines": ("lmdeploy serve api_server /root/models/x \\\n  --api-keys \\\n  k3y-one \\\n"
                                       "  --tp 1", ["k3y-one"]),
    "api-keys=": ("--api-keys=topsecret42", ["topsecret42"]),
    "hf-token flag": ("huggingface-cli login --token hf_abcdefghijklmnopqrstuvwxyz01234567", ["hf_abcdefghijklmnopqrstuvwxyz01234567"]),
    "HF_TOKEN env": ("export HF_TOKEN=hf_ZYXWVUTSRQPONMLKJIHGFEDCBA98765432", ["hf_ZYXWVUTSRQPONMLKJIHGFEDCBA98765432"]),
    "HF_TOKEN env, short value": ("HF_TOKEN=abc12345 lmdeploy chat x", ["abc12345"]),
    "OpenAI key anywhere": ("using key sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c in client", ["sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"]),
    "OPENAI_API_KEY quoted": ('OPENAI_API_KEY="not-an-sk-format-9911"', ["not-an-sk-format-9911"]),
    "GitHub token": ("git clone https://github.com/x/y ghp_0123456789abcdefghijklmnopqrstuvwxyz", ["ghp_0123456789abcdefghijklmnopqrstuvwxyz"]),
    "GitHub fine-grained token": ("GH=github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv", ["github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv"]),
    "AWS keys": ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                 ["AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]),
    "Bearer header": ("curl -H 'Authorization: Bearer opaque-token-value-77' http://0.0.0.0:23333/v1/models",
                      ["opaque-token-value-77"]),
    "Basic auth header": ('curl -H "Authorization: Basic dXNlcjpwYXNzd29yZA==" http://x', ["dXNlcjpwYXNzd29yZA=="]),
    "cookie header": ("Cookie: session=abcdef0123; csrftoken=zzz999", ["abcdef0123", "zzz999"]),
    "JWT": ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r",
            ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r"]),
    "password in URL": ("pip install -i https://alice:hunter2@pypi.corp.example/simple lmdeploy", ["hunter2", "alice:hunter2"]),
    "proxy credentials": ("HTTPS_PROXY=http://proxyuser:pr0xyPass@10.0.0.1:3128", ["pr0xyPass", "proxyuser"]),
    "proxy-user flag": ("curl --proxy http://10.0.0.1:3128 --proxy-user bob:s3cret! http://x", ["s3cret!"]),
    "token in query string": ("GET https://example.com/resolve/main/model.safetensors?download=true&token=q1w2e3r4t5",
                              ["q1w2e3r4t5"]),
    "signed URL": ("https://cas-bridge.xethub.hf.co/x?X-Amz-Credential=AKIA%2F20250101&X-Amz-Signature=9f8e7d6c5b4a",
                   ["AKIA%2F20250101", "9f8e7d6c5b4a"]),
    "password= flag": ("mysql --password=Pa55word! -h db", ["Pa55word!"]),
    "JSON api_key": ('{"model": "internlm2", "api_key": "plain-secret-1234", "max_tokens": 512}', ["plain-secret-1234"]),
    "YAML password": ("db:\n  password: yamlSecret99\n  port: 5432", ["yamlSecret99"]),
    "use_auth_token string": ("AutoModel.from_pretrained(p, use_auth_token='custom-tok-1')", ["custom-tok-1"]),
    "camelCase apiKey": ("config = {apiKey: 'camelSecret77'}", ["camelSecret77"]),
    "printed argparse namespace": ("Namespace(api_keys=['nsKey-1', 'nsKey-2'], server_port=23333)", ["nsKey-1", "nsKey-2"]),
    "private key block": ("key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
                          "AAAAC3NzaC1lZDI1NTE5AAAAIBb7\n-----END OPENSSH PRIVATE KEY-----\nafter",
                          ["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", "AAAAC3NzaC1lZDI1NTE5AAAAIBb7"]),
    "private key block cut off": ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6",
                                  ["MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo", "4lgOEePzNm0tRgeLezV6"]),
    "escaped private key in JSON": ('{"key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0\\n-----END PRIVATE KEY-----"}',
                                    ["MIIEvQIBADANBgkqhkiG9w0"]),
}

# must come out exactly as they went in (no identity given: only secrets are looked for)
NEAR_MISSES = [
    "lmdeploy chat /root/models/internlm2_5-7b-chat --max-new-tokens 512",
    "python app.py --model /data/models/token-classifier --tokenizer /data/tok --num-tokens 8",
    "TurbomindEngineConfig(session_len=32768, max_batch_size=1, max_prefill_token_num=8192, num_tokens_per_iter=0)",
    "TOKENIZERS_PARALLELISM=false HF_HUB_ENABLE_HF_TRANSFER=1 HF_HUB_OFFLINE=1",
    "HF_TOKEN_PATH=/root/.cache/huggingface/token",
    "pip install scikit-learn sk-video hf_transfer risk-aware-sk-model",
    "git clone git@github.com:InternLM/lmdeploy.git",
    "KeyError: 'model.layers.0.attention.wqkv.weight' Missing key(s) in state_dict",
    "ssh -CNg -L 6006:127.0.0.1:6006 root@ssh.intern-ai.org.cn -p 46264",
    "Authorization failed because the server is down",
    "use_auth_token=True, trust_remote_code=True, token=None",
    "RuntimeError: [TM][ERROR] CUDA runtime error: out of memory /lmdeploy/src/turbomind/utils/memory_utils.cu:32",
    "https://hf-mirror.com/OpenGVLab/InternVL2-26B-AWQ/resolve/main/config.json",
    "PWD=/root/demo OLDPWD=/root",
]


def secrets_only() -> Redactor:
    return Redactor(identity=False, environ={})


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_planted_secret_is_removed_from_text(kind):
    text, secrets = PLANTED[kind]
    out = secrets_only().text(text)
    for secret in secrets:
        assert secret not in out, f"{kind}: {secret!r} survived in {out!r}"
    assert MASK in out


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_look_alikes_survive(text):
    assert secrets_only().text(text) == text


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_redaction_is_idempotent(kind):
    once = secrets_only().text(PLANTED[kind][0])
    assert secrets_only().text(once) == once


def test_names_that_hold_secrets():
    for name in ("HF_TOKEN", "OPENAI_API_KEY", "--api-keys", "api_key", "apiKey", "X-Amz-Signature",
                 "AWS_SECRET_ACCESS_KEY", "cmd.flag.--api-keys", "env.HF_TOKEN", "password", "Authorization"):
        assert secret_name(name), name
    for name in ("--max-new-tokens", "max_prefill_token_num", "session_len", "TOKENIZERS_PARALLELISM",
                 "HF_TOKEN_PATH", "PWD", "tokenizer", "keyring", "monkey", "key_layer"):
        assert not secret_name(name), name
    assert secret_name("HF_TOKEN_PATH", any_segment=True)  # env facts: presence only, costs nothing


def test_argv_keeps_boundaries_and_masks_flag_values():
    argv = ["lmdeploy", "serve", "api_server", "/root/models/internlm2_5-7b-chat", "--api-keys", "sk-one", "sk-two",
            "--hf-token=hf_x1y2z3w4", "--server-port", "23333", "--max-new-tokens", "512", "--token", "t0k3n-v",
            "/root/models/positional-after-single-flag"]
    out = secrets_only().argv(argv)
    assert out == ["lmdeploy", "serve", "api_server", "/root/models/internlm2_5-7b-chat", "--api-keys", MASK, MASK,
                   f"--hf-token={MASK}", "--server-port", "23333", "--max-new-tokens", "512", "--token", MASK,
                   "/root/models/positional-after-single-flag"]


def test_a_secret_seen_once_is_masked_everywhere():
    r = secrets_only()
    r.learn(["lmdeploy", "serve", "api_server", "m", "--api-keys", "mykey-2024"])
    log = "INFO: client sent key mykey-2024\nERROR: invalid api key mykey-2024 for /v1/chat"
    assert "mykey-2024" not in r.text(log)


def test_secrets_of_this_process_environment_are_masked_in_logs():
    r = Redactor(identity=False, environ={"MODELSCOPE_API_TOKEN": "ms-9f8e7d6c", "HF_HUB_OFFLINE": "1"})
    out = r.text("Downloading with ms-9f8e7d6c ... HF_HUB_OFFLINE=1")
    assert "ms-9f8e7d6c" not in out and out.endswith("HF_HUB_OFFLINE=1")


def test_json_document_and_data_structures():
    doc = {"findings": [{"rule": "CMD001", "evidence": [
        {"fact": "cmd.flag.--api-keys", "value": ["sk-zz-top-1"], "text": "cmd.flag.--api-keys = sk-zz-top-1"}],
        "fixes": [{"command": "lmdeploy serve api_server m --api-keys sk-zz-top-1 --cache-max-entry-count 0.2"}]}],
        "headers": {"Authorization": "Bearer abcdefgh12345678", "X-Request-Id": "42"},
        "client": {"api_key": "json-secret-55", "timeout": 30, "verify": True, "password": None}}
    out = secrets_only().data(doc)
    dumped = json.dumps(out)
    for secret in ("sk-zz-top-1", "abcdefgh12345678", "json-secret-55"):
        assert secret not in dumped
    assert out["client"]["timeout"] == 30 and out["client"]["verify"] is True and out["client"]["password"] is None
    assert out["headers"]["X-Request-Id"] == "42"
    assert "--cache-max-entry-count 0.2" in out["findings"][0]["fixes"][0]["command"]
    # text redaction of the serialised document finds the same secrets
    assert "json-secret-55" not in secrets_only().text(json.dumps(doc))


def test_fact_snapshot_with_planted_secrets():
    snap = json.loads((REPO / "fixtures" / "facts" / "h100.json").read_text())
    facts = snap["facts"]
    facts.update({
        "env.HTTPS_PROXY": "http://carol:proxyPw9@proxy.lab:8080",
        "env.HF_ENDPOINT": "https://user:endpointPw@hf-mirror.com",
        "cmd.argv": ["lmdeploy", "serve", "api_server", "/home/carol/models/InternVL2-26B-AWQ", "--api-keys", "snapKey-1"],
        "cmd.flag.--api-keys": "snapKey-1",
        "py.executable": "/home/carol/miniconda3/envs/lmdeploy/bin/python",
    })
    r = Redactor(environ={"HOME": "/home/carol"}, users=["carol"], hosts=["intern-studio-50193904"])
    out = json.dumps(r.data(snap))
    for secret in ("proxyPw9", "endpointPw", "snapKey-1", "carol"):
        assert secret not in out
    redacted = r.data(snap)["facts"]
    assert redacted["py.executable"] == "~/miniconda3/envs/lmdeploy/bin/python"
    assert redacted["gpu.0.name"] == "NVIDIA H100 80GB HBM3" and redacted["gpu.count"] == 1


def test_identity_home_user_and_host():
    r = Redactor(environ={"HOME": "/home/alice"}, users=["alice"], hosts=["intern-studio-50193904"])
    text = ("(lmdeploy) alice@intern-studio-50193904:~$ ls /home/alice/models /home/alice2/x /home/bob/data "
            "/Users/dave/m /root/models/internlm2_5-7b-chat alice_notes.txt malice")
    out = r.text(text)
    assert out == ("(lmdeploy) USER@HOST:~$ ls ~/models /home/USER/x /home/USER/data "
                   "/Users/USER/m /root/models/internlm2_5-7b-chat USER_notes.txt malice")
    assert r.text(out) == out


def test_root_is_kept():
    r = Redactor(environ={"HOME": "/root", "USER": "root"})
    text = "(lmdeploy) root@x:~# lmdeploy chat /root/models/internlm2_5-7b-chat"
    assert r.text(text) == text


def test_no_redact_passes_everything_through():
    r = Redactor(enabled=False, environ={"HF_TOKEN": "hf_zzzzzzzzzz"}, users=["alice"])
    for kind, (text, _) in PLANTED.items():
        assert r.text(text) == text
    assert r.argv(["--api-keys", "x1234"]) == ["--api-keys", "x1234"]
    assert r.data({"api_key": "x1234"}) == {"api_key": "x1234"}


def test_env_values_for_facts():
    assert env_value("HF_TOKEN", "hf_abc") == PRESENT
    assert env_value("HF_TOKEN_PATH", "/root/.cache/huggingface/token") == PRESENT
    assert env_value("HTTPS_PROXY", "http://u:p@proxy:3128") == f"http://{MASK}@proxy:3128"
    assert env_value("HF_ENDPOINT", "https://hf-mirror.com") == "https://hf-mirror.com"
    assert env_value("CUDA_VISIBLE_DEVICES", "0,1") == "0,1"


def test_facts_command_records_secret_variables_as_present(run_lmdoctor):
    """The real env probe in a real child: a snapshot can be pasted as it is."""
    env = {"HF_TOKEN": "hf_childprocesssecret0123456789abcd", "OPENAI_API_KEY": "sk-childsecret0000000000000000",
           "HTTPS_PROXY": "http://dana:childPw77@proxy.lab:3128", "HF_HUB_OFFLINE": "1"}
    r = run_lmdoctor("facts", "--json", "env.*", env=env)
    assert r.code == 0, r.err
    facts = r.json()["facts"]
    assert facts["env.HF_TOKEN"] == PRESENT and facts["env.OPENAI_API_KEY"] == PRESENT
    assert facts["env.HTTPS_PROXY"] == f"http://{MASK}@proxy.lab:3128"
    assert facts["env.HF_HUB_OFFLINE"] == "1"
    for secret in env.values():
        if secret != "1":
            assert secret not in r.out


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "fixtures" / "report").glob("*.log")))
def test_real_logs_come_out_unchanged(name):
    """Real lmdeploy logs carry no secrets; redaction must not touch a byte of them (identity on,
    for a user and host that do not appear in them)."""
    text = (REPO / "fixtures" / "report" / name).read_text(encoding="utf-8")
    r = Redactor(environ={"HOME": "/home/zed"}, users=["zed"], hosts=["worker-node-17"])
    assert r.text(text) == text
