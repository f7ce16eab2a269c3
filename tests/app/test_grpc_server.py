"""The gRPC edge's deadlines: one timer for every call (``app.grpc_server.Deadlines``), on
real asyncio tasks. The edge's other behaviour, over a real channel, is in
tests/app/codecs/test_grpc.py."""

from __future__ import annotations

import asyncio

import pytest

from app.grpc_server import Deadlines

LIMIT = 0.2  # long beside the quick calls' 0 to 20 ms, so a busy machine cannot blur them


async def a_call(deadlines: Deadlines, seconds: float) -> str:
    """What the edge does around a call that takes ``seconds``: its answer, or how it ended."""
    task = asyncio.current_task()
    assert task is not None
    deadlines.start(task)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        if not deadlines.passed(task):
            raise
        return "deadline passed"
    finally:
        deadlines.finish(task)
    return "answered"


async def calls(durations: list[float], starts: list[float]) -> list[str]:
    deadlines = Deadlines(LIMIT)

    async def started_later(delay: float, seconds: float) -> str:
        await asyncio.sleep(delay)
        return await a_call(deadlines, seconds)

    return await asyncio.gather(
        *(started_later(delay, seconds) for delay, seconds in zip(starts, durations, strict=True))
    )


@pytest.mark.parametrize(
    ("durations", "starts", "ends"),
    [
        ([0.0], [0.0], ["answered"]),
        ([5.0], [0.0], ["deadline passed"]),
        # Overlapping calls: each is held to its own start, whatever the others do.
        ([5.0, 0.0, 5.0], [0.0, 0.05, 0.1], ["deadline passed", "answered", "deadline passed"]),
        ([0.0, 5.0, 0.02], [0.0, 0.1, 0.2], ["answered", "deadline passed", "answered"]),
    ],
    ids=["quick", "slow", "two-slow-among-three", "one-slow-after-a-quick-one"],
)
def test_each_call_ends_at_its_own_deadline(
    durations: list[float], starts: list[float], ends: list[str]
) -> None:
    assert asyncio.run(calls(durations, starts)) == ends


def test_a_call_cancelled_otherwise_stays_cancelled() -> None:
    """A client that goes away cancels the call: that is not the deadline's, and the
    cancellation goes on."""

    async def cancelled_by_the_client() -> bool:
        deadlines = Deadlines(LIMIT)
        task = asyncio.create_task(a_call(deadlines, 5.0))
        await asyncio.sleep(0.02)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(cancelled_by_the_client())


def test_a_passed_deadline_leaves_the_task_uncancelled() -> None:
    """After the deadline's cancellation is answered, the task can await again (as after
    ``asyncio.timeout``): the edge still has to send the status."""

    async def then_more() -> tuple[str, str]:
        deadlines = Deadlines(LIMIT)
        first = await a_call(deadlines, 5.0)
        await asyncio.sleep(0)  # would raise CancelledError if the cancellation were left
        return first, await a_call(deadlines, 0.0)

    assert asyncio.run(then_more()) == ("deadline passed", "answered")
