"""The parts of `lmdoctor envs` on their own: conda configuration, env layouts, requirements, ranking.

Env folders here are conda-style trees (``conda-meta/`` records in conda's format) and real venvs; the
requirement cases start from the real H100 snapshot and change one fact, like rule cases.
"""
from __future__ import annotations

import os

import envbuild
import pytest
from conftest import lmdoctor

from doctor import selftest
from doctor.envs.discover import Candidate, discover
from doctor.envs.job import Job, requirements
from doctor.envs.scan import Env, python_version, scan_env
from doctor.envs.score import Verdict, activate_command, rank
from doctor.facts.packages import add_conda_packages, conda_records
from doctor.model import Severity


def conda_env(prefix, records):
    envbuild.conda_meta(prefix, records)
    (prefix / "lib" / f"python{envbuild.PY}" / "site-packages").mkdir(parents=True)
    return prefix


def test_condarc_envs_dirs_are_searched_and_named_for_conda_activate(tmp_path):
    home = tmp_path / "home"
    (home / "work-envs").mkdir(parents=True)
    (home / ".condarc").write_text("envs_dirs:\n  - ~/work-envs\n")
    conda_env(home / "work-envs" / "vlm", [envbuild.PYTHON_RECORD])
    environ = {"HOME": str(home)}
    found = discover(environ, str(tmp_path), defaults=True)
    cand = found.candidates[os.path.realpath(home / "work-envs" / "vlm")]
    assert cand.sources == ["conda envs_dirs"]
    env = scan_env(cand, environ, str(tmp_path))
    assert (env.kind, env.name, env.python_version) == ("conda", "vlm", envbuild.PY_FULL)
    assert activate_command(env, environ) == "conda activate vlm"


def test_a_broken_condarc_is_reported_and_the_rest_still_searched(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".condarc").write_text("envs_dirs: [unclosed\n")
    conda_env(home / ".conda" / "envs" / "ok", [envbuild.PYTHON_RECORD])
    found = discover({"HOME": str(home)}, str(tmp_path))
    assert [p.code for p in found.problems] == ["bad_condarc"]
    assert os.path.realpath(home / ".conda" / "envs" / "ok") in found.candidates


def test_symlink_loops_and_missing_paths_never_stop_the_walk(tmp_path):
    root = tmp_path / "envs"
    (root / "deep" / "deeper").mkdir(parents=True)
    (root / "deep" / "deeper" / "back").symlink_to(root)
    (root / "knot").symlink_to(root / "knot")
    conda_env(root / "zzz", [envbuild.PYTHON_RECORD])
    found = discover({"HOME": str(tmp_path)}, str(tmp_path), paths=[str(root), str(tmp_path / "gone")],
                     defaults=False, depth=4)
    assert list(found.candidates) == [os.path.realpath(root / "zzz")]
    assert sorted((os.path.relpath(p.path, tmp_path), p.code) for p in found.problems) == [
        ("envs/deep/deeper/back", "symlink_loop"), ("envs/knot", "symlink_loop"), ("gone", "unreadable_dir")]


@pytest.mark.parametrize("build,expected", [("py3.10_cuda12.1_cudnn8.9.2_0", "12.1"), ("py3.10_cpu_0", "cpu")])
def test_conda_pytorch_records_give_torch_and_its_cuda_build(tmp_path, build, expected):
    conda_env(tmp_path, [("pytorch", "2.1.2", build, "pytorch"), envbuild.PYTHON_RECORD])
    assert conda_records(str(tmp_path))["pytorch"] == ("2.1.2", build)
    facts = {}
    add_conda_packages(str(tmp_path), facts)
    assert facts == {"pkg.torch.version": "2.1.2", "pkg.torch.cuda_build": expected}


def test_pip_metadata_wins_over_a_conda_record(tmp_path):
    conda_env(tmp_path, [("pytorch", "2.1.2", "py3.10_cuda12.1_cudnn8.9.2_0", "pytorch")])
    facts = {"pkg.torch.version": "2.4.0", "pkg.torch.cuda_build": "12.4"}
    add_conda_packages(str(tmp_path), facts)
    assert facts == {"pkg.torch.version": "2.4.0", "pkg.torch.cuda_build": "12.4"}


@pytest.mark.parametrize("cfg,expected", [({"version": "3.11.7"}, "3.11.7"),                 # python -m venv
                                          ({"version_info": "3.10.12.final.0"}, "3.10.12")])  # virtualenv
def test_python_version_of_a_venv_comes_from_pyvenv_cfg(tmp_path, cfg, expected):
    assert python_version(str(tmp_path), "venv", cfg) == expected


def test_python_version_falls_back_to_the_lib_folder(tmp_path):
    (tmp_path / "lib" / "python3.9" / "site-packages").mkdir(parents=True)
    assert python_version(str(tmp_path), "system", {}) == "3.9"


def test_a_real_venv_is_read_without_running_it(tmp_path):
    prefix = envbuild.make_venv(tmp_path / "plain")
    env = scan_env(Candidate(str(prefix), ["--path"]), {"HOME": str(tmp_path)}, str(tmp_path))
    assert (env.kind, env.name, env.broken, env.python_version) == ("venv", "plain", False, envbuild.PY_FULL)
    assert env.site_dirs == [str(envbuild.site_packages(prefix))] and env.facts["pkg.count"] == 0
    assert activate_command(env, {}) == f"source {prefix}/bin/activate"


def case(**kw):
    base = {"snapshot": "h100", "set": {"pkg.lmdeploy.version": "0.5.1", "pkg.torch.version": "2.1.2",
                                        "pkg.torch.cuda_build": "12.1", "pkg.transformers.version": "4.38.2",
                                        "pkg.lmdeploy.turbomind": True, "pkg.gradio.version": "4.36.1",
                                        "pkg.torchvision.version": "0.16.2", "pkg.numpy.version": "1.26.4",
                                        "pkg.triton.version": "2.1.0"}}
    base["set"].update(kw.pop("set", {}))
    base.update(kw)
    facts, planned = selftest.case_facts(base)
    return [(r.code, r.severity) for r in requirements(facts, Job.from_planned(planned))]


XCOMPOSER = "lmdeploy serve gradio /share/new_models/Shanghai_AI_Laboratory/internlm-xcomposer2-vl-1_8b"


def test_requirements_of_the_tutorial_stack_on_an_h100_are_met():
    assert case(cmd="lmdeploy serve gradio /share/new_models/OpenGVLab/InternVL2-2B", set={"pkg.timm.version": "1.0.7"}) == []


def test_xcomposer2_needs_turbomind_and_an_lmdeploy_that_still_has_it():
    assert case(cmd=XCOMPOSER) == []
    assert ("turbomind_required", Severity.ERROR) in case(cmd=XCOMPOSER, set={"pkg.lmdeploy.turbomind": False})
    assert ("turbomind_backend", Severity.ERROR) in case(cmd=XCOMPOSER + " --backend pytorch")
    dropped = case(cmd="lmdeploy serve api_server /m/internlm-xcomposer2-vl-1_8b",
                   set={"pkg.lmdeploy.version": "0.14.0", "pkg.torch.version": "2.8.0", "pkg.transformers.version": "4.57.0",
                        "pkg.torchvision.version": "0.23.0", "pkg.triton.version": "3.4.0"})
    assert dropped == [("model_removed", Severity.ERROR)]


def test_serve_gradio_needs_gradio():
    assert case(cmd="lmdeploy serve gradio /m/internlm2_5-7b-chat", unset=["pkg.gradio.version"]) == \
        [("subcommand_needs", Severity.ERROR)]


def test_an_old_driver_for_torchs_cuda_build_blocks_the_env():
    assert case(set={"cuda.driver.version": "470.82.01"}, unset=["cuda.driver.max_cuda"]) == \
        [("driver_too_old", Severity.ERROR), ("driver_too_old", Severity.ERROR)]


def test_side_by_side_metadata_and_unknown_releases():
    assert case(set={"pkg.torch.duplicates": ["2.1.2", "2.4.0"]}) == [("duplicates", Severity.ERROR)]
    assert case(set={"pkg.lmdeploy.version": "0.4.2"}) == [("unknown_release", Severity.WARNING)]
    assert case(set={"pkg.transformers.version": "4.44.0"}) == [("transformers_pt", Severity.WARNING)]


def test_ranking_prefers_ready_then_fewer_reasons_then_the_active_env_then_newer_lmdeploy():
    def v(name, verdict, reasons=0, active=False, lmd=None):
        env = Env(prefix=f"/e/{name}", kind="venv", name=name, sources=[], active=active,
                  facts={"pkg.lmdeploy.version": lmd} if lmd else {})
        return Verdict(env, verdict, [None] * reasons)
    ranked = rank([v("broken", "broken", 1), v("old", "ready", lmd="0.5.1"), v("warn", "warnings", 1),
                   v("new", "ready", lmd="0.6.0"), v("here", "ready", active=True, lmd="0.5.1"), v("no", "unsuitable", 2)])
    assert [x.env.name for x in ranked] == ["here", "new", "old", "warn", "no", "broken"]


def test_a_plain_check_without_a_planned_command_does_not_scan():
    doc = lmdoctor("facts", "--json").json()
    assert doc["probes"]["envs"]["status"] == "ok"
    assert not [k for k in doc["facts"] if k.startswith("envs.")]
