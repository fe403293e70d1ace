"""MSK locally: one Apache Kafka 4 process in KRaft mode, broker and controller in one JVM.

The broker runs from the jars Maven fetched (`stack.local.kafka_jars`) with the model's heap, and
binds only to its node's loopback address, so an AZ outage (nothing answers on 127.0.1.x) takes
it down like any other process of that AZ.

Its data directory is formatted the way ``kafka-storage.sh format --standalone`` does it: a
random cluster id, ``meta.properties``, and a bootstrap checkpoint that makes this node the single
voter of a dynamic KRaft quorum (``controller.quorum.bootstrap.servers``; KIP-853). The voter set
lives in the data, not in the configuration, which is why a later change of the controller port
in the model still starts. Formatting happens inside `DataDir.claim`'s scratch folder, so a
half-formatted directory never exists; on later starts ``meta.properties`` is checked against the
model before the JVM is started, so another node's or a damaged directory is refused, not reused.
"""

from __future__ import annotations

import base64
import logging
import shlex
import socket
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from stack.local.component import Component, ComponentError, Health, ProcessSpec
from stack.local.datadir import DataDir
from stack.local.kafka_jars import (
    JARS_DIR,
    KafkaJarsError,
    classpath,
    ensure_kafka_jars,
    require_java,
)
from stack.local.ports import ensure_free
from stack.model import KafkaCluster, Platform

if TYPE_CHECKING:
    from stack.local.backend import Backend
    from stack.local.workspace import Workspace

LOG = logging.getLogger(__name__)

BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
ROLE = "broker+controller"
CLIENT_LISTENER = "PLAINTEXT"
CONTROLLER_LISTENER = "CONTROLLER"
META_PROPERTIES = "meta.properties"
METADATA_LOG = "__cluster_metadata-0"
FORMAT_TIMEOUT_S = 120.0
PROBE_TIMEOUT_S = 1.0

# What kafka-run-class.sh gives a broker (G1 with short pauses, headless), minus remote JMX and
# GC log files; plus exit-on-OOM, so a broker out of heap dies and is seen dead instead of limping,
# Log4j's own shutdown hook off, so the controlled shutdown's lines still reach the log, and plain
# IPv4 sockets (not v4-mapped IPv6 ones), so stack.local.ports can name the holder of a port.
# C1 only (TieredStopAtLevel=1), measured on 2 cores: restart to ready 2.7 s → 2.1 s and JVM CPU
# until ready 4.0 s → 2.2 s, which counts when the whole platform starts at once; the broker still
# took 340k 200-byte messages/s (570k with C2), far beyond what the services send. Drop it for a
# benchmark of Kafka itself.
BROKER_JVM_FLAGS = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    "-Djava.net.preferIPv4Stack=true",
    "-Dlog4j2.shutdownHookEnabled=false",
)
# The storage tool runs for about a second: the C1 compiler and the serial collector start fastest.
TOOL_JVM_FLAGS = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                  "-Djava.awt.headless=true")

# Everything to stdout: the runner sends stdout to the node's log file, which `come2us logs`
# reads and ComponentError quotes. The layout is the one Kafka's own log4j2.yaml uses.
LOG4J2_PROPERTIES = """\
status = warn
name = come2us-kafka
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.target = SYSTEM_OUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
"""


def server_properties(cluster: KafkaCluster, log_dir: Path) -> dict[str, str]:
    """The broker's configuration, derived from the model alone (plus where its data lives)."""
    host = cluster.broker.host
    client = f"{CLIENT_LISTENER}://{host}:{cluster.broker.port}"
    controller = f"{CONTROLLER_LISTENER}://{host}:{cluster.controller_port}"
    return {
        "process.roles": "broker,controller",
        "node.id": str(cluster.node_id),
        "controller.quorum.bootstrap.servers": f"{host}:{cluster.controller_port}",
        "listeners": f"{client},{controller}",
        # The controller listener is advertised too: with a dynamic quorum it is how the voter
        # is found, and it is recorded in the voter set at format time.
        "advertised.listeners": f"{client},{controller}",
        "controller.listener.names": CONTROLLER_LISTENER,
        "inter.broker.listener.name": CLIENT_LISTENER,
        "listener.security.protocol.map": (
            f"{CLIENT_LISTENER}:PLAINTEXT,{CONTROLLER_LISTENER}:PLAINTEXT"
        ),
        "log.dirs": str(log_dir),
        "num.partitions": str(cluster.default_partitions),
        # One broker: the internal topics' default replication factor of 3 could never be met.
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # After a crash (kill -9, an AZ outage) the restarted broker is refused as a duplicate
        # until the controller has timed out the dead one's session: 9 s by default, measured as
        # 12.8 s from start to ready. Faster heartbeats on loopback make that about 4 s.
        "broker.heartbeat.interval.ms": str(cluster.heartbeat_ms),
        "broker.session.timeout.ms": str(cluster.session_timeout_ms),
        # Consumers of a new group get partitions at once instead of after the 3 s default.
        "group.initial.rebalance.delay.ms": "0",
        # As on MSK with auto.create.topics.enable: services publish without creating topics.
        "auto.create.topics.enable": "true",
    }


def render_properties(properties: Mapping[str, str]) -> str:
    """Java .properties text; refuses values that the format would silently change."""
    lines = []
    for key, value in properties.items():
        if any(ch in key + value for ch in "\\\n\r"):
            raise ValueError(f"{key}={value!r}: backslashes and line breaks are not supported")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def parse_properties(text: str) -> dict[str, str]:
    """Read the simple ``key=value`` files Kafka writes (meta.properties); comments skipped."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"not a key=value line: {line!r}")
        values[key.strip()] = value.strip()
    return values


def new_cluster_id() -> str:
    """A random cluster id in Kafka's form: 16 random bytes, URL-safe base64 without padding.

    Kafka's own generator also never starts an id with "-", since it would read as an option
    on a command line; the same rule is kept here.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _is_kafka_uuid(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value + "==")) == 16 and len(value) == 22
    except ValueError:
        return False


def check_meta_properties(log_dir: Path, node_id: int) -> str | None:
    """Why ``log_dir`` is not a formatted KRaft log directory of node ``node_id``, or None."""
    meta = log_dir / META_PROPERTIES
    try:
        values = parse_properties(meta.read_text())
    except FileNotFoundError:
        return f"{META_PROPERTIES} is missing (the directory was never formatted by Kafka)"
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return f"{META_PROPERTIES} is unreadable ({err})"
    if values.get("version") != "1":
        return f"{META_PROPERTIES} has version {values.get('version')!r}; KRaft writes version 1"
    if values.get("node.id") != str(node_id):
        return (f"{META_PROPERTIES} belongs to node.id {values.get('node.id')!r}, but the model "
                f"gives this broker node.id {node_id}")
    for key in ("cluster.id", "directory.id"):
        if not _is_kafka_uuid(values.get(key, "")):
            return f"{META_PROPERTIES} has no valid {key} (found {values.get(key)!r})"
    if not (log_dir / METADATA_LOG).is_dir():
        return f"the KRaft metadata log {METADATA_LOG} is missing"
    return None


def read_cluster_id(log_dir: Path) -> str | None:
    try:
        return parse_properties((log_dir / META_PROPERTIES).read_text()).get("cluster.id")
    except (OSError, UnicodeDecodeError, ValueError):
        return None


class KafkaBroker(Component):
    """The MSK cluster's single node, run from Maven's jars by a local JVM.

    Example::

        broker = KafkaBroker(come2us().data.kafka, Workspace.default(), ProcessBackend())
        broker.start()
        broker.wait_ready()   # Health(ok=True, detail="cluster …, user topics: 0", role=…)
        Producer({"bootstrap.servers": broker.cluster.bootstrap_servers})
        broker.stop()         # SIGTERM: controlled shutdown, logs flushed
    """

    kind = "kafka"

    def __init__(self, cluster: KafkaCluster, workspace: Workspace, backend: Backend,
                 jars: Path = JARS_DIR) -> None:
        super().__init__(cluster.broker, cluster.timeouts, workspace, backend)
        self.cluster = cluster
        self.jars = jars

    # -- files -------------------------------------------------------------------------

    @property
    def config_dir(self) -> Path:
        """Generated from the model on every start; never edited by hand, never data."""
        return self.workspace.run / self.name

    @property
    def server_config(self) -> Path:
        return self.config_dir / "server.properties"

    @property
    def log_config(self) -> Path:
        return self.config_dir / "log4j2.properties"

    def _java(self, flags: tuple[str, ...], main_class: str, *args: str) -> list[str]:
        return [
            "java", *flags,
            f"-Dlog4j2.configurationFile={self.log_config}",
            "-cp", classpath(self.jars),
            main_class, *args,
        ]

    # -- lifecycle ---------------------------------------------------------------------

    def process(self) -> ProcessSpec:
        flags = (*shlex.split(self.cluster.heap), *BROKER_JVM_FLAGS)
        return ProcessSpec(tuple(self._java(flags, BROKER_MAIN, str(self.server_config))))

    def prepare(self) -> None:
        try:
            ensure_kafka_jars(self.jars)
            require_java()
        except KafkaJarsError as err:
            raise ComponentError(f"{self.name}: {err}") from err
        # Component.start checked the client port; the controller port is Kafka's own.
        ensure_free(self.node.host, self.cluster.controller_port, f"{self.name} (controller)")
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.log_config.write_text(LOG4J2_PROPERTIES)
        DataDir(self.data_dir, self.name, self.kind).claim(self._format, self._check)
        self.server_config.write_text(
            render_properties(server_properties(self.cluster, self.data_dir)))

    def _check(self, log_dir: Path) -> str | None:
        return check_meta_properties(log_dir, self.cluster.node_id)

    def _format(self, scratch: Path) -> None:
        """Format ``scratch`` as this node's log directory: ``kafka-storage format --standalone``.

        The storage tool reads the broker's configuration, so it is given the real one with only
        log.dirs pointing at the scratch folder; the folder is renamed into place afterwards,
        which Kafka does not mind (meta.properties does not record the path).
        """
        properties = self.config_dir / "format.properties"
        properties.write_text(render_properties(server_properties(self.cluster, scratch)))
        argv = self._java(TOOL_JVM_FLAGS, STORAGE_TOOL, "format",
                          "--cluster-id", new_cluster_id(), "--config", str(properties),
                          "--standalone")
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired as err:
            raise ComponentError(
                f"{self.name}: formatting {scratch} took more than {FORMAT_TIMEOUT_S:g} s"
            ) from err
        finally:
            properties.unlink(missing_ok=True)
        problem = check_meta_properties(scratch, self.cluster.node_id)
        if done.returncode != 0 or problem:
            output = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise ComponentError(
                f"{self.name}: `kafka-storage format` failed (code {done.returncode}"
                f"{'; ' + problem if problem else ''}):\n{output}"
            )

    def probe(self) -> Health:
        address = self.node.address
        # A plain connect first: while the JVM starts, this answers in microseconds, and the
        # Kafka client is not made to log a refused connection every tenth of a second.
        try:
            socket.create_connection((str(self.node.host), self.node.port),
                                     timeout=PROBE_TIMEOUT_S).close()
        except OSError as err:
            return Health(False, f"{address} does not accept connections ({err})")
        admin = AdminClient({
            "bootstrap.servers": address,
            "socket.timeout.ms": int(PROBE_TIMEOUT_S * 1000),
            "log.connection.close": False,
        }, logger=LOG)
        try:
            metadata = admin.list_topics(timeout=PROBE_TIMEOUT_S)
        except KafkaException as err:
            return Health(False, f"{address} accepts connections but no metadata yet ({err})")
        if self.cluster.node_id not in metadata.brokers:
            return Health(False, f"{address} answers, but broker {self.cluster.node_id} is not "
                                 f"registered yet (brokers: {sorted(metadata.brokers)})")
        topics = [name for name in metadata.topics if not name.startswith("__")]
        return Health(True, f"cluster {metadata.cluster_id}, user topics: {len(topics)}",
                      role=ROLE)

    @property
    def cluster_id(self) -> str | None:
        """The id formatted into the data directory: the same across restarts of one cluster."""
        return read_cluster_id(self.data_dir)


def kafka_components(model: Platform, workspace: Workspace, backend: Backend) -> list[Component]:
    return [KafkaBroker(model.data.kafka, workspace, backend)]
