"""``streamscore worker``: one faust worker process running the score agent."""

from __future__ import annotations

import logging

from faust.worker import Worker

from streams.settings import Settings
from streams.worker.app import USER_STATE_TABLE, create_app
from streams.worker.gcwatch import GcWatch, tune_collector

log = logging.getLogger(__name__)


def describe(settings: Settings) -> str:
    web = f"http://{settings.web_host}:{settings.web_port}" if settings.web_enabled else "disabled"
    return (f"streamscore worker: broker {settings.bootstrap}, events topic {settings.topic('events')!r} "
            f"({settings.partitions} partitions), state table {USER_STATE_TABLE!r} in {settings.state_dir}, "
            f"web {web}")


def run_worker(settings: Settings) -> int:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    sa = create_app(settings)
    tune_collector()
    GcWatch(sa.processor.timings).install()  # one per process: the collector's pauses are the process's
    print(describe(settings), flush=True)
    worker = Worker(sa.app, loglevel=settings.log_level.upper(), quiet=True)
    worker.spinner = None  # its terminal escapes garble the demo's output; our start line says enough
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
