"""What the run reads of the machine it ran on: the CPU time the hypervisor stole."""

from __future__ import annotations

import pytest

from bench.run import STEAL, cpu_ticks, steal_share


def test_cpu_ticks_reads_the_machines_cpu_time_and_it_only_grows() -> None:
    before, after = cpu_ticks(), cpu_ticks()
    assert len(before) == len(after) == STEAL + 1
    assert all(b <= a for b, a in zip(before, after, strict=True))
    assert 0.0 <= steal_share(before, after) <= 1.0


@pytest.mark.parametrize(
    ("spent", "share"),
    [
        ([90, 0, 5, 0, 0, 0, 0, 5], 0.05),
        ([50, 0, 0, 50, 0, 0, 0, 0], 0.0),
        ([0] * 8, 0.0),  # no tick between the readings
    ],
)
def test_steal_share_is_stolen_time_over_all_time_between_readings(
    spent: list[int], share: float
) -> None:
    start = [1000] * 8
    end = [s + d for s, d in zip(start, spent, strict=True)]
    assert steal_share(start, end) == pytest.approx(share)
