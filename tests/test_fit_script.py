"""`lmdoctor check -- python app.py`: the pipeline(...) a script starts, read with ast (never run)."""
from __future__ import annotations

import pytest

from conftest import REPO, lmdoctor
from doctor.memory.script import ScriptError, read

H100 = str(REPO / "fixtures" / "facts" / "h100.json")

APP = """\
import os
from lmdoctor_never_imported import something  # the script is parsed, not imported
from lmdeploy import pipeline, TurbomindEngineConfig, PytorchEngineConfig

backend_config = TurbomindEngineConfig(session_len=8192, cache_max_entry_count=0.8)
if __name__ == "__main__":
    pipe = pipeline('/share/new_models/OpenGVLab/InternVL2-2B', backend_config=backend_config)
"""


def write(tmp_path, text, name="app.py"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_reads_the_pipeline_through_a_variable(tmp_path):
    spec = read(write(tmp_path, APP))
    assert spec.model == "/share/new_models/OpenGVLab/InternVL2-2B" and spec.backend == "turbomind"
    assert spec.config == {"session_len": 8192, "cache_max_entry_count": 0.8} and spec.line == 7


def test_reads_an_inline_pytorch_config(tmp_path):
    spec = read(write(tmp_path, "import lmdeploy\np = lmdeploy.pipeline(model_path='internlm/internlm2_5-7b-chat', "
                                "backend_config=lmdeploy.PytorchEngineConfig(tp=2, eager_mode=True))\n"))
    assert spec.backend == "pytorch" and spec.config == {"tp": 2, "eager_mode": True}


@pytest.mark.parametrize("text,reason", [
    ("from lmdeploy import pipeline\npipeline(os.environ['MODEL'])\n", "computed at run time"),
    ("from lmdeploy import pipeline, TurbomindEngineConfig\n"
     "pipeline('m', backend_config=TurbomindEngineConfig(cache_max_entry_count=float(x)))\n", "computed at run time"),
    ("from lmdeploy import pipeline\npipeline('m', backend_config=make_config())\n", "can read"),
    ("def broken(:\n", "not valid Python"),
])
def test_what_cannot_be_read_is_said(tmp_path, text, reason):
    with pytest.raises(ScriptError, match=reason):
        read(write(tmp_path, text))


def test_a_script_without_pipeline_starts_nothing(tmp_path):
    assert read(write(tmp_path, "print('hello')\n")) is None
    run = lmdoctor("check", "--json", "--facts", H100, "--vram", "8GiB", "--", "python", write(tmp_path, "print(1)\n"))
    assert "fit" not in run.json()


def test_check_predicts_the_scripts_pipeline(tmp_path):
    run = lmdoctor("check", "--json", "--facts", H100, "--vram", "8GiB", "--lmdeploy-version", "0.5.1", "--",
                   "python", write(tmp_path, APP))
    fit = run.json()["fit"]
    assert fit["entry"] == "pipeline" and fit["engine"]["settings"]["session_len"] == 8192
    assert fit["verdict"] == "fits_with_changes" and fit["failed_stage"] == "image"
    assert fit["suggested_command"].startswith("from lmdeploy import pipeline, TurbomindEngineConfig\npipe = pipeline(")
    assert fit["suggested_changes"][0].startswith("cache_max_entry_count 0.8 → 0.")


def test_unreadable_script_is_unknown_not_a_crash(tmp_path):
    run = lmdoctor("check", "--json", "--facts", H100, "--vram", "8GiB", "--", "python",
                   write(tmp_path, "from lmdeploy import pipeline\npipeline(MODEL)\n"))
    fit = run.json()["fit"]
    assert fit["verdict"] == "unknown" and "computed at run time" in fit["reason"] and "Traceback" not in run.err
    missing = lmdoctor("check", "--json", "--facts", H100, "--", "python", str(tmp_path / "nope.py"))
    assert missing.json()["fit"]["verdict"] == "unknown" and "not a file here" in missing.json()["fit"]["reason"]
