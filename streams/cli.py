"""The ``streamscore`` command line.

Errors a user can fix (no broker, a bad setting) print one line saying what is wrong and how to fix it, and
exit with status 2; they never print a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from streams.core.labels import LABEL_EVENTS
from streams.core.topics import topic_specs
from streams.kafka.admin import BrokerUnreachable, TopicMismatch, create_topics, ping
from streams.kafka.broker import DEFAULT_KIND, KINDS, BrokerError, local_broker
from streams.settings import TOPIC_NAMES, Settings, SettingsError, flag_assignments, resolve_settings, show_settings
from streams.tools.progress import Progress
from streams.worker.membership import DataDirInUse, refuse_if_in_use, release_previous_member


class UsageError(RuntimeError):
    pass


def _port_of(bootstrap: str) -> int:
    first = bootstrap.split(",")[0]
    port = urlsplit(f"//{first}").port
    if port is None:
        raise UsageError(f"STREAMSCORE_BOOTSTRAP={bootstrap!r} has no port; use host:port")
    return port


def cmd_broker(settings: Settings, args: argparse.Namespace) -> int:
    port = args.port or _port_of(settings.bootstrap)
    broker = local_broker(args.kind, settings.broker_dir / args.kind, port)
    if args.action == "start":
        if broker.is_running():
            print(f"{broker.describe()} broker already running at {broker.bootstrap}")
            return 0
        print(f"{broker.describe()} broker running at {broker.start()} (data in {broker.data_dir})")
    elif args.action == "stop":
        broker.stop()
        print(f"{args.kind} broker stopped")
    else:
        try:
            topics = asyncio.run(ping(broker.bootstrap, timeout=3.0))
            print(f"{broker.describe()} broker at {broker.bootstrap} answers; {len(topics)} topics")
        except BrokerUnreachable:
            print(f"no broker answers at {broker.bootstrap}; "
                  f"start it with `streamscore broker start --kind {args.kind}`")
            return 1
    return 0


def cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "create":
        result = asyncio.run(create_topics(settings))
        for spec in topic_specs(settings):
            config = ", ".join(f"{k}={v}" for k, v in spec.config.items())
            print(f"{spec.name:<24} {spec.partitions:>3} partitions  {result[spec.name]:<8} {config}")
    else:
        for name in asyncio.run(ping(settings.bootstrap)):
            print(name)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from streams.worker.run import run_worker

    asyncio.run(ping(settings.bootstrap))  # fail fast with one line, before faust retries forever
    if settings.release_dead_member:
        released = asyncio.run(release_previous_member(settings.bootstrap, settings.state_dir))
        if released:
            print(f"released the group membership {released} left by a previous worker on {settings.state_dir}")
    else:
        refuse_if_in_use(settings.state_dir)
    return run_worker(settings)


def cmd_inspect(settings: Settings, args: argparse.Namespace) -> int:
    query = urlencode({k: v for k, v in (("items", args.items), ("ts", args.ts)) if v is not None})
    url = (f"http://{settings.web_host}:{settings.web_port}/users/{quote(args.user_id, safe='')}/"
           + (f"?{query}" if query else ""))
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        print(f"streamscore: {body.get('error', exc)} ({url})", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        raise UsageError(f"no worker answers at {url} ({exc}); start one with `streamscore worker`, or set "
                         "STREAMSCORE_WEB_HOST/STREAMSCORE_WEB_PORT to a running worker's") from None
    print(json.dumps(body, indent=2, sort_keys=True))
    return 0


def cmd_learner(settings: Settings, args: argparse.Namespace) -> int:
    from streams.learner.process import run_learner

    asyncio.run(ping(settings.bootstrap))
    return run_learner(settings)


def cmd_experiment(settings: Settings, args: argparse.Namespace) -> int:
    from models.report import experiment_report
    from streams.ops.reports import ReportUnavailable, fetch_report

    try:
        report = fetch_report(settings)
    except ReportUnavailable as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else experiment_report(report))
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from streams.replay.cli import FORMATS, guess_format, replay_settings, run_replay

    path = Path(args.input)
    if not path.exists():
        raise UsageError(f"no such input file: {path}")
    fmt = args.format or guess_format(path)
    if not fmt:
        raise UsageError(f"{path} looks like a CSV: say which log it is with --format ({', '.join(FORMATS[1:])})")
    settings = replay_settings(settings, args.label, args.attribution_window)
    with Progress("replay") as progress:
        metrics = run_replay(settings, path, Path(args.out), fmt, progress=progress)
    models = "; ".join(f"{name} AUC {m['auc'] or 0:.3f} log loss {m['logloss'] or 0:.4f}"
                       for name, m in metrics["models"].items())
    print(f"{metrics['events']} events, {metrics['requests']} requests, {metrics['examples']} examples, "
          f"{metrics['dead_letter']} dead letters -> {args.out}; {models}")
    return 0


def cmd_record(settings: Settings, args: argparse.Namespace) -> int:
    from streams.tools.record import UnknownTopic, record_topic

    topic = settings.topic(args.topic) if args.topic in TOPIC_NAMES else args.topic
    try:
        with Progress(f"record {topic}") as progress:
            count = asyncio.run(record_topic(settings.bootstrap, topic, Path(args.out),
                                             from_beginning=args.from_beginning, until_idle=args.until_idle,
                                             progress=progress.update))
    except UnknownTopic as exc:
        raise UsageError(str(exc)) from None
    print(f"recorded {count} records of {topic} to {args.out}")
    return 0


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from streams.tools.produce import produce_file
    from streams.tools.record import UnknownTopic

    topic = settings.topic(args.topic) if args.topic in TOPIC_NAMES else args.topic
    path = Path(args.file)
    if not path.exists():
        raise UsageError(f"no such file: {path}")
    try:
        with Progress(f"produce {topic}") as progress:
            count = asyncio.run(produce_file(settings.bootstrap, path, topic, rate=args.rate, speed=args.speed,
                                             progress=progress.update))
    except UnknownTopic as exc:
        raise UsageError(str(exc)) from None
    print(f"produced {count} records from {path} to {topic}")
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from streams.tools.eventfile import write_events
    from streams.tools.simulate import simulate

    out = Path(args.out)
    items: dict[str, Any] = {k: v for k, v in (("item_sigma", args.item_sigma), ("style_weight", args.style_weight))
                             if v is not None}
    if args.click_delay is not None:
        try:
            low, mean, high = (float(v) for v in args.click_delay.split(","))
        except ValueError:
            raise UsageError(f"--click-delay {args.click_delay!r}: expected MIN,MEAN_EXTRA,MAX seconds, e.g. 1,8,30") \
                from None
        items["click_delay"] = (low, mean, high)
    events, truth = simulate(users=args.users, events=args.events, seed=args.seed, **items)
    write_events(out, events)
    sidecar = out.with_name(out.name.removesuffix(".gz").removesuffix(".jsonl") + ".truth.json")
    sidecar.write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
    oracle = truth["oracle"]
    print(f"{len(events)} events of {args.users} users -> {out}; truth -> {sidecar} "
          f"(oracle AUC {oracle['auc']:.3f}, log loss {oracle['logloss']:.4f}, click rate {truth['click_rate']:.3f})")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from streams.tools.demo import run_demo

    keep = sys.stdout.isatty() if args.keep is None else args.keep
    return run_demo(settings, users=args.users, events=args.events, seconds=args.seconds,
                    broker_kind=args.kind, keep=keep)


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    rows = show_settings(settings, args.setting_sources)
    width = max(len(name) for name, _, _ in rows)
    value_width = min(48, max(len(value) for _, value, _ in rows))
    for name, value, source in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {source}")
    return 0


def cmd_top(settings: Settings, args: argparse.Namespace) -> int:
    from streams.ops.top import run_top

    url = f"http://{settings.web_host}:{settings.web_port}/dashboard/data.json"
    try:
        return run_top(url, args.interval, args.once)
    except (urllib.error.URLError, OSError) as exc:
        raise UsageError(f"no worker answers at {url} ({exc}); start one with `streamscore worker`, or set "
                         "STREAMSCORE_WEB_HOST/STREAMSCORE_WEB_PORT to a running worker's") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamscore", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default=None, help="debug, info, warning (default: settings)")
    parser.add_argument("--config", default=None, help="a TOML file of settings (file < environment < flags)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting (names as in the TOML file, e.g. --set partitions=8); wins over the "
                             "environment and the file; repeatable")
    sub = parser.add_subparsers(dest="command", required=True)

    broker = sub.add_parser("broker", help="run a local Kafka-protocol broker on 127.0.0.1")
    broker.add_argument("action", choices=["start", "stop", "status"])
    broker.add_argument("--kind", choices=KINDS, default=DEFAULT_KIND,
                        help="kafka (Apache Kafka: Java 17+ and `make kafka`), noida (no Java) or tansu")
    broker.add_argument("--port", type=int, default=None, help="default: the port of STREAMSCORE_BOOTSTRAP")
    broker.set_defaults(func=cmd_broker)

    topics = sub.add_parser("topics", help="create or list the topics")
    topics.add_argument("action", choices=["create", "list"])
    topics.set_defaults(func=cmd_topics)

    worker = sub.add_parser("worker", help="run a worker: features, scoring, feature log")
    worker.set_defaults(func=cmd_worker)

    inspect = sub.add_parser("inspect", help="look at a user's current features, from the worker that owns it")
    inspect.add_argument("what", choices=["user"])
    inspect.add_argument("user_id")
    inspect.add_argument("--items", default=None, help="comma-separated item ids: add user-by-item features")
    inspect.add_argument("--ts", default=None, help="evaluate at this event time (default: the last event's)")
    inspect.set_defaults(func=cmd_inspect)

    learner = sub.add_parser("learner", help="run the learner: examples in; snapshots and metrics out")
    learner.set_defaults(func=cmd_learner)

    experiment = sub.add_parser("experiment", help="per-arm results of the running experiment, with 95%% CIs")
    experiment.add_argument("action", choices=["report"])
    experiment.add_argument("--json", action="store_true", help="the learner's whole report as JSON")
    experiment.set_defaults(func=cmd_experiment)

    replay = sub.add_parser("replay", help="replay a file of events (or a known CSV log) with no broker")
    replay.add_argument("input", help="events as JSON lines (.jsonl, .jsonl.gz), or a CSV with --format")
    replay.add_argument("--out", required=True, help="directory for the output files and metrics.json")
    replay.add_argument("--format", choices=["jsonl", "trivago", "talkingdata"], default=None)
    replay.add_argument("--label", choices=list(LABEL_EVENTS), default=None)
    replay.add_argument("--attribution-window", type=float, default=None, help="seconds, for the label's type")
    replay.add_argument("--config", dest="replay_config", default=None, help="a TOML file of settings")
    replay.set_defaults(func=cmd_replay)

    record = sub.add_parser("record", help="dump a topic (keys, timestamps, offsets) to a JSON-lines file")
    record.add_argument("--topic", required=True, help="a topic name, or a logical one (events, scores, ...)")
    record.add_argument("--out", required=True, help="FILE.jsonl or FILE.jsonl.gz")
    record.add_argument("--from-beginning", action="store_true",
                        help="everything the topic holds (default: only what arrives while recording)")
    record.add_argument("--until-idle", type=float, default=5.0, help="stop after this many seconds with nothing new")
    record.set_defaults(func=cmd_record)

    produce = sub.add_parser("produce", help="write a file of events (or a recording) to a topic")
    produce.add_argument("file")
    produce.add_argument("--topic", default="events", help="a topic name, or a logical one (default: events)")
    pace = produce.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, default=None, help="records per second (default: as fast as possible)")
    pace.add_argument("--speed", type=float, default=None, help="a multiple of event time (1 = as it happened)")
    produce.set_defaults(func=cmd_produce)

    simulate = sub.add_parser("simulate", help="a synthetic stream with a known click model, and its truth")
    simulate.add_argument("--users", type=int, default=500)
    simulate.add_argument("--events", type=int, default=20000)
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--item-sigma", type=float, default=None,
                          help="spread of the items' own effects on the log-odds (0: none; default 0.7)")
    simulate.add_argument("--style-weight", type=float, default=None,
                          help="weight of the user's affinity to the items' hidden style (0: none; default 1.0)")
    simulate.add_argument("--click-delay", default=None, metavar="MIN,MEAN_EXTRA,MAX",
                          help="seconds from a request to its clicks: MIN + an exponential of mean MEAN_EXTRA, "
                               "at most MAX (default 3,40,900)")
    simulate.add_argument("--out", required=True, help="FILE.jsonl.gz; the truth goes to FILE.truth.json")
    simulate.set_defaults(func=cmd_simulate)

    config = sub.add_parser("config", help="the effective settings and where each value came from")
    config.add_argument("action", choices=["show"])
    config.set_defaults(func=cmd_config)

    top = sub.add_parser("top", help="a refreshing table of a worker's numbers and the learner's verdict")
    top.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    top.add_argument("--once", action="store_true", help="print one screen and exit")
    top.set_defaults(func=cmd_top)

    demo = sub.add_parser("demo", help="broker + topics + worker + a synthetic stream; prints scores")
    demo.add_argument("--users", type=int, default=300)
    demo.add_argument("--events", type=int, default=10000)
    demo.add_argument("--seconds", type=float, default=240.0, help="stop after this long at most")
    demo.add_argument("--kind", choices=KINDS, default=DEFAULT_KIND, help="the local broker's kind")
    demo.add_argument("--keep", action=argparse.BooleanOptionalAction, default=None,
                      help="keep the dashboard up at the end until Ctrl-C (default: when run in a terminal)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config_arg = args.config or getattr(args, "replay_config", None)
        config = Path(config_arg) if config_arg else None
        # Offline commands speak in their summary line; a replay's hundreds of model swaps are not news.
        log_level = args.log_level or ("warning" if args.command == "replay" else None)
        settings, args.setting_sources = resolve_settings(
            None, config, flag_assignments(args.set), **({"log_level": log_level} if log_level else {}))
        logging.basicConfig(level=settings.log_level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        # aiokafka logs every failed connection attempt; our own one-line error says it better.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        func: Callable[[Settings, argparse.Namespace], int] = args.func
        return func(settings, args)
    except (SettingsError, BrokerUnreachable, BrokerError, UsageError, TopicMismatch, DataDirInUse) as exc:
        print(f"streamscore: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
