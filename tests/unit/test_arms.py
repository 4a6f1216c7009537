import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from models.arms import SHARE_TOLERANCE, Arm, Experiment, unit_hash

ROOT = Path(__file__).resolve().parents[2]
USERS = [f"user-{i}" for i in range(100_000)]


def test_shares_hold_empirically_on_100k_users():
    experiment = Experiment(
        "exp-shares", (Arm("a", "lr", 0.5), Arm("b", "lr2", 0.3), Arm("c", "ctr", 0.15), Arm("d", None, 0.05))
    )
    counts = Counter(experiment.assign(u).name for u in USERS)
    for arm in experiment.arms:
        assert abs(counts[arm.name] / len(USERS) - arm.share) < 0.01, (arm.name, counts)


def test_unit_hash_is_uniform_and_in_range():
    values = [unit_hash("s", u) for u in USERS[:20_000]]
    assert all(0.0 <= v < 1.0 for v in values)
    deciles = Counter(int(v * 10) for v in values)
    assert all(abs(deciles[d] / 20_000 - 0.1) < 0.01 for d in range(10))


def test_assignment_is_the_slice_of_the_hash():
    experiment = Experiment("s", (Arm("a", None, 0.25), Arm("b", None, 0.75)))
    for u in USERS[:2000]:
        expected = "a" if unit_hash("s", u) < 0.25 else "b"
        assert experiment.assign(u).name == expected


def test_stable_value_of_the_hash():
    # blake2b("exp:user-1", digest_size=8), read as a big-endian integer over 2**64: pinned forever
    import hashlib

    digest = hashlib.blake2b(b"exp:user-1", digest_size=8).digest()
    assert unit_hash("exp", "user-1") == int.from_bytes(digest, "big") / 2**64


def test_stable_across_processes():
    # PYTHONHASHSEED differs between the two interpreters: assignment must not depend on hash()
    code = (
        "from models.arms import Arm, Experiment\n"
        "e = Experiment('x', (Arm('a', None, 0.5), Arm('b', None, 0.5)))\n"
        "print(''.join(e.assign(f'u{i}').name for i in range(200)))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
        ).stdout
        for seed in ("1", "2")
    }
    here = Experiment("x", (Arm("a", None, 0.5), Arm("b", None, 0.5)))
    assert outputs == {"".join(here.assign(f"u{i}").name for i in range(200)) + "\n"}


def test_salt_reshuffles_users():
    arms = (Arm("a", None, 0.5), Arm("b", None, 0.5))
    one, two = Experiment("one", arms), Experiment("two", arms)
    same = sum(one.assign(u).name == two.assign(u).name for u in USERS[:10_000])
    assert 0.48 < same / 10_000 < 0.52  # independent: agree half the time


def test_single_arm_and_float_shares():
    only = Experiment("s", (Arm("all", "lr", 1.0),))
    assert {only.assign(u).name for u in USERS[:100]} == {"all"}
    thirds = Experiment("s", tuple(Arm(n, None, 1 / 3) for n in "abc"))  # sums to 1 within rounding
    assert {thirds.assign(u).name for u in USERS[:1000]} == {"a", "b", "c"}
    assert thirds.arm("b").name == "b"
    with pytest.raises(KeyError):
        thirds.arm("z")


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        ((), "at least one arm"),
        ((Arm("a", None, 0.5), Arm("a", None, 0.5)), "unique"),
        ((Arm("a", None, 0.5), Arm("b", None, 0.4)), "sum to 1"),
        ((Arm("a", None, 1.0), Arm("b", None, 0.0)), "share must be a number > 0"),
        ((Arm("a", None, 1.5), Arm("b", None, -0.5)), "share must be a number > 0"),
        ((Arm("a", None, 1.0 + 10 * SHARE_TOLERANCE),), "sum to 1"),
        ((Arm("", None, 1.0),), "non-empty"),
        ((Arm("a", None, float("nan")),), "share"),
    ],
)
def test_validation_names_the_problem(arms, message):
    with pytest.raises(ValueError, match=message):
        Experiment("s", arms)
