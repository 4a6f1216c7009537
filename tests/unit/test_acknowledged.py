"""A checkpoint waits for every output the broker has not acknowledged yet, and fails on the first failure."""

from __future__ import annotations

import asyncio

import pytest

from streams.worker.batch import _acknowledged


async def test_it_waits_for_the_outputs_still_in_flight() -> None:
    loop = asyncio.get_running_loop()
    done, later = loop.create_future(), loop.create_future()
    done.set_result("metadata")
    loop.call_later(0.05, later.set_result, "metadata")
    await asyncio.wait_for(_acknowledged([done, later]), 5)
    assert later.done()


async def test_a_refused_output_fails_the_checkpoint_whether_already_settled_or_not() -> None:
    loop = asyncio.get_running_loop()
    refused, pending = loop.create_future(), loop.create_future()
    refused.set_exception(RuntimeError("record too large"))
    with pytest.raises(RuntimeError, match="record too large"):
        await _acknowledged([refused])
    loop.call_later(0.01, pending.set_exception, RuntimeError("broker gone"))
    with pytest.raises(RuntimeError, match="broker gone"):
        await _acknowledged([pending])
