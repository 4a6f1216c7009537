"""Apache Kafka as a local broker: one KRaft node (broker and controller) started from Kafka's own jars.

The jars come from Maven Central through ``broker/pom.xml``: ``make kafka`` copies the runtime classpath into
``.kafka/libs/`` (ignored by git), once per version. Nothing here downloads anything: a missing JDK or missing
jars is a :class:`~streams.kafka.broker.BrokerError` that says what is missing and that ``--kind noida`` needs
neither.

Laptop settings: a small heap, replication 1 for the internal topics, no initial rebalance delay (a test's
worker joins at once), a few partitions for the internal topics (creating fifty offsets partitions is most of
a first group join). Everything lives in the data directory: ``server.properties`` (kept, so a restart on the
same directory has the same ports and cluster), the formatted log dirs under ``logs/``, the broker's own log
in ``server.log``, what the JVM printed in ``jvm.out``, and the process id in ``kafka.pid``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from streams.kafka.broker import BrokerError, LocalBroker, free_port

REPO = Path(__file__).resolve().parents[2]
MIN_JAVA = 17
HEAP = "-Xmx512m"

_LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""


def kafka_libs() -> Path:
    """Where Kafka's jars are: ``STREAMSCORE_KAFKA_LIBS``, else the checkout's ``.kafka/libs`` (``make kafka``)."""
    configured = os.environ.get("STREAMSCORE_KAFKA_LIBS")
    return Path(configured) if configured else REPO / ".kafka" / "libs"


def kafka_version(libs: Path | None = None) -> str | None:
    """The version of the broker jar in ``libs`` (``kafka_2.13-4.4.0.jar`` -> ``4.4.0``), or None."""
    for jar in sorted((libs or kafka_libs()).glob("kafka_2.13-*.jar")):
        match = re.fullmatch(r"kafka_2\.13-(\d[\w.-]*)\.jar", jar.name)
        if match:
            return match.group(1)
    return None


def java_binary() -> str | None:
    """``$JAVA_HOME/bin/java`` when set, else ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def java_major(java: str) -> int | None:
    """The major version ``java -version`` reports (``17.0.15`` -> 17, ``1.8.0`` -> 8)."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


@dataclass(frozen=True)
class KafkaInstall:
    java: str
    libs: Path
    version: str


def missing_kafka() -> str | None:
    """Why a Kafka broker cannot start here, in one line; None when it can."""
    java = java_binary()
    major = java_major(java) if java else None
    if java is None or major is None or major < MIN_JAVA:
        found = "no java on PATH" if java is None else f"{java} is Java {major}"
        return (f"Apache Kafka needs Java {MIN_JAVA} or newer ({found}); install a JDK, "
                "or use `--kind noida`, which needs no Java")
    if kafka_version() is None:
        return (f"Kafka's jars are not in {kafka_libs()}: run `make kafka` (Maven fetches them from Maven Central), "
                "or use `--kind noida`, which needs no Java")
    return None


def kafka_install() -> KafkaInstall:
    problem = missing_kafka()
    if problem is not None:
        raise BrokerError(problem)
    java, version = java_binary(), kafka_version()
    assert java is not None and version is not None
    return KafkaInstall(java, kafka_libs(), version)


def server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    """One KRaft node on loopback with test-friendly settings (see the module's docstring)."""
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={data_dir / 'logs'}",
        "num.partitions=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=4",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=4",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "",
    ])


class KafkaBroker(LocalBroker):
    kind = "kafka"
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def _properties(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def version(self) -> str | None:
        return kafka_version()

    def _pid(self) -> int | None:
        try:
            pid = int(self._pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return pid if self._alive(pid) else None

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            # Our own child: poll() reaps it once exited (a zombie still answers kill 0), and right after the
            # fork its command line is still empty.
            return self._proc.poll() is None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        # Neither a reused pid, nor another directory's broker, nor a zombie (empty command line) is ours.
        return b"kafka.Kafka" in cmdline and str(self._properties).encode() in cmdline

    def _configure(self) -> None:
        """Write ``server.properties`` once; a restart on the same directory keeps its ports and cluster."""
        if self._properties.exists():
            wanted = f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}"
            if wanted not in self._properties.read_text().splitlines():
                raise BrokerError(f"{self.data_dir} holds a Kafka broker for another port; "
                                  "use that port or another data directory")
            return
        self._properties.write_text(server_properties(self.data_dir, self.port, free_port()))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J.format(log=self.log_file))

    def _java(self, install: KafkaInstall, main: str, *args: str) -> list[str]:
        return [install.java, HEAP, "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
                "-cp", f"{install.libs}/*", main, *args]

    def _format_storage(self, install: KafkaInstall) -> None:
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        cluster_id = subprocess.run(self._java(install, "kafka.tools.StorageTool", "random-uuid"),
                                    capture_output=True, text=True, timeout=120).stdout.strip().splitlines()
        proc = subprocess.run(
            self._java(install, "kafka.tools.StorageTool", "format", "--standalone", "--ignore-formatted",
                       "-t", cluster_id[-1] if cluster_id else "", "-c", str(self._properties)),
            capture_output=True, text=True, timeout=120,
        )
        if proc.returncode != 0:
            raise BrokerError(f"formatting Kafka's storage in {self.data_dir} failed: {proc.stderr.strip()[-500:]}")

    def _launch(self) -> None:
        install = kafka_install()
        self._configure()
        self._format_storage(install)
        with (self.data_dir / "jvm.out").open("ab") as out:
            proc = subprocess.Popen(self._java(install, "kafka.Kafka", str(self._properties)),
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self._pid_file.write_text(str(proc.pid))
        self._proc = proc

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM: Kafka shuts down in order (logs flushed, a clean-shutdown marker); SIGKILL after ``timeout``."""
        pid = self._pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return
        with contextlib.suppress(ProcessLookupError):  # it may exit on its own in between
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while self._alive(pid) and time.monotonic() < deadline + 10:
                time.sleep(0.05)
        if self._alive(pid):
            raise BrokerError(f"Kafka broker pid {pid} survived SIGKILL; its data is in {self.data_dir}")
        self._pid_file.unlink(missing_ok=True)

    def is_running(self) -> bool:
        return self._pid() is not None

    def start(self, timeout: float = 60.0) -> str:
        try:
            return super().start(timeout)
        except BrokerError as exc:
            raise BrokerError(f"{exc}; the broker's log is {self.log_file}") from None


# The command-line tools of the same classpath (``bin/kafka-*.sh`` of a Kafka release), by main class.
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSUMER_GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def kafka_tool(main: str, *args: str, stdin: bytes | None = None, timeout: float = 120.0) -> str:
    """Run one of Kafka's own command-line tools and return what it printed; raise if it failed."""
    install = kafka_install()
    command = [install.java, "-Xmx256m", "-Dlog4j2.rootLogger.level=WARN", "-cp", f"{install.libs}/*", main, *args]
    proc = subprocess.run(command, input=stdin, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise BrokerError(f"{main.rsplit('.', 1)[-1]} {' '.join(args)} failed ({proc.returncode}): "
                          f"{proc.stderr.decode(errors='replace').strip()[-800:]}")
    return proc.stdout.decode(errors="replace")
