#!/usr/bin/env python3
"""Writes kafka-python-broker-responses.txt: Metadata, FindCoordinator and DescribeCluster
responses (header + body, the frame payload after the 4-byte size) at every version kafka-python
encodes, as the broker sent them and as strait must rewrite them (every advertised broker moved to
REWRITE_HOST:REWRITE_PORT; coordinator entries with an error, whose host is empty, untouched).

Run once, offline, with kafka-python installed: python3 gen_broker_responses.py >
kafka-python-broker-responses.txt
"""
import uuid

from kafka.protocol.admin import DescribeClusterResponse
from kafka.protocol.metadata import FindCoordinatorResponse, MetadataResponse

REWRITE_HOST = "127.0.0.1"
REWRITE_PORT = 39092
BROKERS = [(1, "broker-1.kafka.svc.cluster.local", 9092, "rack-a"), (2, "b2", 19093, None)]
TOPIC_ID = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")


def frame(msg, version, correlation_id):
    msg.with_header(correlation_id=correlation_id)
    return msg.encode(header=True).hex()


def metadata(version, brokers):
    M = MetadataResponse
    topics = [
        M.MetadataResponseTopic(
            version=version, error_code=0, name="orders", topic_id=TOPIC_ID, is_internal=False,
            partitions=[
                M.MetadataResponseTopic.MetadataResponsePartition(
                    version=version, error_code=0, partition_index=p, leader_id=1 + p % 2,
                    leader_epoch=3, replica_nodes=[1, 2], isr_nodes=[1, 2], offline_replicas=[])
                for p in range(3)
            ],
            authorized_operations=None)
    ]
    return M(
        version=version, throttle_time_ms=7,
        brokers=[M.MetadataResponseBroker(version=version, node_id=n, host=h, port=p, rack=r)
                 for n, h, p, r in brokers],
        cluster_id="strait-test-cluster", controller_id=1, topics=topics,
        authorized_operations=None, error_code=0)


def find_coordinator(version, host, port):
    F = FindCoordinatorResponse
    if version < 4:
        return F(version=version, throttle_time_ms=0, error_code=0, error_message=None, node_id=1,
                 host=host, port=port, coordinators=[])
    coordinators = [
        F.Coordinator(version=version, key="group-1", node_id=1, host=host, port=port,
                      error_code=0, error_message=None),
        # Not available: no host to rewrite.
        F.Coordinator(version=version, key="group-2", node_id=-1, host="", port=-1,
                      error_code=15, error_message="COORDINATOR_NOT_AVAILABLE"),
    ]
    return F(version=version, throttle_time_ms=0, coordinators=coordinators)


def describe_cluster(version, brokers):
    D = DescribeClusterResponse
    return D(
        version=version, throttle_time_ms=0, error_code=0, error_message=None, endpoint_type=1,
        cluster_id="strait-test-cluster", controller_id=1,
        brokers=[D.DescribeClusterBroker(version=version, broker_id=n, host=h, port=p, rack=r,
                                         is_fenced=False)
                 for n, h, p, r in brokers],
        authorized_operations=None)


def main():
    rewritten = [(n, REWRITE_HOST, REWRITE_PORT, r) for n, _, _, r in BROKERS]
    print("\n".join("# " + l if l else "#" for l in __doc__.strip().splitlines()))
    print(f"# rewrite target: {REWRITE_HOST}:{REWRITE_PORT}")
    print("# api key | version | broker response hex | rewritten response hex")
    cid = 100
    for v in range(MetadataResponse.max_version + 1):
        cid += 1
        print(f"3 | {v} | {frame(metadata(v, BROKERS), v, cid)} | {frame(metadata(v, rewritten), v, cid)}")
    for v in range(FindCoordinatorResponse.max_version + 1):
        cid += 1
        before = frame(find_coordinator(v, BROKERS[0][1], BROKERS[0][2]), v, cid)
        after = frame(find_coordinator(v, REWRITE_HOST, REWRITE_PORT), v, cid)
        print(f"10 | {v} | {before} | {after}")
    for v in range(DescribeClusterResponse.max_version + 1):
        cid += 1
        print(f"60 | {v} | {frame(describe_cluster(v, BROKERS), v, cid)} | {frame(describe_cluster(v, rewritten), v, cid)}")


if __name__ == "__main__":
    main()
