"""The buffer planner: no two tensors live at the same time overlap, checked from the plan itself."""

from __future__ import annotations

import numpy as np
import pytest

import wgnn
from wgnn import zoo
from wgnn.memory import Block, check_plan, lower_bound, plan_buffers


def test_random_lifetimes_never_overlap():
    rng = np.random.default_rng(7)
    for _ in range(50):
        blocks = []
        for i in range(int(rng.integers(1, 40))):
            first = int(rng.integers(0, 30))
            blocks.append(Block(i, int(rng.integers(1, 5000)), first, first + int(rng.integers(0, 8))))
        plan = plan_buffers(blocks, alignment=64)
        assert check_plan(blocks, plan.offsets) == []
        assert all(off % 64 == 0 for off in plan.offsets.values())
        assert plan.report.lower_bound_bytes <= plan.arena_bytes <= plan.report.naive_bytes + 64 * len(blocks)


def test_disjoint_lifetimes_share_bytes():
    blocks = [Block("a", 4096, 0, 1), Block("b", 2048, 1, 2), Block("c", 4096, 2, 3)]
    plan = plan_buffers(blocks, alignment=256)
    assert plan.offsets["a"] == plan.offsets["c"] == 0
    assert plan.arena_bytes == 6144 == lower_bound(blocks)


def test_check_plan_detects_a_clash():
    blocks = [Block("a", 100, 0, 2), Block("b", 100, 1, 3)]
    assert check_plan(blocks, {"a": 0, "b": 50}) == [("a", "b")]


def test_oversized_tensor_is_rejected():
    with pytest.raises(ValueError, match="max-storage-buffer-binding-size"):
        plan_buffers([Block("big", 1000, 0, 0)], max_binding_size=512)


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_zoo_plans_are_valid_and_near_the_lower_bound(device, name):
    session = wgnn.InferenceSession(zoo.build(name))
    exe = session._exe
    assert check_plan(exe.blocks, exe.plan.offsets) == []
    report = session.memory_report()
    assert report.planned_bytes <= 1.15 * report.lower_bound_bytes
    assert report.naive_bytes > 3 * report.planned_bytes
