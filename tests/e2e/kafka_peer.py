#!/usr/bin/env python3
"""Kafka client peer for strait's Kafka end-to-end tests (tests/e2e/README.md).

Runs real Kafka clients (confluent-kafka, i.e. librdkafka, or kafka-python) against a bootstrap
address (strait's Kafka listener) and prints exactly one JSON line on stdout.

    kafka_peer.py create-topic --bootstrap H:P --topic T [--partitions 3] [--lib confluent|kafka-python]
    kafka_peer.py produce --bootstrap H:P --topic T --count N --size S --lib L [--in-flight K] [--acks 1]
    kafka_peer.py consume --bootstrap H:P --topic T --count N --size S --lib L --group G [--timeout 60] [--assign]

Authorization (strait's Kafka policy): `--expect-error CODE` makes produce / consume succeed only
when every message fails with Kafka error CODE (e.g. 29, TOPIC_AUTHORIZATION_FAILED) in the
client, instead of when every message goes through. `produce --then-expect-error CODE` produces
once normally, prints {"round": 1, ...}, waits for a line on stdin (the test edits the policy),
then produces again with the same producer (same connections) expecting CODE.
`produce --denied-topic D --expect-error CODE` writes --topic and D in turn with one producer:
every message to --topic must be delivered and every one to D fail with CODE (a client denied
one topic keeps the others).

Every command takes --ca PEM: TLS to the bootstrap address (and every broker), trusting PEM.

Message i (0 <= i < count) has key b"key-<i>" and a value of `size` pseudo-random bytes derived
from i (every byte value occurs), so the consumer checks each message byte-exactly without the
producer telling it anything. `consume` reads until it has all `count` keys (duplicates are
reported), from the earliest offset, in consumer group G (FindCoordinator, JoinGroup, SyncGroup,
OffsetFetch, Fetch, OffsetCommit, Heartbeat all go through the bootstrap address).

Exit status: 0 success, 1 failure (the JSON says why), 2 bad arguments.
"""
import argparse
import hashlib
import json
import sys
import time


def value(i, size):
    out = bytearray()
    block = 0
    while len(out) < size:
        out += hashlib.sha256(f"{i}:{block}".encode()).digest()
        block += 1
    return bytes(out[:size])


def key(i):
    return f"key-{i}".encode()


def emit(ok, **fields):
    print(json.dumps({"ok": ok, **fields}), flush=True)
    sys.exit(0 if ok else 1)


def confluent_conf(a, **extra):
    conf = {"bootstrap.servers": a.bootstrap, **extra}
    if a.ca:
        conf.update({
            "security.protocol": "SSL",
            "ssl.ca.location": a.ca,
            # The test certificate names localhost; clients connect to 127.0.0.1.
            "ssl.endpoint.identification.algorithm": "none",
        })
    return conf


def kafka_python_conf(a, **extra):
    conf = {"bootstrap_servers": a.bootstrap, **extra}
    if a.ca:
        conf.update({"security_protocol": "SSL", "ssl_cafile": a.ca, "ssl_check_hostname": False})
    return conf


def create_topic(a):
    if a.lib == "confluent":
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(confluent_conf(a))
        futures = admin.create_topics(
            [NewTopic(a.topic, num_partitions=a.partitions, replication_factor=1)],
            operation_timeout=a.timeout,
        )
        futures[a.topic].result(timeout=a.timeout)
        md = admin.list_topics(timeout=a.timeout)
        parts = len(md.topics[a.topic].partitions)
        brokers = sorted(f"{b.host}:{b.port}" for b in md.brokers.values())
    else:
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(**kafka_python_conf(a, request_timeout_ms=a.timeout * 1000))
        admin.create_topics([NewTopic(a.topic, a.partitions, 1)])
        desc = admin.describe_topics([a.topic])
        parts = len(desc[0]["partitions"])
        brokers = sorted(f"{b['host']}:{b['port']}" for b in admin.describe_cluster()["brokers"])
        admin.close()
    emit(parts == a.partitions, topic=a.topic, partitions=parts, brokers=brokers)


def produce(a):
    start = time.monotonic()
    if a.denied_topic is not None:
        produce_mixed(a, start)
    if a.then_expect_error is not None:
        if a.lib != "confluent":
            emit(False, error="--then-expect-error needs --lib confluent")
        p = confluent_producer(a)
        delivered, errors, codes = confluent_round(p, a, 0)
        print(json.dumps({"round": 1, "produced": delivered, "errors": errors[:5]}), flush=True)
        if errors or delivered != a.count:
            emit(False, produced=delivered, errors=errors[:5], codes=codes[:5])
        sys.stdin.readline()
        delivered, errors, codes = confluent_round(p, a, a.count)
        expected = codes and all(c == a.then_expect_error for c in codes) and len(codes) == a.count
        emit(bool(expected) and delivered == 0, produced=delivered, errors=errors[:5],
             codes=sorted(set(codes)), elapsed_ms=int((time.monotonic() - start) * 1000))
    errors = []
    codes = []
    delivered = 0
    if a.lib == "confluent":
        # One message per batch and no lingering: one Produce request per message, with up to
        # --in-flight of them pipelined on the broker connection.
        delivered, errors, codes = confluent_round(confluent_producer(a), a, 0)
    else:
        from kafka import KafkaProducer

        p = KafkaProducer(**kafka_python_conf(
            a,
            acks=a.acks,
            linger_ms=0,
            max_in_flight_requests_per_connection=a.in_flight,
            request_timeout_ms=a.timeout * 1000,
        ))
        futures = []
        for i in range(a.count):
            try:
                futures.append(p.send(a.topic, key=key(i), value=value(i, a.size)))
            except Exception as e:  # noqa: BLE001 - e.g. TopicAuthorizationFailedError from metadata
                errors.append(repr(e))
                codes.append(getattr(e, "errno", None))
        p.flush(timeout=a.timeout)
        for f in futures:
            try:
                f.get(timeout=a.timeout)
                delivered += 1
            except Exception as e:  # noqa: BLE001 - report any client error
                errors.append(repr(e))
                codes.append(getattr(e, "errno", None))
        p.close(timeout=5)
    if a.acks == 0:
        delivered = a.count - len(errors)
    if a.expect_error is not None:
        ok = delivered == 0 and len(codes) == a.count and all(c == a.expect_error for c in codes)
    else:
        ok = not errors and delivered == a.count
    emit(
        ok,
        produced=delivered,
        errors=errors[:5],
        codes=sorted(set(c for c in codes if c is not None)),
        elapsed_ms=int((time.monotonic() - start) * 1000),
    )


def produce_mixed(a, start):
    """One confluent producer writing --topic and --denied-topic in turn: every message to the
    first must be delivered, every one to the second fail with --expect-error."""
    if a.lib != "confluent" or a.expect_error is None:
        emit(False, error="--denied-topic needs --lib confluent and --expect-error")
    p = confluent_producer(a)
    outcome = {a.topic: [0, [], []], a.denied_topic: [0, [], []]}

    def done(err, msg):
        o = outcome[msg.topic()]
        if err is None:
            o[0] += 1
        else:
            o[1].append(str(err))
            o[2].append(err.code())

    for i in range(a.count):
        for t in (a.topic, a.denied_topic):
            err = confluent_produce(p, t, i, a, done)
            if err is not None:
                outcome[t][1].append(str(err))
                outcome[t][2].append(err.code())
            p.poll(0)
    left = p.flush(a.timeout)
    allowed, denied = outcome[a.topic], outcome[a.denied_topic]
    ok = (left == 0 and allowed[0] == a.count and not allowed[1] and denied[0] == 0
          and len(denied[2]) == a.count and all(c == a.expect_error for c in denied[2]))
    emit(ok, produced=allowed[0], errors=allowed[1][:5], denied_produced=denied[0],
         codes=sorted(set(denied[2])), not_delivered=left,
         elapsed_ms=int((time.monotonic() - start) * 1000))


def confluent_producer(a):
    from confluent_kafka import Producer

    return Producer(confluent_conf(a, **{
        "acks": str(a.acks),
        "enable.idempotence": False,
        "linger.ms": 0,
        "batch.num.messages": 1,
        "max.in.flight.requests.per.connection": a.in_flight,
        "message.timeout.ms": a.timeout * 1000,
    }))


def confluent_produce(p, topic, i, a, callback):
    """Hands message i for `topic` to confluent producer `p`, waiting while its queue is full.
    Returns the error when produce() itself fails: once a Metadata answer has told librdkafka
    that the topic is not authorized, it raises that error at once instead of reporting it to
    the delivery callback, and the client has got the same code either way."""
    from confluent_kafka import KafkaException

    while True:
        try:
            p.produce(topic, key=key(i), value=value(i, a.size), callback=callback)
            return None
        except BufferError:
            p.poll(0.05)
        except KafkaException as e:
            return e.args[0]


def confluent_round(p, a, first):
    """Produces messages first..first+count with `p`; (delivered, errors, error codes)."""
    errors, codes = [], []
    delivered = 0

    def done(err, msg):
        nonlocal delivered
        if err is not None:
            errors.append(str(err))
            codes.append(err.code())
        else:
            delivered += 1

    for i in range(first, first + a.count):
        err = confluent_produce(p, a.topic, i, a, done)
        if err is not None:
            done(err, None)
        p.poll(0)
    left = p.flush(a.timeout)
    if left:
        errors.append(f"{left} messages not delivered")
    return delivered, errors, codes


def consume(a):
    start = time.monotonic()
    seen = {}
    bad = []
    codes = []
    duplicates = 0

    def check(k, v):
        nonlocal duplicates
        try:
            i = int(k.decode().removeprefix("key-"))
        except (AttributeError, ValueError):
            bad.append(f"unexpected key {k!r}")
            return
        if v != value(i, a.size):
            bad.append(f"message {i}: value differs ({len(v)} bytes)")
        if i in seen:
            duplicates += 1
        seen[i] = True

    deadline = time.monotonic() + a.timeout
    if a.lib == "confluent":
        from confluent_kafka import Consumer

        def on_error(err):
            # librdkafka reports a subscribed topic's authorization failure here, not as a
            # message error.
            if err.code() == a.expect_error:
                bad.append(str(err))
                codes.append(err.code())

        c = Consumer(confluent_conf(
            a,
            **{"group.id": a.group, "auto.offset.reset": "earliest", "enable.auto.commit": True,
               "error_cb": on_error},
        ))
        c.subscribe([a.topic])
        while len(seen) < a.count and time.monotonic() < deadline and not bad:
            for m in c.consume(num_messages=500, timeout=1.0):
                if m.error():
                    bad.append(str(m.error()))
                    codes.append(m.error().code())
                else:
                    check(m.key(), m.value())
        c.close()
    else:
        from kafka import KafkaConsumer

        conf = kafka_python_conf(
            a,
            group_id=a.group,
            auto_offset_reset="earliest",
            enable_auto_commit=True,
        )
        if a.assign:
            from kafka import TopicPartition

            c = KafkaConsumer(**conf)
            c.assign([TopicPartition(a.topic, p) for p in range(a.partitions)])
        else:
            c = KafkaConsumer(a.topic, **conf)
        while len(seen) < a.count and time.monotonic() < deadline and not bad:
            try:
                polled = c.poll(timeout_ms=1000)
            except Exception as e:  # noqa: BLE001 - e.g. TopicAuthorizationFailedError
                bad.append(repr(e))
                codes.append(getattr(e, "errno", None))
                break
            for records in polled.values():
                for r in records:
                    check(r.key, r.value)
        c.close()
    if a.expect_error is not None:
        ok = not seen and bool(codes) and all(c == a.expect_error for c in codes)
    else:
        ok = len(seen) == a.count and not bad
    emit(
        ok,
        codes=sorted(set(c for c in codes if c is not None)),
        consumed=len(seen),
        duplicates=duplicates,
        errors=bad[:5],
        elapsed_ms=int((time.monotonic() - start) * 1000),
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["create-topic", "produce", "consume"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--lib", choices=["confluent", "kafka-python"], default="confluent")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--in-flight", type=int, default=5)
    ap.add_argument("--acks", type=int, default=1, choices=[0, 1, -1])
    ap.add_argument("--group", default="strait-test")
    ap.add_argument("--timeout", type=int, default=60)
    ap.add_argument("--ca", help="TLS to the bootstrap address, trusting this CA (PEM)")
    ap.add_argument("--expect-error", type=int, help="succeed when every message fails with this Kafka error code")
    ap.add_argument("--assign", action="store_true", help="consume (kafka-python): assign partitions 0..--partitions instead of subscribing in the group")
    ap.add_argument("--denied-topic", help="produce: also write this topic with the same producer; it must fail with --expect-error")
    ap.add_argument("--then-expect-error", type=int, help="produce twice; the second round must fail with this code")
    a = ap.parse_args()
    try:
        {"create-topic": create_topic, "produce": produce, "consume": consume}[a.command](a)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - one JSON line whatever happens
        emit(False, error=repr(e))


if __name__ == "__main__":
    main()
