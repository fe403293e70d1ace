"""docker-compose.localstack.yml agrees with the stack model, and Compose itself accepts it.

The compose file cannot read the model, so it restates names, zones, addresses, ports and
settings; these tests read every one of those from `stack.come2us.come2us_on_block(0)` and compare.
Syntax is checked without a Docker engine by tools/composecheck, a small Go program around
compose-spec/compose-go: the loader `docker compose` itself is built on, which validates the
file against the Compose JSON schema, interpolates variables, applies profiles and checks that
every reference (depends_on, …) resolves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.come2us import come2us_on_block
from stack.local.containers import (
    COMPOSE_FILE,
    DATA_VARIABLE,
    LOCALSTACK_PROFILE,
    LOCALSTACK_SERVICE,
    SECRET_VARIABLES,
)
from stack.local.workspace import PROJECT_ROOT
from stack.model import Platform, Timeouts

COMPOSECHECK_SOURCE = PROJECT_ROOT / "tools" / "composecheck"
KAFKA_POM = PROJECT_ROOT / "tools" / "kafka" / "pom.xml"
SYNC_COMMIT_JOB = "rds-synchronous-commit"
DATA_MOUNT = re.compile(r"^\$\{" + DATA_VARIABLE + r":-(?P<default>[^}]*)\}/(?P<folder>[^:]+):")


@pytest.fixture(scope="module")
def model() -> Platform:
    return come2us_on_block(0)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def words(service: Mapping[str, Any]) -> list[str]:
    """The command line as a list of arguments (the file writes commands as lists)."""
    command = service.get("command") or []
    assert isinstance(command, list), "write commands as lists, so arguments are unambiguous"
    return [str(arg) for arg in command]


def option(service: Mapping[str, Any], flag: str) -> list[str]:
    """The values that follow ``flag`` in the command line, in order."""
    argv = words(service)
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def settings(service: Mapping[str, Any]) -> dict[str, str]:
    """PostgreSQL ``-c key=value`` settings of the command line."""
    return dict(value.split("=", 1) for value in option(service, "-c"))


def env(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    assert isinstance(environment, dict), "write environments as mappings"
    return {key: str(value) for key, value in environment.items()}


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, f"{duration!r}: write durations in whole seconds"
    return float(match[1])


def timeouts_by_node(model: Platform) -> dict[str, Timeouts]:
    data = model.data
    groups = [(model.aws.nodes, model.aws.timeouts),
              (data.postgres.nodes, data.postgres.timeouts),
              (data.session_redis.nodes, data.session_redis.timeouts),
              (data.cache_redis.nodes, data.cache_redis.timeouts),
              (data.kafka.nodes, data.kafka.timeouts)]
    return {node.name: timeouts for nodes, timeouts in groups for node in nodes}


# -- the model's nodes, one service each -----------------------------------------------------


def test_every_model_node_has_a_service_of_the_same_name(
        model: Platform, services: dict[str, Any]) -> None:
    nodes = {node.name for node in model.backing_nodes()}
    assert nodes <= set(services), f"missing services: {sorted(nodes - set(services))}"
    # Anything else is one of the two documented extras, not a stray node.
    assert set(services) - nodes == {LOCALSTACK_SERVICE, SYNC_COMMIT_JOB}


def test_the_project_is_named_after_the_platform(model: Platform,
                                                 compose: dict[str, Any]) -> None:
    assert compose["name"] == model.name


def test_every_service_uses_the_host_network_and_never_restarts_itself(
        services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert service.get("network_mode") == "host", name
        assert service.get("restart") == "no", name
        assert "ports" not in service, f"{name}: host networking publishes no ports"


def test_labels_name_the_node_its_zone_and_role(model: Platform,
                                                services: dict[str, Any]) -> None:
    for node in model.backing_nodes():
        labels = services[node.name]["labels"]
        assert labels == {"come2us.node": node.name, "come2us.zone": node.zone.label,
                          "come2us.role": node.role}, node.name
    assert services[LOCALSTACK_SERVICE]["labels"]["come2us.node"] == model.aws.node.name


def test_each_node_service_carries_its_host_and_port(model: Platform,
                                                     services: dict[str, Any]) -> None:
    for node in model.backing_nodes():
        service = services[node.name]
        text = " ".join([*words(service), *env(service).values()])
        assert str(node.host) in text, f"{node.name}: {node.host} not in its command/environment"
        assert str(node.port) in text, f"{node.name}: {node.port} not in its command/environment"


def test_each_node_service_has_a_health_check_of_its_own_address(
        model: Platform, services: dict[str, Any]) -> None:
    for node in [*model.backing_nodes(), model.aws.node]:
        for name in {node.name} | ({LOCALSTACK_SERVICE} if node == model.aws.node else set()):
            check = services[name].get("healthcheck") or {}
            test = check.get("test")
            assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: no health check"
            text = " ".join(test[1:])
            assert str(node.host) in text and str(node.port) in text, f"{name}: checks {text}"


def test_stop_grace_periods_are_the_models_stop_timeouts(model: Platform,
                                                         services: dict[str, Any]) -> None:
    for name, timeouts in timeouts_by_node(model).items():
        assert seconds(services[name]["stop_grace_period"]) == timeouts.stop_s, name


def test_data_lives_in_git_ignored_per_node_folders(services: dict[str, Any]) -> None:
    ignored = (PROJECT_ROOT / ".gitignore").read_text().splitlines()
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            match = DATA_MOUNT.match(volume)
            if match is None:
                assert volume.startswith("./tools/docker/"), f"{name}: unexpected mount {volume}"
                continue
            assert match["folder"] == name, f"{name} keeps its data in {match['folder']}"
            default = match["default"].removeprefix("./")
            assert f"/{default.split('/')[0]}/" in ignored, f"{default} is not git-ignored"


def test_mounted_scripts_exist_and_are_executable(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            if volume.startswith("./tools/docker/"):
                script = PROJECT_ROOT / volume.split(":")[0]
                assert script.is_file(), f"{name}: {script} is missing"
                assert os.access(script, os.X_OK), f"{name}: {script} is not executable"
                assert volume.endswith(":ro"), f"{name}: mount {script.name} read-only"


# -- settings, store by store ----------------------------------------------------------------


def test_aws_endpoints_listen_on_the_models_address(model: Platform,
                                                    services: dict[str, Any]) -> None:
    node = model.aws.node
    moto = services[node.name]
    assert option(moto, "-H") == [str(node.host)]
    assert option(moto, "-p") == [str(node.port)]
    localstack = services[LOCALSTACK_SERVICE]
    assert localstack["profiles"] == [LOCALSTACK_PROFILE]
    assert env(localstack)["GATEWAY_LISTEN"] == node.address
    # The token is checked by the container's entrypoint, never at load time (see
    # test_a_required_variable_in_a_profile_breaks_every_command).
    assert env(localstack)["LOCALSTACK_AUTH_TOKEN"] == "${LOCALSTACK_AUTH_TOKEN:-}"
    assert localstack["entrypoint"] == ["/come2us/localstack.sh"]


def test_postgres_writer_and_standby(model: Platform, services: dict[str, Any]) -> None:
    cluster = model.data.postgres
    for node in cluster.nodes:
        service = services[node.name]
        argv = words(service)
        assert argv[0] == "postgres" and argv[1::2] == ["-c"] * (len(argv) // 2), (
            f"{node.name}: the command must be `postgres` then `-c key=value` pairs: {argv}")
        assert settings(service)["listen_addresses"] == str(node.host), node.name
        assert settings(service)["port"] == str(node.port), node.name
        assert settings(service)["max_connections"] == str(cluster.max_connections), node.name
        assert settings(service)["hot_standby"] == "on", node.name
        assert settings(service)["cluster_name"] == node.name, node.name
        assert env(service)["PGPORT"] == str(node.port), node.name
        assert env(service)["COME2US_REPLICATION_USER"] == cluster.replication_user, node.name

    writer = env(services[cluster.writer.name])
    assert writer["POSTGRES_USER"] == cluster.admin_user
    assert writer["POSTGRES_DB"] == cluster.database
    assert "--auth-host=scram-sha-256" in writer["POSTGRES_INITDB_ARGS"]

    standby = services[cluster.standby.name]
    assert env(standby)["COME2US_WRITER_HOST"] == str(cluster.writer.host)
    assert env(standby)["COME2US_WRITER_PORT"] == str(cluster.writer.port)
    assert env(standby)["COME2US_STANDBY_SLOT"] == cluster.slot
    assert standby["depends_on"][cluster.writer.name]["condition"] == "service_healthy"


def test_synchronous_commit_job_names_the_standby(model: Platform,
                                                  services: dict[str, Any]) -> None:
    cluster = model.data.postgres
    assert cluster.synchronous_commit
    job = env(services[SYNC_COMMIT_JOB])
    assert job["PGHOST"] == str(cluster.writer.host)
    assert job["PGPORT"] == str(cluster.writer.port)
    assert job["PGUSER"] == cluster.admin_user
    assert job["COME2US_SYNC_STANDBY"] == cluster.slot


def test_passwords_come_from_the_env_file_variables(services: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text()
    assert "PASSWORD: ${COME2US_POSTGRES_PASSWORD:?" in text
    for variable in SECRET_VARIABLES:
        assert f"${{{variable}:?" in text, variable
    for name, service in services.items():
        for key, value in env(service).items():
            if "PASSWORD" in key:
                assert value.startswith("${COME2US_"), f"{name}: {key} is written in the file"


def test_session_redis_primary_and_replica(model: Platform, services: dict[str, Any]) -> None:
    group = model.data.session_redis
    for node in (group.primary, group.replica):
        service = services[node.name]
        assert option(service, "--bind") == [str(node.host)], node.name
        assert option(service, "--bind-source-addr") == [str(node.host)], node.name
        assert option(service, "--port") == [str(node.port)], node.name
        assert option(service, "--replica-announce-ip") == [str(node.host)], node.name
        assert option(service, "--appendonly") == ["yes" if group.append_only else "no"]
    replica = words(services[group.replica.name])
    at = replica.index("--replicaof")
    assert replica[at + 1:at + 3] == [str(group.primary.host), str(group.primary.port)]
    assert "--replicaof" not in words(services[group.primary.name])


def test_each_sentinel_watches_the_models_master_with_its_quorum(
        model: Platform, services: dict[str, Any]) -> None:
    group = model.data.session_redis
    assert len(group.sentinels) == 3
    for node in group.sentinels:
        service = services[node.name]
        assert env(service) == {
            "SENTINEL_BIND": str(node.host),
            "SENTINEL_PORT": str(node.port),
            "SENTINEL_MASTER_NAME": group.master_name,
            "SENTINEL_MASTER_HOST": str(group.primary.host),
            "SENTINEL_MASTER_PORT": str(group.primary.port),
            "SENTINEL_QUORUM": str(group.quorum),
            "SENTINEL_DOWN_AFTER_MS": str(group.down_after_ms),
            "SENTINEL_FAILOVER_TIMEOUT_MS": str(group.failover_timeout_ms),
        }, node.name
        data = [v for v in service["volumes"] if v.endswith(":/data")]
        assert data and node.name in data[0], f"{node.name}: needs a writable config of its own"


def test_cache_redis_is_bounded_with_lru_and_keeps_nothing(model: Platform,
                                                           services: dict[str, Any]) -> None:
    cache = model.data.cache_redis
    service = services[cache.node.name]
    assert option(service, "--bind") == [str(cache.node.host)]
    assert option(service, "--port") == [str(cache.node.port)]
    assert option(service, "--maxmemory") == [cache.max_memory]
    assert option(service, "--maxmemory-policy") == [cache.eviction_policy]
    assert option(service, "--appendonly") == ["no"]
    assert option(service, "--save") == [""]


def test_kafka_runs_kraft_combined_on_the_models_listeners(
        model: Platform, services: dict[str, Any]) -> None:
    kafka = model.data.kafka
    host, port = kafka.broker.host, kafka.broker.port
    variables = env(services[kafka.broker.name])
    assert variables["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert variables["KAFKA_NODE_ID"] == str(kafka.node_id)
    assert variables["KAFKA_LISTENERS"] == (
        f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{kafka.controller_port}")
    assert variables["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{host}:{port}"
    assert variables["KAFKA_CONTROLLER_QUORUM_VOTERS"] == (
        f"{kafka.node_id}@{host}:{kafka.controller_port}")
    assert variables["KAFKA_NUM_PARTITIONS"] == str(kafka.default_partitions)
    assert variables["KAFKA_HEAP_OPTS"] == kafka.heap


def test_kafka_image_is_the_release_the_local_broker_runs(services: dict[str, Any],
                                                          model: Platform) -> None:
    if not KAFKA_POM.exists():
        pytest.skip(f"{KAFKA_POM} is missing: no local Kafka release to compare with")
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom = ET.parse(KAFKA_POM)  # noqa: S314 - the project's own file, not untrusted input
    version = pom.getroot().findtext("m:properties/m:kafka.version", namespaces=namespace)
    assert version, f"{KAFKA_POM} names no kafka.version"
    assert services[model.data.kafka.broker.name]["image"] == f"apache/kafka:{version}"


# -- Compose's own loader (compose-spec/compose-go), built with Go ----------------------------


@pytest.fixture(scope="session")
def composecheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build tools/composecheck once per session; skipped only when Go is not installed."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("`go` is not installed: the compose file's syntax is validated by "
                    "tools/composecheck (compose-spec/compose-go), which is built with Go")
    binary = tmp_path_factory.mktemp("composecheck") / "composecheck"
    done = subprocess.run(
        [go, "build", "-buildvcs=false", "-o", str(binary), "."],
        cwd=COMPOSECHECK_SOURCE, capture_output=True, text=True, timeout=600, check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"building tools/composecheck failed:\n{done.stdout}{done.stderr}")
    return binary


def load(composecheck: Path, compose_file: Path, variables: Mapping[str, str],
         *profiles: str) -> subprocess.CompletedProcess[str]:
    """Load a compose file as `docker compose` would, with exactly these variables set."""
    flags = [flag for profile in profiles for flag in ("-profile", profile)]
    return subprocess.run(
        [str(composecheck), *flags, str(compose_file)],
        env={"PATH": os.environ.get("PATH", ""), **variables},
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.fixture
def come2us_variables(tmp_path: Path) -> dict[str, str]:
    """What the container backend's env file provides."""
    return {DATA_VARIABLE: str(tmp_path / "docker"),
            **{variable: "not-a-real-password" for variable in SECRET_VARIABLES}}


def test_compose_accepts_the_file(composecheck: Path, come2us_variables: dict[str, str],
                                  services: dict[str, Any], tmp_path: Path) -> None:
    done = load(composecheck, COMPOSE_FILE, come2us_variables)
    assert done.returncode == 0, done.stderr
    project = json.loads(done.stdout)
    assert project["name"] == come2us_on_block(0).name
    assert set(project["services"]) == set(services) - {LOCALSTACK_SERVICE}
    for name, service in project["services"].items():
        for volume in service.get("volumes") or []:
            if volume["target"] in ("/data", "/var/lib/postgresql/data", "/var/lib/kafka/data"):
                assert volume["source"] == str(tmp_path / "docker" / name)


def test_compose_accepts_the_localstack_profile_without_a_token(
        composecheck: Path, come2us_variables: dict[str, str]) -> None:
    done = load(composecheck, COMPOSE_FILE, come2us_variables, LOCALSTACK_PROFILE)
    assert done.returncode == 0, done.stderr
    localstack = json.loads(done.stdout)["services"][LOCALSTACK_SERVICE]
    assert localstack["environment"]["LOCALSTACK_AUTH_TOKEN"] == ""


def test_compose_refuses_the_file_without_the_passwords(composecheck: Path) -> None:
    done = load(composecheck, COMPOSE_FILE, {})
    assert done.returncode == 1
    for variable in SECRET_VARIABLES:
        assert f"required variable {variable} is missing a value" in done.stderr
    assert "come2us up --docker" in done.stderr


def test_a_required_variable_in_a_profile_breaks_every_command(composecheck: Path,
                                                              tmp_path: Path) -> None:
    """Why the LocalStack token is checked by the container and not with `${…:?…}`.

    Compose interpolates every service before it applies profiles, so a required variable in
    the LocalStack service would make every command fail for anyone without a token, even
    with the profile off. If this ever passes, the file can use `${LOCALSTACK_AUTH_TOKEN:?…}`.
    """
    probe = tmp_path / "compose.yml"
    probe.write_text(
        "services:\n"
        "  always: {image: redis:7}\n"
        "  optional:\n"
        "    image: localstack/localstack\n"
        "    profiles: [optional]\n"
        "    environment: {TOKEN: '${TOKEN:?needs a token}'}\n"
    )
    done = load(composecheck, probe, {})
    assert done.returncode == 1
    assert "required variable TOKEN is missing a value" in done.stderr
