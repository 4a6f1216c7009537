"""Bytes of feature state per user: typical (a simulated stream) and worst case (a user at every bound).

Run: ``python -m bench.state_size``. Prints figures; asserts nothing (benchmarks measure, tests check).
"""

from __future__ import annotations

import random
import statistics
import time

from features.builtin import MAX_TYPES
from features.state import encode_state
from streams.replay.driver import ReplayDriver
from streams.settings import Settings
from streams.tools.simulate import simulate


def typical(users: int, events: int) -> dict[str, float]:
    stream, _ = simulate(users=users, events=events, seed=1)
    driver = ReplayDriver(Settings())
    started = time.perf_counter()
    driver.pipe_all(stream)
    elapsed = time.perf_counter() - started
    sizes = [len(blob) for blob in driver.states.values()]
    return {"users": len(sizes), "events": len(stream), "mean": statistics.fmean(sizes),
            "p50": statistics.median(sizes), "max": max(sizes), "replay_events_per_s": len(stream) / elapsed}


def worst_case(events: int = 20_000) -> int:
    """One user with every slot at its bound: all event types, 100 items, 32 categories, long item ids."""
    rng = random.Random(0)
    stream = []
    for i in range(events):
        stream.append({"event_id": f"e{i}", "user_id": "heavy", "ts": 1_700_000_000.0 + i,
                       "type": f"type_{rng.randrange(MAX_TYPES * 2)}", "item_id": f"item-{rng.randrange(10**9):09d}",
                       "props": {"category": f"category-{rng.randrange(64)}"}})
    driver = ReplayDriver(Settings())
    driver.pipe_all(stream)
    return len(driver.states["heavy"])


def main() -> None:
    for users, events in [(500, 20_000), (5_000, 100_000)]:
        t = typical(users, events)
        print(f"simulated {t['events']:>7,} events, {t['users']:>5,} users: "
              f"state bytes per user mean {t['mean']:,.0f}, median {t['p50']:,.0f}, max {t['max']:,} "
              f"(replay {t['replay_events_per_s']:,.0f} events/s)")
    print(f"worst case (every bound reached): {worst_case():,} bytes")
    print(f"(state encoding: orjson, sorted keys; example: {len(encode_state({}))} bytes for an empty state)")


if __name__ == "__main__":
    main()
