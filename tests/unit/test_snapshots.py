import hashlib
import hmac
import pickle
import struct

import pytest

from models import snapshots
from models.baseline import SmoothedCTR
from models.snapshots import REASONS, Snapshot, SnapshotRejected, dump_snapshot, load_snapshot

KEY = b"test-key-0123456789"

EXECUTED: list[str] = []


def _side_effect(tag: str) -> str:
    EXECUTED.append(tag)
    return tag


class Evil:
    """Unpickling this calls _side_effect: the stand-in for arbitrary code execution."""

    def __reduce__(self):
        return (_side_effect, ("pwned",))


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if load_snapshot reaches pickle.loads."""

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle.loads was called on rejected bytes")

    monkeypatch.setattr(snapshots.pickle, "loads", forbidden)
    EXECUTED.clear()
    yield
    assert EXECUTED == []


def _frame(header: bytes, payload: bytes) -> bytes:
    return struct.pack(">5sBIQ", b"SSNAP", 1, len(header), len(payload)) + header + payload


def test_round_trip_of_a_river_model():
    model = SmoothedCTR()
    model.learn_one({"position": 1}, True)
    model.learn_one({"position": 2}, False)
    blob = dump_snapshot(model, name="baseline", version=7, key=KEY, meta={"examples": 2, "note": "é"})
    snap = load_snapshot(blob, key=KEY)
    assert isinstance(snap, Snapshot)
    assert (snap.name, snap.version, snap.meta) == ("baseline", 7, {"examples": 2, "note": "é"})
    assert snap.model.predict_proba_one({"position": 1}) == model.predict_proba_one({"position": 1})
    assert snap.model.groups() == model.groups()


def test_snapshot_is_frozen_and_meta_defaults_to_empty():
    snap = load_snapshot(dump_snapshot([1, 2], name="m", version=0, key=KEY), key=KEY)
    assert snap == Snapshot("m", 0, [1, 2], {})
    with pytest.raises(AttributeError):
        snap.version = 1  # type: ignore[misc]


def test_dump_is_deterministic_and_signed_with_hmac_sha256():
    blob = dump_snapshot({"a": 1}, name="m", version=1, key=KEY)
    assert blob == dump_snapshot({"a": 1}, name="m", version=1, key=KEY)
    assert blob[-32:] == hmac.new(KEY, blob[:-32], hashlib.sha256).digest()
    assert blob.startswith(b"SSNAP\x01")


def test_every_flipped_byte_is_rejected_without_unpickling(no_unpickling):
    blob = dump_snapshot({"w": [0.1, 0.2]}, name="lr", version=3, key=KEY, meta={"a": 1})
    reasons = set()
    for i in range(len(blob)):
        for mask in (0x01, 0x80):
            bad = bytearray(blob)
            bad[i] ^= mask
            with pytest.raises(SnapshotRejected) as exc:
                load_snapshot(bytes(bad), key=KEY)
            reasons.add(exc.value.reason)
    assert "bad signature" in reasons
    assert reasons <= set(REASONS)


def test_wrong_key_is_rejected(no_unpickling):
    blob = dump_snapshot(1, name="m", version=1, key=KEY)
    with pytest.raises(SnapshotRejected) as exc:
        load_snapshot(blob, key=KEY + b"x")
    assert exc.value.reason == "bad signature"
    assert isinstance(exc.value, ValueError)


def test_every_truncation_is_rejected(no_unpickling):
    blob = dump_snapshot({"w": 1.0}, name="m", version=1, key=KEY)
    for end in range(len(blob)):
        with pytest.raises(SnapshotRejected) as exc:
            load_snapshot(blob[:end], key=KEY)
        if end == len(blob) - 32:
            assert exc.value.reason == "unsigned"  # exactly the signature is missing
        elif end > 0:
            assert exc.value.reason == "truncated", end
    with pytest.raises(SnapshotRejected) as exc:
        load_snapshot(blob[:-5], key=KEY)
    assert str(exc.value) == "truncated: 5 byte(s) missing"


def test_trailing_bytes_are_rejected(no_unpickling):
    blob = dump_snapshot(1, name="m", version=1, key=KEY)
    with pytest.raises(SnapshotRejected) as exc:
        load_snapshot(blob + b"\x00", key=KEY)
    assert exc.value.reason == "bad signature"


def test_a_code_executing_pickle_is_never_unpickled():
    payload = pickle.dumps(Evil())
    EXECUTED.clear()
    pickle.loads(payload)  # the payload really does run code when unpickled
    assert EXECUTED == ["pwned"]
    EXECUTED.clear()

    header = b'{"format":1,"meta":{},"name":"m","payload_len":%d,"version":1}' % len(payload)
    unsigned = _frame(header, payload)
    forged = unsigned + hmac.new(b"attacker key", unsigned, hashlib.sha256).digest()
    cases = {
        "unsigned": unsigned,  # a well-formed frame without a signature
        "bad signature": forged,  # signed with another key
    }
    for reason, blob in cases.items():
        with pytest.raises(SnapshotRejected) as exc:
            load_snapshot(blob, key=KEY)
        assert exc.value.reason == reason
    with pytest.raises(SnapshotRejected) as exc:
        load_snapshot(payload, key=KEY)  # a bare pickle
    assert exc.value.reason == "unsigned"
    assert EXECUTED == []


def test_a_validly_signed_payload_is_unpickled():
    # the counterpart of the test above: with the right key the (trusted) payload is loaded
    EXECUTED.clear()
    snap = load_snapshot(dump_snapshot(Evil(), name="m", version=1, key=KEY), key=KEY)
    assert snap.model == "pwned" and EXECUTED == ["pwned"]
    EXECUTED.clear()


def test_unknown_formats(no_unpickling):
    blob = dump_snapshot(1, name="m", version=1, key=KEY)
    for bad, reason in [
        (b"", "unknown format"),
        (b"hello world, this is not a snapshot at all", "unknown format"),
        (b"SSNAP\x02" + blob[6:], "unknown format"),
        (b"SSN", "truncated"),
    ]:
        with pytest.raises(SnapshotRejected) as exc:
            load_snapshot(bad, key=KEY)
        assert exc.value.reason == reason, bad


def test_empty_key_is_refused_at_dump_and_load(no_unpickling):
    with pytest.raises(SnapshotRejected) as exc:
        dump_snapshot(1, name="m", version=1, key=b"")
    assert exc.value.reason == "key empty"
    blob = dump_snapshot(1, name="m", version=1, key=KEY)
    with pytest.raises(SnapshotRejected) as exc:
        load_snapshot(blob, key=b"")
    assert exc.value.reason == "key empty"
    # an empty-key HMAC made by someone else is refused too
    signed = blob[:-32]
    with pytest.raises(SnapshotRejected):
        load_snapshot(signed + hmac.new(b"", signed, hashlib.sha256).digest(), key=b"")


@pytest.mark.parametrize(
    "kwargs",
    [{"name": "", "version": 1}, {"name": "m", "version": -1}, {"name": "m", "version": True},
     {"name": "m", "version": 1.0}],
)
def test_dump_validates_name_and_version(kwargs):
    with pytest.raises(ValueError):
        dump_snapshot(1, key=KEY, **kwargs)


def test_meta_must_be_json():
    with pytest.raises(TypeError):
        dump_snapshot(1, name="m", version=1, key=KEY, meta={"x": object()})
