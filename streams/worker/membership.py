"""One data directory, one worker; and a restarted worker takes its own place back in the group.

A worker killed with SIGKILL never says goodbye to its group. Kafka evicts it after the session timeout, and
the group rebalances without it (measured in ``tests/integration/test_scale_out.py``); noida-db 0.2.3 never
does (``shared/broker.md``), so its partitions stay with a dead member and a restarted worker waits forever.
So each worker records its group member id in its data directory when it gets partitions, and, with
``STREAMSCORE_RELEASE_DEAD_MEMBER`` (on by default), a worker starting on that directory first sends
``LeaveGroup`` for the recorded member: exactly what the dead process would have sent on a clean stop. Kafka
does not need it to recover, but without it the restarted worker waits out the session timeout in a join that
ends in a slow rebalance, and in that path faust 0.15.3 was once seen "Ready" yet processing nothing (one run
in about thirty, ``docs/kafka.md``): on by default for every broker.

The data directory holds one worker's RocksDB state, so one directory is one worker: if the recorded process
is still alive, starting a second worker on the directory is refused, whatever the broker.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaClient
from aiokafka.client import CoordinationType
from aiokafka.protocol.group import LeaveGroupRequest

log = logging.getLogger(__name__)

MEMBER_FILE = "group-member.json"


class DataDirInUse(RuntimeError):
    """Another live worker owns this data directory."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def record_member(state_dir: Path, group: str, member_id: str) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / MEMBER_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps({"group": group, "member_id": member_id, "pid": os.getpid()}))
    tmp.replace(path)


def previous_member(state_dir: Path) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = orjson.loads((state_dir / MEMBER_FILE).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return record


def refuse_if_in_use(state_dir: Path) -> dict[str, Any] | None:
    """Raise :class:`DataDirInUse` if the worker recorded in ``state_dir`` still runs; return its record."""
    record = previous_member(state_dir)
    if record is not None and record.get("pid") != os.getpid() and _pid_alive(int(record.get("pid", 0))):
        raise DataDirInUse(f"a worker (pid {record['pid']}) is running on {state_dir}; stop it first, "
                           "or give this worker its own STREAMSCORE_DATA_DIR")
    return record


async def release_previous_member(bootstrap: str, state_dir: Path) -> str | None:
    """Send ``LeaveGroup`` for the member a dead predecessor left behind; return its id, if there was one."""
    record = refuse_if_in_use(state_dir)
    if record is None:
        return None
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    try:
        await client.bootstrap()
        node = await client.coordinator_lookup(CoordinationType.GROUP, record["group"])
        response = await client.send(node, LeaveGroupRequest(record["group"], record["member_id"]))
        # UNKNOWN_MEMBER_ID (25) is the normal answer when the broker already evicted it or it left cleanly.
        log.info("released group member %s of a previous worker (error code %s)",
                 record["member_id"], response.error_code)
    finally:
        await client.close()
    (state_dir / MEMBER_FILE).unlink(missing_ok=True)
    return str(record["member_id"])
