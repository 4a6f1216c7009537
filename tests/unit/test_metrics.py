import math
import pickle
import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.metrics import ALL_ARMS, MetricsBook, ProgressiveMetrics


def brute_auc(pairs):
    pos = [p for y, p in pairs if y]
    neg = [p for y, p in pairs if not y]
    if not pos or not neg:
        return None
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def brute_logloss(pairs):
    total = 0.0
    for y, p in pairs:
        p = min(max(p, 1e-15), 1 - 1e-15)
        total += -math.log(p) if y else -math.log(1 - p)
    return total / len(pairs)


def feed(pairs, **kwargs):
    metrics = ProgressiveMetrics(**kwargs)
    for y, p in pairs:
        metrics.update_one(y, p)
    return metrics.report()


@pytest.mark.parametrize("part", ["cumulative", "recent"])
@pytest.mark.parametrize(
    ("pairs", "auc"),
    [
        ([(False, 0.1), (False, 0.2), (True, 0.3), (True, 0.9)], 1.0),  # perfect ranking
        ([(True, 0.1), (True, 0.2), (False, 0.3), (False, 0.9)], 0.0),  # reversed
        ([(True, 0.4), (False, 0.4), (True, 0.4), (False, 0.4)], 0.5),  # all ties
        ([(True, 0.4), (False, 0.4), (True, 0.6), (False, 0.2)], 0.875),  # 3 wins + 1 tie over 4 pairs
        ([(True, 0.0), (False, 1.0)], 0.0),
    ],
)
def test_auc_hand_cases(part, pairs, auc):
    report = feed(pairs)[part]
    assert report["auc"] == auc
    assert report["auc_max_error"] == 0.0


@pytest.mark.parametrize("part", ["cumulative", "recent"])
def test_one_class_and_empty(part):
    empty = feed([])[part]
    assert empty == {"n": 0, "logloss": None, "auc": None, "auc_max_error": None, "calibration": None,
                     "label_rate": None, "mean_score": None}
    negatives = feed([(False, 0.1), (False, 0.3)])[part]
    assert negatives["auc"] is None and negatives["calibration"] is None
    assert negatives["label_rate"] == 0.0 and negatives["mean_score"] == pytest.approx(0.2)
    assert feed([(True, 0.1), (True, 0.3)])[part]["auc"] is None


def test_hand_computed_summary():
    report = feed([(True, 0.5), (False, 0.5), (False, 0.2), (True, 0.8)])["cumulative"]
    assert report["n"] == 4
    assert report["logloss"] == pytest.approx((-2 * math.log(0.5) - 2 * math.log(0.8)) / 4)
    assert report["label_rate"] == 0.5
    assert report["mean_score"] == 0.5
    assert report["calibration"] == 1.0  # mean p 0.5 / mean y 0.5
    assert report["auc"] == 0.875


def test_logloss_clips_scores():
    report = feed([(True, 0.0), (False, 1.0), (True, 1.0)])["recent"]
    clipped = (-math.log(1e-15) - math.log(1 - (1 - 1e-15)) - math.log(1 - 1e-15)) / 3
    assert report["logloss"] == pytest.approx(clipped, rel=1e-12)
    assert report["logloss"] == pytest.approx(2 * 34.5 / 3, rel=0.01)  # -log(1e-15) is about 34.5
    assert math.isfinite(report["logloss"])


def test_recent_is_the_last_window_pairs():
    pairs = [(True, 0.9), (False, 0.1)] * 5 + [(True, 0.1), (False, 0.9), (True, 0.2)]
    report = feed(pairs, window=3)
    assert report["recent"]["n"] == 3
    assert report["recent"]["auc"] == 0.0
    assert report["recent"]["label_rate"] == pytest.approx(2 / 3)
    assert report["recent"]["logloss"] == pytest.approx(brute_logloss(pairs[-3:]))
    assert report["cumulative"]["n"] == 13
    assert report["cumulative"]["logloss"] == pytest.approx(brute_logloss(pairs))
    assert report["cumulative"]["auc"] == brute_auc(pairs)  # 4 distinct scores: exact


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5000001, 0.9, 1.0])
                          | st.floats(0.0, 1.0)), max_size=60))
def test_auc_matches_brute_force(pairs):
    report = feed(pairs, window=100)
    expected = brute_auc(pairs)
    if expected is None:
        assert report["recent"]["auc"] is None and report["cumulative"]["auc"] is None
        return
    assert report["recent"]["auc"] == pytest.approx(expected, abs=1e-12)
    cumulative = report["cumulative"]
    assert abs(cumulative["auc"] - expected) <= cumulative["auc_max_error"] + 1e-12


def test_auc_on_seeded_random_data_with_ties():
    rng = random.Random(7)
    pairs = []
    for _ in range(3000):
        p = round(rng.random(), 2)  # 101 distinct scores: many ties
        pairs.append((rng.random() < p, p))
    report = feed(pairs, window=500)
    assert report["recent"]["auc"] == pytest.approx(brute_auc(pairs[-500:]), abs=1e-12)
    # discrete scores each fall alone in their bin: the cumulative AUC is exact too
    assert report["cumulative"]["auc_max_error"] == 0.0
    assert report["cumulative"]["auc"] == pytest.approx(brute_auc(pairs), abs=1e-12)


def test_cumulative_auc_error_bound_on_continuous_scores():
    rng = random.Random(11)
    pairs = []
    for _ in range(3000):
        p = rng.betavariate(1, 20)  # click-like scores, mostly small
        pairs.append((rng.random() < 3 * p, p))
    cumulative = feed(pairs)["cumulative"]
    exact = brute_auc(pairs)
    assert cumulative["auc_max_error"] < 1e-3
    assert abs(cumulative["auc"] - exact) <= cumulative["auc_max_error"]
    # coarse bins: a larger but still honest bound
    coarse = feed(pairs, bins=64)["cumulative"]
    assert coarse["auc_max_error"] > cumulative["auc_max_error"]
    assert abs(coarse["auc"] - exact) <= coarse["auc_max_error"]


def test_rejects_bad_scores_and_parameters():
    metrics = ProgressiveMetrics()
    for p in [-0.1, 1.1, float("nan"), "0.5", None]:
        with pytest.raises(ValueError):
            metrics.update_one(True, p)  # type: ignore[arg-type]
    assert metrics.n == 0
    for kwargs in [{"window": 0}, {"bins": 0}]:
        with pytest.raises(ValueError):
            ProgressiveMetrics(**kwargs)


def test_metrics_pickle():
    metrics = ProgressiveMetrics(window=5)
    for i in range(20):
        metrics.update_one(i % 3 == 0, i / 20)
    assert pickle.loads(pickle.dumps(metrics)).report() == metrics.report()


def test_book_keeps_one_metrics_per_model_and_arm_plus_all_arms():
    book = MetricsBook(window=100)
    rows = [
        ("r1", "lr", "A", True, 0.9), ("r2", "lr", "A", False, 0.2), ("r3", "lr", "B", True, 0.3),
        ("r4", "lr", "B", False, 0.6), ("r1", "ctr", "A", True, 0.1),
    ]
    for row in rows:
        assert book.update_one(*row) is True
    report = book.report()
    assert list(report) == ["ctr", "lr"]
    assert list(report["lr"]) == [ALL_ARMS, "A", "B"]
    assert report["lr"]["A"]["recent"]["auc"] == 1.0
    assert report["lr"]["B"]["recent"]["auc"] == 0.0
    lr_pairs = [(y, p) for _, m, _, y, p in rows if m == "lr"]
    assert report["lr"][ALL_ARMS]["cumulative"]["auc"] == brute_auc(lr_pairs) == 0.75
    assert report["lr"][ALL_ARMS]["recent"]["n"] == 4
    assert report["ctr"]["A"]["cumulative"]["n"] == 1
    with pytest.raises(ValueError):
        book.update_one("r9", "lr", ALL_ARMS, True, 0.5)


def test_book_redelivery_changes_nothing():
    rng = random.Random(3)
    rows = [((f"r{i}", "item"), "lr", rng.choice("AB"), rng.random() < 0.3, rng.random()) for i in range(300)]
    once = MetricsBook(window=50)
    for row in rows:
        once.update_one(*row)
    replayed = MetricsBook(window=50)
    for row in rows[:200]:
        replayed.update_one(*row)
    # a crash after 200: everything from 120 on is delivered again, then the rest
    counted = [replayed.update_one(*row) for row in rows[120:]]
    assert counted == [False] * 80 + [True] * 100
    assert replayed.duplicates == 80
    assert replayed.report() == once.report()


def test_book_seen_keys_are_a_bounded_fifo():
    book = MetricsBook(max_seen=3)
    for key in ["a", "b", "c", "d"]:
        book.update_one(key, "m", "A", True, 0.5)
    assert list(book._seen) == [("m", "b"), ("m", "c"), ("m", "d")]
    assert book.update_one("d", "m", "A", True, 0.5) is False  # recent: remembered
    assert book.update_one("a", "m", "A", True, 0.5) is True  # older than the last 3: forgotten
    assert book.duplicates == 1
    assert book.report()["m"]["A"]["cumulative"]["n"] == 5


def test_a_book_pickled_before_seen_keys_loads_with_its_keys_in_order() -> None:
    """Checkpoints written before ``SeenKeys`` held the book's set beside its FIFO."""
    book = MetricsBook.__new__(MetricsBook)
    book.__setstate__({"window": 10, "max_seen": 2, "bins": 16384, "duplicates": 0, "_metrics": {},
                       "_seen": {("m", "b"), ("m", "a")}, "_seen_order": deque([("m", "a"), ("m", "b")])})
    assert list(book._seen) == [("m", "a"), ("m", "b")] and book.max_seen == 2
    assert book.update_one("b", "m", "A", True, 0.5) is False
    assert book.update_one("c", "m", "A", True, 0.5) is True and list(book._seen) == [("m", "b"), ("m", "c")]


def test_book_a_bad_score_is_not_remembered_as_seen():
    book = MetricsBook()
    with pytest.raises(ValueError):
        book.update_one("k", "m", "A", True, 2.0)
    assert book.update_one("k", "m", "A", True, 0.5) is True
    assert book.report()["m"][ALL_ARMS]["cumulative"]["n"] == 1
