"""Signed model snapshots: what the learner publishes and every scorer loads.

A snapshot is ``bytes``::

    frame   = b"SSNAP" | format (1 byte) | header length (u32, big endian) | payload length (u64, big endian)
    header  = JSON {"format", "name", "version", "meta", "payload_len"}
    payload = pickle of the model
    blob    = frame | header | payload | HMAC-SHA256(key, frame | header | payload)

Unpickling runs code chosen by whoever wrote the bytes, so :func:`load_snapshot` checks the signature with
:func:`hmac.compare_digest` **before** it parses the header or unpickles anything. Only the fixed-size frame
is read from unverified bytes, to tell a truncated or unsigned blob from a forged one.

>>> key = b"a secret shared by the learner and the scorers"
>>> blob = dump_snapshot({"w": 0.5}, name="lr", version=3, key=key, meta={"examples": 1200})
>>> load_snapshot(blob, key=key)
Snapshot(name='lr', version=3, model={'w': 0.5}, meta={'examples': 1200})
>>> load_snapshot(blob, key=b"another key")
Traceback (most recent call last):
...
models.snapshots.SnapshotRejected: bad signature: the HMAC does not match (wrong key or altered bytes)
>>> load_snapshot(blob[:-1], key=key)
Traceback (most recent call last):
...
models.snapshots.SnapshotRejected: truncated: 1 byte(s) missing

"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import struct
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["FORMAT_VERSION", "REASONS", "Snapshot", "SnapshotRejected", "dump_snapshot", "load_snapshot"]

_MAGIC = b"SSNAP"
FORMAT_VERSION = 1
_FRAME = struct.Struct(">5sBIQ")  # magic, format, header length, payload length
_MAC_SIZE = hashlib.sha256().digest_size
_PICKLE_PROTOCOL = 5

REASONS = ("key empty", "unknown format", "unsigned", "truncated", "bad signature")
"""Every value :attr:`SnapshotRejected.reason` can take."""


class SnapshotRejected(ValueError):
    """The bytes are not a snapshot signed with this key; nothing was unpickled.

    ``reason`` is one of :data:`REASONS`; the message adds the detail.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Snapshot:
    name: str
    version: int
    model: Any
    meta: dict[str, Any] = field(default_factory=dict)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray):
        raise TypeError(f"the key must be bytes, got {type(key).__name__}")
    if not key:
        raise SnapshotRejected("key empty", "refusing to sign or verify with an empty key")


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(bytes(key), data, hashlib.sha256).digest()


def dump_snapshot(
    model: Any, *, name: str, version: int, key: bytes, meta: dict[str, Any] | None = None
) -> bytes:
    """Pickle ``model`` and sign it, with ``name``, ``version`` and JSON-serialisable ``meta`` in the header.

    Raises :class:`SnapshotRejected` (``key empty``) for an empty key, :class:`ValueError` for an empty name
    or a negative version, :class:`TypeError` when ``meta`` is not JSON-serialisable.
    """
    _check_key(key)
    if not isinstance(name, str) or not name:
        raise ValueError(f"the snapshot name must be a non-empty string, got {name!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"the snapshot version must be an int >= 0, got {version!r}")
    payload = pickle.dumps(model, protocol=_PICKLE_PROTOCOL)
    header = orjson.dumps(
        {"format": FORMAT_VERSION, "name": name, "version": version, "meta": meta or {},
         "payload_len": len(payload)},
        option=orjson.OPT_SORT_KEYS,
    )
    signed = _FRAME.pack(_MAGIC, FORMAT_VERSION, len(header), len(payload)) + header + payload
    return signed + _mac(key, signed)


def load_snapshot(blob: bytes, *, key: bytes) -> Snapshot:
    """Verify ``blob`` with ``key``, then unpickle it; :class:`SnapshotRejected` if it is not genuine."""
    _check_key(key)
    blob = bytes(blob)
    if len(blob) < _FRAME.size:
        if blob and _MAGIC.startswith(blob[: len(_MAGIC)]):
            detail = f"{len(blob)} byte(s), shorter than the {_FRAME.size}-byte frame"
            raise SnapshotRejected("truncated", detail)
        raise _not_a_snapshot(blob)
    magic, fmt, header_len, payload_len = _FRAME.unpack_from(blob)
    if magic != _MAGIC:
        raise _not_a_snapshot(blob)
    if fmt != FORMAT_VERSION:
        raise SnapshotRejected("unknown format", f"snapshot format {fmt}, this code reads {FORMAT_VERSION}")
    signed_len = _FRAME.size + header_len + payload_len
    if len(blob) == signed_len:
        raise SnapshotRejected("unsigned", "the blob ends where the signature should start")
    if len(blob) < signed_len + _MAC_SIZE:
        raise SnapshotRejected("truncated", f"{signed_len + _MAC_SIZE - len(blob)} byte(s) missing")
    # Whatever the frame says, the signature is the last 32 bytes and covers everything before them.
    signed, mac = blob[:-_MAC_SIZE], blob[-_MAC_SIZE:]
    if not hmac.compare_digest(mac, _mac(key, signed)):
        raise SnapshotRejected("bad signature", "the HMAC does not match (wrong key or altered bytes)")
    # Verified from here on: the bytes are exactly what a holder of the key wrote.
    if len(signed) != signed_len:
        raise SnapshotRejected("unknown format", "the frame lengths disagree with the signed size")
    header = orjson.loads(signed[_FRAME.size : _FRAME.size + header_len])
    if header.get("format") != FORMAT_VERSION or header.get("payload_len") != payload_len:
        raise SnapshotRejected("unknown format", "the header disagrees with the frame")
    model = pickle.loads(signed[_FRAME.size + header_len :])
    return Snapshot(name=header["name"], version=header["version"], model=model, meta=header["meta"])


def _not_a_snapshot(blob: bytes) -> SnapshotRejected:
    if blob[:1] == b"\x80":  # the PROTO opcode that starts every pickle of protocol >= 2
        return SnapshotRejected("unsigned", "a bare pickle, not a signed snapshot")
    return SnapshotRejected("unknown format", f"does not start with {_MAGIC!r}")
