"""Steps of features/local_cloud.feature: each sentence becomes one call on stack/ or a client."""

from __future__ import annotations

import os
import signal
import uuid

from psycopg import sql
from pytest_bdd import given, parsers, then, when

from stack.deploy_lock import LockHeld
from stack.local import clients
from stack.local.aws_clients import aws_client
from stack.local.ports import listening_sockets
from stack.local.session import CloudSession
from stack.model import Node
from stack.waiting import wait_for
from steps.common import Scene, rows

READ_TIMEOUT_S = 10.0
KAFKA_TIMEOUT_S = 60.0


# -- Placement --------------------------------------------------------------------------------


@then("every component of the stack model is ready")
def every_component_ready(cloud: CloudSession, scene: Scene) -> None:
    status = rows(cloud)
    expected = {node.name for node in scene.model.nodes()}
    assert set(status) == expected
    not_ready = {name: row["detail"] for name, row in status.items() if row["state"] != "ready"}
    assert not not_ready, not_ready


@then("every component listens only on its own address in its zone")
def listens_only_on_own_address(cloud: CloudSession, scene: Scene) -> None:
    status = rows(cloud)
    for node in scene.model.nodes():
        pid = status[node.name]["pid"]
        assert pid, f"{node.name} has no pid"
        hosts = {listener.host for listener in listening_sockets(pid)}
        assert hosts == {node.host}, f"{node.name} listens on {hosts}, not only {node.host}"
        assert node.host in node.zone.loopback
        ports = {listener.port for listener in listening_sockets(pid)}
        assert node.port in ports, f"{node.name} does not listen on {node.port}: {ports}"


def _zone_of_role(cloud: CloudSession, nodes: tuple[Node, ...], role: str) -> str:
    status = rows(cloud)
    zones = [status[n.name]["zone"] for n in nodes if status[n.name]["role"] == role]
    assert len(zones) == 1, f"expected one {role} among {[n.name for n in nodes]}: {zones}"
    return str(zones[0])


@then("the PostgreSQL writer runs in AZ-a and its synchronous standby in AZ-b")
def postgres_placement(cloud: CloudSession, scene: Scene) -> None:
    nodes = scene.model.data.postgres.nodes
    assert _zone_of_role(cloud, nodes, "writer") == "AZ-a"
    assert _zone_of_role(cloud, nodes, "standby") == "AZ-b"
    writer = rows(cloud)[scene.model.data.postgres.writer.name]
    assert f"{scene.model.data.postgres.slot} streaming (sync)" in writer["detail"]


@then("the session Redis primary runs in AZ-a and its replica in AZ-b")
def session_redis_placement(cloud: CloudSession, scene: Scene) -> None:
    group = scene.model.data.session_redis
    nodes = (group.primary, group.replica)
    assert _zone_of_role(cloud, nodes, "master") == "AZ-a"
    assert _zone_of_role(cloud, nodes, "replica") == "AZ-b"


# -- PostgreSQL ---------------------------------------------------------------------------------

ROWS_TABLE = sql.Identifier("feature_rows")


def commit_row(scene: Scene, cloud: CloudSession) -> str:
    row_id = str(uuid.uuid4())
    with clients.postgres_writer(scene.model, cloud.workspace) as conn:
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (id uuid PRIMARY KEY, note text)")
                     .format(ROWS_TABLE))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (%s, 'committed on the writer')")
                     .format(ROWS_TABLE), (row_id,))
    return row_id


def read_row(scene: Scene, cloud: CloudSession, row_id: str) -> tuple[str, str]:
    """Wait until the reader endpoint sees the row; returns (note, host that answered)."""
    with clients.postgres_reader(scene.model, cloud.workspace) as conn:

        def attempt() -> tuple[tuple[str, str] | None, str]:
            found = conn.execute(sql.SQL("SELECT note FROM {} WHERE id = %s")
                                 .format(ROWS_TABLE), (row_id,)).fetchone()
            return ((found[0], conn.info.host) if found else None), "row not replayed yet"

        return wait_for(attempt, timeout=READ_TIMEOUT_S, what="row on the reader endpoint")


@when("I commit a row through the writer endpoint")
def commit_row_on_writer(scene: Scene, cloud: CloudSession) -> None:
    scene.values["row"] = commit_row(scene, cloud)


@then("the row is readable through the reader endpoint")
def row_readable_on_reader(scene: Scene, cloud: CloudSession) -> None:
    note, host = read_row(scene, cloud, scene.values["row"])
    assert note == "committed on the writer"
    scene.values["reader host"] = host


@then("the reader endpoint is served by the standby in AZ-b")
def reader_is_standby(scene: Scene) -> None:
    standby = scene.model.data.postgres.standby
    assert scene.values["reader host"] == str(standby.host)
    assert standby.zone.label == "AZ-b"


# -- Redis ------------------------------------------------------------------------------------


@when("I write a session key through the master that Sentinel names")
def write_session_key(scene: Scene) -> None:
    key, value = f"feature:session:{uuid.uuid4()}", str(uuid.uuid4())
    clients.session_master(scene.model).set(key, value)
    scene.values["session key"] = (key, value)


@then("the key is read back from the session replica in AZ-b")
def read_session_key_from_replica(scene: Scene) -> None:
    key, value = scene.values["session key"]
    group = scene.model.data.session_redis
    replicas = clients.session_sentinel(scene.model).discover_slaves(  # type: ignore[no-untyped-call]
        group.master_name)
    in_az_b = [(h, p) for h, p in replicas if h == str(group.replica.host)]
    assert in_az_b, f"Sentinel names no replica in AZ-b: {replicas}"
    replica = clients.redis_at(*in_az_b[0])

    def attempt() -> tuple[str | None, str]:
        found = replica.get(key)
        return (str(found) if found is not None else None), f"{key} = {found!r} on {in_az_b[0]}"

    assert wait_for(attempt, timeout=READ_TIMEOUT_S, what="key on the replica") == value


# -- Kafka ------------------------------------------------------------------------------------


def produce_message(scene: Scene) -> tuple[str, str]:
    topic, payload = f"feature-{uuid.uuid4().hex[:12]}", str(uuid.uuid4())
    producer = clients.kafka_producer(scene.model)
    producer.produce(topic, payload.encode())
    assert producer.flush(KAFKA_TIMEOUT_S) == 0, "the message was not acknowledged in time"
    return topic, payload


def consume_message(scene: Scene, topic: str) -> str:
    consumer = clients.kafka_consumer(scene.model, group=f"feature-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([topic])
    try:
        def attempt() -> tuple[str | None, str]:
            message = consumer.poll(0.5)
            if message is None:
                return None, "no message yet"
            if message.error():
                return None, str(message.error())
            return bytes(message.value() or b"").decode(), "received"

        return wait_for(attempt, timeout=KAFKA_TIMEOUT_S, what=f"a message on {topic}",
                        interval=0)
    finally:
        consumer.close()


@when("I produce a message to a new topic")
def produce(scene: Scene) -> None:
    scene.values["message"] = produce_message(scene)


@then("a consumer reads the same message from that topic")
def consume(scene: Scene) -> None:
    topic, payload = scene.values["message"]
    assert consume_message(scene, topic) == payload


# -- S3 ---------------------------------------------------------------------------------------


def put_object_twice(scene: Scene) -> str:
    s3 = aws_client("s3", scene.model.aws)
    key = f"features/{uuid.uuid4()}.txt"
    for body in (b"first", b"second"):
        s3.put_object(Bucket=scene.model.data.image_bucket.name, Key=key, Body=body)
    return key


def object_versions(scene: Scene, key: str) -> list[str]:
    s3 = aws_client("s3", scene.model.aws)
    listed = s3.list_object_versions(Bucket=scene.model.data.image_bucket.name, Prefix=key)
    return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == key]


@when("I put an object in the image bucket twice")
def put_twice(scene: Scene) -> None:
    scene.values["object"] = put_object_twice(scene)


@then("the bucket lists two versions of the object with distinct version ids")
def two_versions(scene: Scene) -> None:
    versions = object_versions(scene, scene.values["object"])
    assert len(versions) == 2
    assert len(set(versions)) == 2
    assert "null" not in versions, "versioning is off: the version id is 'null'"


# -- Deploy lock ------------------------------------------------------------------------------


@given(parsers.parse('"{holder}" holds the deploy lock'))
def holds_lock(scene: Scene, holder: str) -> None:
    lock = clients.deploy_lock(scene.model)
    lock.acquire(holder, reason="feature: lock admits one holder")
    scene.values["lock holders"] = [holder]


@when(parsers.parse('"{holder}" tries to take the deploy lock'))
def tries_lock(scene: Scene, holder: str) -> None:
    lock = clients.deploy_lock(scene.model)
    try:
        lock.acquire(holder)
    except LockHeld as refused:
        scene.values["refusal"] = refused
    else:
        scene.values["lock holders"].append(holder)


@then(parsers.parse('"{holder}" is refused and told that "{owner}" holds the lock'))
def refused(scene: Scene, holder: str, owner: str) -> None:
    lock = clients.deploy_lock(scene.model)
    try:
        assert holder not in scene.values["lock holders"], f"{holder} got the lock"
        refusal: LockHeld = scene.values["refusal"]
        assert refusal.info.holder == owner
        assert owner in str(refusal)
    finally:
        lock.release(owner)


# -- Crashes ----------------------------------------------------------------------------------


@when("the cache Redis crashes")
def cache_crashes(cloud: CloudSession, scene: Scene) -> None:
    name = scene.model.data.cache_redis.node.name
    pid = rows(cloud)[name]["pid"]
    os.kill(pid, signal.SIGKILL)  # from outside: the control plane must notice by itself


@then("status reports the cache Redis as crashed, not ready")
def cache_reported_crashed(cloud: CloudSession, scene: Scene) -> None:
    name = scene.model.data.cache_redis.node.name
    state = wait_for(
        lambda: ((s if (s := rows(cloud)[name]["state"]) == "crashed" else None), s),
        timeout=READ_TIMEOUT_S, what=f"{name} reported crashed")
    assert state == "crashed"


@when("I bring the local cloud up again")
def bring_up_again(cloud: CloudSession) -> None:
    cloud.client.up()
    cloud.client.wait_started(timeout=240)


@then("the cache Redis is ready again")
def cache_ready_again(cloud: CloudSession, scene: Scene) -> None:
    assert rows(cloud)[scene.model.data.cache_redis.node.name]["state"] == "ready"
    assert clients.cache_redis(scene.model).ping()


# -- Persistence across down/up ---------------------------------------------------------------


@given("a row, a session key, a Kafka message, an S3 object and a lock item are stored")
def store_everything(scene: Scene, cloud: CloudSession) -> None:
    scene.values["row"] = commit_row(scene, cloud)
    write_session_key(scene)
    scene.values["message"] = produce_message(scene)
    scene.values["object"] = put_object_twice(scene)
    holder = f"feature-{uuid.uuid4().hex[:8]}"
    clients.deploy_lock(scene.model).acquire(holder, reason="feature: survives down/up")
    scene.values["lock holder"] = holder


@when("the local cloud is taken down and brought up again")
def down_and_up(cloud: CloudSession) -> None:
    cloud.restart()


@then("the row, the session key, the Kafka message, the S3 object and the lock item are "
      "still there")
def everything_still_there(scene: Scene, cloud: CloudSession) -> None:
    note, _ = read_row(scene, cloud, scene.values["row"])
    assert note == "committed on the writer"
    key, value = scene.values["session key"]
    assert clients.session_master(scene.model).get(key) == value
    topic, payload = scene.values["message"]
    assert consume_message(scene, topic) == payload
    assert len(object_versions(scene, scene.values["object"])) == 2
    lock = clients.deploy_lock(scene.model)
    holder = lock.holder()
    assert holder is not None and holder.holder == scene.values["lock holder"]
    lock.release(scene.values["lock holder"])
