"""Argument checks shared by the aggregations (private).

A non-finite number must never reach a slot: orjson writes ``NaN`` and ``inf`` as ``null``, so the stored
state would no longer be what was computed, and a replay would not reproduce it.
"""

from __future__ import annotations

import math


def finite(name: str, x: float) -> float:
    """Return ``x`` as a float, or raise :class:`ValueError` if it is NaN or infinite.

    >>> finite("ts", 10)
    10.0
    >>> finite("ts", float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: ts must be a finite number, got nan
    """
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return x


def positive(name: str, x: float) -> None:
    """Raise :class:`ValueError` unless ``x`` is a finite number > 0 (for configuration values)."""
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {x!r}")
