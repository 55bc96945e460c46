"""Probes never raise: every registered probe, run directly on hostile but real inputs, returns facts
or unknowns. (The collector would turn an exception into "couldn't check" anyway; this proves the
probes themselves keep what they could observe.)"""
from __future__ import annotations

import json
import os

import pytest

from doctor.command import parse
from doctor.facts import REGISTRY, FactSet, ProbeContext, ProbeResult, Unknown, _load_probe_modules, collect
from doctor.facts.target import Target

_load_probe_modules()


def hostile_target(tmp_path) -> Target:
    site = tmp_path / "site"
    site.mkdir()
    (site / "weird.dist-info").mkdir()                        # no version in the name, no METADATA
    (site / "-.dist-info").mkdir()
    (site / "broken-1.0.egg-info").write_bytes(b"\xff\xfe not text")
    (site / "a_file_not_a_dir.dist-info").write_text("")
    (site / "lmdeploy").mkdir()
    (site / "lmdeploy" / "__init__.py").write_text("__version__ = ")
    (site / "torch").mkdir()
    (site / "torch" / "__init__.py").write_text("")
    (site / "torch-2.1.2.dist-info").mkdir()
    (site / "torch" / "version.py").write_bytes(b"\x00\x01cuda = ")
    (site / "unreadable.dist-info").mkdir(mode=0)
    return Target(python="/nonexistent/bin/python", is_self=False, prefix=str(tmp_path), version="not-a-version",
                  sys_path=["", "/nonexistent/site", str(site), str(site / "torch" / "version.py")])


@pytest.mark.parametrize("name", sorted(p.name for p in REGISTRY.values() if p.stage == 0))
def test_observation_probes_survive_hostile_input(name, tmp_path):
    planned = parse(["lmdeploy", "serve", "api_server", str(tmp_path / "no-model"), "--server-port", "99999",
                     "--server-name", "not an address"])
    ctx = ProbeContext(target=hostile_target(tmp_path), planned=planned, cwd=str(tmp_path / "gone"),
                       environ={"PATH": "", "CUDA_VISIBLE_DEVICES": "GPU-zzz,,7", "HF_HOME": "\x00bad"})
    result = REGISTRY[name].fn(ctx)
    assert isinstance(result, ProbeResult)
    json.dumps(result.facts, default=str)                     # snapshot-able


def test_packages_probe_reads_what_it_can_from_a_hostile_site(tmp_path):
    ctx = ProbeContext(target=hostile_target(tmp_path), cwd=str(tmp_path), environ={})
    facts = REGISTRY["packages"].fn(ctx).facts
    assert facts["pkg.torch.version"] == "2.1.2" and "pkg.torch.cuda_build" not in facts
    assert facts["pkg.lmdeploy.no_metadata"].endswith("lmdeploy") and "pkg.lmdeploy.version" not in facts
    assert "pkg.weird.version" not in facts and facts["pkg.weird.location"].endswith("site")


def test_derived_probe_survives_a_hand_edited_snapshot():
    base = FactSet({"gpu.count": 1, "gpu.0.visible": True, "gpu.0.cc": 9, "gpu.0.free_mib": "lots",
                    "gpu.0.total_mib": None, "gpu.0.processes": [{"name": "no pid"}, "junk"],
                    "pkg.count": "x", "pkg.lmdeploy.version": "0.5.1", "pkg.lmdeploy.requires": ["!!", 3],
                    "py.version": 3.10, "cuda.driver.version": "garbage", "disk.cwd.free_mib": "1"},
                   covered=["gpu.*", "gpu.*.*", "pkg.*.*", "pkg.count", "py.*", "cuda.driver.*", "disk.*.*"])
    facts = collect(ProbeContext(environ={}), stages=[1], base=base)
    assert facts.probes["derived"]["status"] in ("ok", "partial")
    assert facts.value("compat.lmdeploy.release") == ">=0.5.0,<0.5.3"
    assert not isinstance(facts.get("compat.lmdeploy.cuda_build"), Unknown)


def test_hung_probe_turns_into_unknown_within_its_timeout():
    """The collector's own guarantee, with a real blocked probe (no monkeypatching of lmdoctor code)."""
    import threading
    from doctor.facts import Probe
    gate = threading.Event()
    REGISTRY["test-hang"] = Probe("test-hang", {"test.hang.value": "never arrives"},
                                  lambda ctx: gate.wait(30) and ProbeResult({}), timeout_s=0.3, stage=7)
    try:
        facts = collect(ProbeContext(environ={}), stages=[7], base=FactSet())
    finally:
        gate.set()
        del REGISTRY["test-hang"]
    assert facts.probes["test-hang"]["status"] == "timeout"
    assert isinstance(facts.get("test.hang.value"), Unknown)
