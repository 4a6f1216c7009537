"""Experiment arms: which model scores a user's requests.

A user goes to an arm by a stable hash of ``salt:user_id``, so the same user lands in the same arm in every
process, partition and run (Python's ``hash()`` is salted per process and is not used). Changing the salt
reshuffles users, which is how a new experiment gets fresh groups.

>>> experiment = Experiment("exp-1", (Arm("control", "lr", 0.9), Arm("treatment", "lr-v2", 0.1)))
>>> experiment.assign("u-42").name
'control'
>>> [experiment.assign(u).name for u in ("u1", "u2", "u3", "u4")]
['control', 'control', 'control', 'control']
>>> experiment.assign("u9").name
'treatment'
>>> round(unit_hash("exp-1", "u-42"), 6)  # the same in every process and run
0.311412

"""

from __future__ import annotations

import bisect
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SHARE_TOLERANCE", "Arm", "Experiment", "unit_hash"]

SHARE_TOLERANCE = 1e-9
"""How far from 1 the shares of an experiment may sum."""


def unit_hash(salt: str, user_id: str) -> float:
    """A number uniform in [0, 1), from BLAKE2b of ``f"{salt}:{user_id}"`` (first 8 bytes, big endian)."""
    digest = hashlib.blake2b(f"{salt}:{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(frozen=True)
class Arm:
    name: str
    model: Any
    """What the arm serves: a model name in the registry, or a model."""
    share: float
    """The fraction of users in this arm, in (0, 1]."""


@dataclass(frozen=True)
class Experiment:
    """Arms and the salt that spreads users over them; validated on construction.

    >>> Experiment("s", (Arm("a", None, 0.5), Arm("a", None, 0.5)))
    Traceback (most recent call last):
    ...
    ValueError: arm names must be unique, repeated: ['a']
    >>> Experiment("s", (Arm("a", None, 0.5), Arm("b", None, 0.4)))
    Traceback (most recent call last):
    ...
    ValueError: arm shares must sum to 1, got 0.9 (a=0.5, b=0.4)
    """

    salt: str
    arms: tuple[Arm, ...]
    _bounds: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.salt, str):
            raise ValueError(f"the salt must be a string, got {self.salt!r}")
        arms = tuple(self.arms)
        object.__setattr__(self, "arms", arms)
        if not arms:
            raise ValueError("an experiment needs at least one arm")
        for arm in arms:
            if not isinstance(arm, Arm):
                raise ValueError(f"arms must be Arm instances, got {arm!r}")
            if not isinstance(arm.name, str) or not arm.name:
                raise ValueError(f"arm names must be non-empty strings, got {arm.name!r}")
            if (
                isinstance(arm.share, bool)
                or not isinstance(arm.share, int | float)
                or not (math.isfinite(arm.share) and arm.share > 0)
            ):
                raise ValueError(f"arm {arm.name!r}: the share must be a number > 0, got {arm.share!r}")
        names = [arm.name for arm in arms]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"arm names must be unique, repeated: {repeated}")
        total = math.fsum(arm.share for arm in arms)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            shares = ", ".join(f"{arm.name}={arm.share}" for arm in arms)
            raise ValueError(f"arm shares must sum to 1, got {total} ({shares})")
        bounds, running = [], 0.0
        for arm in arms[:-1]:
            running += arm.share
            bounds.append(running)
        object.__setattr__(self, "_bounds", tuple(bounds))  # the last arm takes everything above

    def assign(self, user_id: str) -> Arm:
        """The arm of ``user_id``: arm ``i`` takes the users whose hash falls in its slice of [0, 1)."""
        return self.arms[bisect.bisect_right(self._bounds, unit_hash(self.salt, user_id))]

    def arm(self, name: str) -> Arm:
        """The arm called ``name`` (KeyError if there is none)."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(name)
