"""Computed values for fixes (doctor/logs/suggest.py): the arithmetic rules rely on."""
from __future__ import annotations

import pytest

from doctor.facts import FactSet
from doctor.logs.suggest import awq_work_dir, free_port, lower_ratio, weights_gib


def test_lower_ratio_from_a_torch_oom_message():
    # 24 GiB GPU, this process 22.14 GiB, 2 GiB requested, 1.5 GiB free, ratio 0.8:
    # weights ~16.1 GiB, KV ~6 GiB; it must shrink by 0.5 GiB + 2 GiB headroom -> 0.45
    log = {"log.oom.total_mib": 24207, "log.oom.self_mib": 22671, "log.oom.tried_mib": 2048, "log.oom.free_mib": 1536}
    assert lower_ratio(0.8, log) == 0.45


@pytest.mark.parametrize("ratio,expected", [(0.8, 0.4), (0.5, 0.25), (0.1, 0.05), (0.05, 0.05)])
def test_lower_ratio_without_numbers_halves_it(ratio, expected):
    assert lower_ratio(ratio, {}) == expected


def test_lower_ratio_never_goes_up_or_below_a_floor():
    log = {"log.oom.total_mib": 81920, "log.oom.self_mib": 80000, "log.oom.tried_mib": 20, "log.oom.free_mib": 10}
    assert 0.05 <= lower_ratio(0.9, log) <= 0.85


@pytest.mark.parametrize("model,out", [
    ("/root/models/internlm2_5-7b-chat", "/root/models/internlm2_5-7b-chat-4bit"),
    ("/root/models/internlm2_5-7b-chat/", "/root/models/internlm2_5-7b-chat-4bit"),
    ("internlm/internlm2_5-7b-chat", "./internlm2_5-7b-chat-4bit"),
])
def test_awq_work_dir(model, out):
    assert awq_work_dir(model) == out


def test_weights_from_files_else_from_the_name():
    assert weights_gib("/m/internlm2_5-7b-chat", FactSet()) == 13.0
    assert weights_gib("/m/internlm2-chat-1_8b", FactSet()) == 3.4
    assert weights_gib("/m/whatever", FactSet()) is None
    assert weights_gib("/m/x-7b", FactSet({"model.weights_mib": 14760})) == 14.4


def test_free_port_without_live_facts_is_the_next_port():
    assert free_port(23333, "0.0.0.0", live=False) == 23334
