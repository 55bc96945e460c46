"""Explain's rewritten commands only use flags that exist in the lmdeploy version that will run them."""
from __future__ import annotations

from doctor.logs.corpus import case_facts
from doctor.logs.pipeline import Options, run

from conftest import REPO

NOT_TRUSTED = REPO / "fixtures" / "logs" / "trust_remote_code_missing" / "transformers-5.17.0-custom-code-not-trusted.log"
CMD = "lmdeploy serve api_server /root/models/InternVL2-2B --backend pytorch"


def _fix_commands(version: str):
    facts = case_facts({"snapshot": "h100", "set": {"pkg.lmdeploy.version": version}})
    result = run(Options(path=str(NOT_TRUSTED), data=NOT_TRUSTED.read_bytes(), facts_mode="given", facts=facts,
                         cmd=CMD, show_all=True, workers=1))
    top = result.report.findings[0]
    assert top.rule == "MODEL110"
    return [f.command for f in top.fixes if f.command]


def test_trust_remote_code_flag_offered_where_it_exists():
    assert _fix_commands("0.13.0") == [CMD + " --trust-remote-code"]
    assert _fix_commands("0.18.0") == [CMD + " --trust-remote-code"]


def test_trust_remote_code_flag_not_offered_before_0_13():
    # serve api_server has no --trust-remote-code in 0.5.0-0.12.x (rules/programs/lmdeploy.yaml)
    assert _fix_commands("0.12.0") == []
    assert _fix_commands("0.5.1") == []
