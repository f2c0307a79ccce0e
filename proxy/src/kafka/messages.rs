//! Message layouts, one const per struct, and the API table ([`APIS`]).
//!
//! Derived from the Apache Kafka message definitions
//! (`clients/src/main/resources/common/message/*.json`, Apache License 2.0): the Kafka 4.3 copies
//! vendored by kafka-python where it has them, otherwise apache/kafka as of December 2024
//! (4.1.0-SNAPSHOT); the share-group offsets APIs (90–92), the final layouts of ShareFetch,
//! ShareAcknowledge and ShareGroupHeartbeat, and the StreamsGroupHeartbeat and AddRaftVoter
//! responses were transcribed from franz-go's Kafka 4.2 definitions (see docs/kafka.md). Every
//! layout was checked to match the Kafka 3.9 definitions at each version 3.9 has, so versions
//! that Kafka 4.0 stopped accepting (Produce v0–2, Fetch v0–3, …) are covered.
//!
//! Tagged fields are left out (see [`super::schema`]). Request layouts are only here for the APIs
//! whose topics are extracted; response layouts for the APIs clients send. Roles mark the fields
//! strait reads or fills; defaults are those of Kafka's error responses.

use super::api::{def, ApiInfo, TopicKind};
use super::schema::Role::*;
use super::schema::*;

const PRODUCE_REQ_PARTITION_PRODUCE_DATA: &[Field] = &[
    f("Index", INT32, 0, MAX).role(Partition),
    f("Records", BYTES, 0, MAX).nullable(0, MAX),
];
const PRODUCE_REQ_TOPIC_PRODUCE_DATA: &[Field] = &[
    f("Name", STRING, 0, 12).role(TopicName),
    f("TopicId", UUID, 13, MAX).role(TopicId),
    f("PartitionData", arr(PRODUCE_REQ_PARTITION_PRODUCE_DATA), 0, MAX),
];
pub(super) const PRODUCE_REQ: &[Field] = &[
    f("TransactionalId", STRING, 3, MAX).nullable(3, MAX),
    f("Acks", INT16, 0, MAX).role(Acks),
    f("TimeoutMs", INT32, 0, MAX),
    f("TopicData", arr(PRODUCE_REQ_TOPIC_PRODUCE_DATA), 0, MAX),
];
const PRODUCE_RESP_BATCH_INDEX_AND_ERROR_MESSAGE: &[Field] = &[
    f("BatchIndex", INT32, 8, MAX),
    f("BatchIndexErrorMessage", STRING, 8, MAX).nullable(8, MAX).role(ErrorMessage),
];
const PRODUCE_RESP_PARTITION_PRODUCE_RESPONSE: &[Field] = &[
    f("Index", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("BaseOffset", INT64, 0, MAX).default(-1),
    f("LogAppendTimeMs", INT64, 2, MAX).default(-1),
    f("LogStartOffset", INT64, 5, MAX).default(-1),
    f("RecordErrors", arr(PRODUCE_RESP_BATCH_INDEX_AND_ERROR_MESSAGE), 8, MAX),
    f("ErrorMessage", STRING, 8, MAX).nullable(8, MAX).role(ErrorMessage),
];
const PRODUCE_RESP_TOPIC_PRODUCE_RESPONSE: &[Field] = &[
    f("Name", STRING, 0, 12).role(TopicName),
    f("TopicId", UUID, 13, MAX).role(TopicId),
    f("PartitionResponses", arr(PRODUCE_RESP_PARTITION_PRODUCE_RESPONSE), 0, MAX),
];
pub(super) const PRODUCE_RESP: &[Field] = &[
    f("Responses", arr(PRODUCE_RESP_TOPIC_PRODUCE_RESPONSE), 0, MAX),
    f("ThrottleTimeMs", INT32, 1, MAX),
];
const FETCH_REQ_FETCH_PARTITION: &[Field] = &[
    f("Partition", INT32, 0, MAX).role(Partition),
    f("CurrentLeaderEpoch", INT32, 9, MAX),
    f("FetchOffset", INT64, 0, MAX),
    f("LastFetchedEpoch", INT32, 12, MAX),
    f("LogStartOffset", INT64, 5, MAX),
    f("PartitionMaxBytes", INT32, 0, MAX),
];
const FETCH_REQ_FETCH_TOPIC: &[Field] = &[
    f("Topic", STRING, 0, 12).role(TopicName),
    f("TopicId", UUID, 13, MAX).role(TopicId),
    f("Partitions", arr(FETCH_REQ_FETCH_PARTITION), 0, MAX),
];
const FETCH_REQ_FORGOTTEN_TOPIC: &[Field] = &[
    f("Topic", STRING, 7, 12).role(TopicName),
    f("TopicId", UUID, 13, MAX).role(TopicId),
    f("Partitions", arr_of(Prim::Int32), 7, MAX).role(Partitions),
];
pub(super) const FETCH_REQ: &[Field] = &[
    f("ReplicaId", INT32, 0, 14),
    f("MaxWaitMs", INT32, 0, MAX),
    f("MinBytes", INT32, 0, MAX),
    f("MaxBytes", INT32, 3, MAX),
    f("IsolationLevel", INT8, 4, MAX),
    f("SessionId", INT32, 7, MAX),
    f("SessionEpoch", INT32, 7, MAX),
    f("Topics", arr(FETCH_REQ_FETCH_TOPIC), 0, MAX),
    f("ForgottenTopicsData", arr(FETCH_REQ_FORGOTTEN_TOPIC), 7, MAX).role(NoCollect),
    f("RackId", STRING, 11, MAX),
];
const FETCH_RESP_ABORTED_TRANSACTION: &[Field] = &[
    f("ProducerId", INT64, 4, MAX),
    f("FirstOffset", INT64, 4, MAX).default(-1),
];
const FETCH_RESP_PARTITION_DATA: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("HighWatermark", INT64, 0, MAX).default(-1),
    f("LastStableOffset", INT64, 4, MAX).default(-1),
    f("LogStartOffset", INT64, 5, MAX).default(-1),
    f("AbortedTransactions", arr(FETCH_RESP_ABORTED_TRANSACTION), 4, MAX).nullable(4, MAX),
    f("PreferredReadReplica", INT32, 11, MAX).default(-1),
    f("Records", BYTES, 0, MAX).nullable(0, MAX),
];
const FETCH_RESP_FETCHABLE_TOPIC_RESPONSE: &[Field] = &[
    f("Topic", STRING, 0, 12).role(TopicName),
    f("TopicId", UUID, 13, MAX).role(TopicId),
    f("Partitions", arr(FETCH_RESP_PARTITION_DATA), 0, MAX),
];
pub(super) const FETCH_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 1, MAX),
    f("ErrorCode", INT16, 7, MAX).role(Error),
    f("SessionId", INT32, 7, MAX),
    f("Responses", arr(FETCH_RESP_FETCHABLE_TOPIC_RESPONSE), 0, MAX),
];
const LIST_OFFSETS_REQ_LIST_OFFSETS_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("CurrentLeaderEpoch", INT32, 4, MAX),
    f("Timestamp", INT64, 0, MAX),
    f("MaxNumOffsets", INT32, 0, 0),
];
const LIST_OFFSETS_REQ_LIST_OFFSETS_TOPIC: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(LIST_OFFSETS_REQ_LIST_OFFSETS_PARTITION), 0, MAX),
];
pub(super) const LIST_OFFSETS_REQ: &[Field] = &[
    f("ReplicaId", INT32, 0, MAX),
    f("IsolationLevel", INT8, 2, MAX),
    f("Topics", arr(LIST_OFFSETS_REQ_LIST_OFFSETS_TOPIC), 0, MAX),
    f("TimeoutMs", INT32, 10, MAX),
];
const LIST_OFFSETS_RESP_LIST_OFFSETS_PARTITION_RESPONSE: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("OldStyleOffsets", arr_of(Prim::Int64), 0, 0),
    f("Timestamp", INT64, 1, MAX).default(-1),
    f("Offset", INT64, 1, MAX).default(-1),
    f("LeaderEpoch", INT32, 4, MAX).default(-1),
];
const LIST_OFFSETS_RESP_LIST_OFFSETS_TOPIC_RESPONSE: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(LIST_OFFSETS_RESP_LIST_OFFSETS_PARTITION_RESPONSE), 0, MAX),
];
pub(super) const LIST_OFFSETS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 2, MAX),
    f("Topics", arr(LIST_OFFSETS_RESP_LIST_OFFSETS_TOPIC_RESPONSE), 0, MAX),
];
const METADATA_REQ_METADATA_REQUEST_TOPIC: &[Field] = &[
    f("TopicId", UUID, 10, MAX).role(TopicId),
    f("Name", STRING, 0, MAX).nullable(10, MAX).role(TopicName),
];
pub(super) const METADATA_REQ: &[Field] = &[
    f("Topics", arr(METADATA_REQ_METADATA_REQUEST_TOPIC), 0, MAX).nullable(1, MAX).role(AllIfNull),
    f("AllowAutoTopicCreation", BOOL, 4, MAX),
    f("IncludeClusterAuthorizedOperations", BOOL, 8, 10),
    f("IncludeTopicAuthorizedOperations", BOOL, 8, MAX),
];
const METADATA_RESP_METADATA_RESPONSE_BROKER: &[Field] = &[
    f("NodeId", INT32, 0, MAX),
    f("Host", STRING, 0, MAX).role(BrokerHost),
    f("Port", INT32, 0, MAX).role(BrokerPort),
    f("Rack", STRING, 1, MAX).nullable(1, MAX),
];
const METADATA_RESP_METADATA_RESPONSE_PARTITION: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("LeaderId", INT32, 0, MAX).default(-1),
    f("LeaderEpoch", INT32, 7, MAX).default(-1),
    f("ReplicaNodes", arr_of(Prim::Int32), 0, MAX),
    f("IsrNodes", arr_of(Prim::Int32), 0, MAX),
    f("OfflineReplicas", arr_of(Prim::Int32), 5, MAX),
];
const METADATA_RESP_METADATA_RESPONSE_TOPIC: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("Name", STRING, 0, MAX).nullable(12, MAX).role(TopicName),
    f("TopicId", UUID, 10, MAX).role(TopicId),
    f("IsInternal", BOOL, 1, MAX),
    f("Partitions", arr(METADATA_RESP_METADATA_RESPONSE_PARTITION), 0, MAX),
    f("TopicAuthorizedOperations", INT32, 8, MAX).default(-2147483648),
];
pub(super) const METADATA_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 3, MAX),
    f("Brokers", arr(METADATA_RESP_METADATA_RESPONSE_BROKER), 0, MAX),
    f("ClusterId", STRING, 2, MAX).nullable(2, MAX),
    f("ControllerId", INT32, 1, MAX).default(-1),
    f("Topics", arr(METADATA_RESP_METADATA_RESPONSE_TOPIC), 0, MAX),
    f("ClusterAuthorizedOperations", INT32, 8, 10).default(-2147483648),
    f("ErrorCode", INT16, 13, MAX).role(Error),
];
const OFFSET_COMMIT_REQ_OFFSET_COMMIT_REQUEST_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("CommittedOffset", INT64, 0, MAX),
    f("CommittedLeaderEpoch", INT32, 6, MAX),
    f("CommitTimestamp", INT64, 1, 1),
    f("CommittedMetadata", STRING, 0, MAX).nullable(0, MAX),
];
const OFFSET_COMMIT_REQ_OFFSET_COMMIT_REQUEST_TOPIC: &[Field] = &[
    f("Name", STRING, 0, 9).role(TopicName),
    f("TopicId", UUID, 10, MAX).role(TopicId),
    f("Partitions", arr(OFFSET_COMMIT_REQ_OFFSET_COMMIT_REQUEST_PARTITION), 0, MAX),
];
pub(super) const OFFSET_COMMIT_REQ: &[Field] = &[
    f("GroupId", STRING, 0, MAX),
    f("GenerationIdOrMemberEpoch", INT32, 1, MAX),
    f("MemberId", STRING, 1, MAX),
    f("GroupInstanceId", STRING, 7, MAX).nullable(7, MAX),
    f("RetentionTimeMs", INT64, 2, 4),
    f("Topics", arr(OFFSET_COMMIT_REQ_OFFSET_COMMIT_REQUEST_TOPIC), 0, MAX),
];
const OFFSET_COMMIT_RESP_OFFSET_COMMIT_RESPONSE_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
];
const OFFSET_COMMIT_RESP_OFFSET_COMMIT_RESPONSE_TOPIC: &[Field] = &[
    f("Name", STRING, 0, 9).role(TopicName),
    f("TopicId", UUID, 10, MAX).role(TopicId),
    f("Partitions", arr(OFFSET_COMMIT_RESP_OFFSET_COMMIT_RESPONSE_PARTITION), 0, MAX),
];
pub(super) const OFFSET_COMMIT_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 3, MAX),
    f("Topics", arr(OFFSET_COMMIT_RESP_OFFSET_COMMIT_RESPONSE_TOPIC), 0, MAX),
];
const OFFSET_FETCH_REQ_OFFSET_FETCH_REQUEST_TOPIC: &[Field] = &[
    f("Name", STRING, 0, 7).role(TopicName),
    f("PartitionIndexes", arr_of(Prim::Int32), 0, 7).role(Partitions),
];
const OFFSET_FETCH_REQ_OFFSET_FETCH_REQUEST_TOPICS: &[Field] = &[
    f("Name", STRING, 8, 9).role(TopicName),
    f("TopicId", UUID, 10, MAX).role(TopicId),
    f("PartitionIndexes", arr_of(Prim::Int32), 8, MAX).role(Partitions),
];
const OFFSET_FETCH_REQ_OFFSET_FETCH_REQUEST_GROUP: &[Field] = &[
    f("GroupId", STRING, 8, MAX).role(ParentKey),
    f("MemberId", STRING, 9, MAX).nullable(9, MAX),
    f("MemberEpoch", INT32, 9, MAX),
    f("Topics", arr(OFFSET_FETCH_REQ_OFFSET_FETCH_REQUEST_TOPICS), 8, MAX).nullable(8, MAX).role(AllIfNull),
];
pub(super) const OFFSET_FETCH_REQ: &[Field] = &[
    f("GroupId", STRING, 0, 7),
    f("Topics", arr(OFFSET_FETCH_REQ_OFFSET_FETCH_REQUEST_TOPIC), 0, 7).nullable(2, 7).role(AllIfNull),
    f("Groups", arr(OFFSET_FETCH_REQ_OFFSET_FETCH_REQUEST_GROUP), 8, MAX),
    f("RequireStable", BOOL, 7, MAX),
];
const OFFSET_FETCH_RESP_OFFSET_FETCH_RESPONSE_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, 7).role(Partition),
    f("CommittedOffset", INT64, 0, 7).default(-1),
    f("CommittedLeaderEpoch", INT32, 5, 7).default(-1),
    f("Metadata", STRING, 0, 7).nullable(0, 7),
    f("ErrorCode", INT16, 0, 7).role(Error),
];
const OFFSET_FETCH_RESP_OFFSET_FETCH_RESPONSE_TOPIC: &[Field] = &[
    f("Name", STRING, 0, 7).role(TopicName),
    f("Partitions", arr(OFFSET_FETCH_RESP_OFFSET_FETCH_RESPONSE_PARTITION), 0, 7),
];
const OFFSET_FETCH_RESP_OFFSET_FETCH_RESPONSE_PARTITIONS: &[Field] = &[
    f("PartitionIndex", INT32, 8, MAX).role(Partition),
    f("CommittedOffset", INT64, 8, MAX).default(-1),
    f("CommittedLeaderEpoch", INT32, 8, MAX).default(-1),
    f("Metadata", STRING, 8, MAX).nullable(8, MAX),
    f("ErrorCode", INT16, 8, MAX).role(Error),
];
const OFFSET_FETCH_RESP_OFFSET_FETCH_RESPONSE_TOPICS: &[Field] = &[
    f("Name", STRING, 8, 9).role(TopicName),
    f("TopicId", UUID, 10, MAX).role(TopicId),
    f("Partitions", arr(OFFSET_FETCH_RESP_OFFSET_FETCH_RESPONSE_PARTITIONS), 8, MAX),
];
const OFFSET_FETCH_RESP_OFFSET_FETCH_RESPONSE_GROUP: &[Field] = &[
    f("GroupId", STRING, 8, MAX).role(ParentKey),
    f("Topics", arr(OFFSET_FETCH_RESP_OFFSET_FETCH_RESPONSE_TOPICS), 8, MAX),
    f("ErrorCode", INT16, 8, MAX).role(Error),
];
pub(super) const OFFSET_FETCH_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 3, MAX),
    f("Topics", arr(OFFSET_FETCH_RESP_OFFSET_FETCH_RESPONSE_TOPIC), 0, 7),
    f("ErrorCode", INT16, 2, 7).role(Error),
    f("Groups", arr(OFFSET_FETCH_RESP_OFFSET_FETCH_RESPONSE_GROUP), 8, MAX),
];
const FIND_COORDINATOR_RESP_COORDINATOR: &[Field] = &[
    f("Key", STRING, 4, MAX),
    f("NodeId", INT32, 4, MAX),
    f("Host", STRING, 4, MAX).role(BrokerHost),
    f("Port", INT32, 4, MAX).role(BrokerPort),
    f("ErrorCode", INT16, 4, MAX).role(Error),
    f("ErrorMessage", STRING, 4, MAX).nullable(4, MAX).role(ErrorMessage),
];
pub(super) const FIND_COORDINATOR_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 1, MAX),
    f("ErrorCode", INT16, 0, 3).role(Error),
    f("ErrorMessage", STRING, 1, 3).nullable(1, 3).role(ErrorMessage),
    f("NodeId", INT32, 0, 3),
    f("Host", STRING, 0, 3).role(BrokerHost),
    f("Port", INT32, 0, 3).role(BrokerPort),
    f("Coordinators", arr(FIND_COORDINATOR_RESP_COORDINATOR), 4, MAX),
];
const JOIN_GROUP_RESP_JOIN_GROUP_RESPONSE_MEMBER: &[Field] = &[
    f("MemberId", STRING, 0, MAX),
    f("GroupInstanceId", STRING, 5, MAX).nullable(5, MAX),
    f("Metadata", BYTES, 0, MAX),
];
pub(super) const JOIN_GROUP_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 2, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("GenerationId", INT32, 0, MAX).default(-1),
    f("ProtocolType", STRING, 7, MAX).nullable(7, MAX),
    f("ProtocolName", STRING, 0, MAX).nullable(7, MAX),
    f("Leader", STRING, 0, MAX),
    f("SkipAssignment", BOOL, 9, MAX),
    f("MemberId", STRING, 0, MAX),
    f("Members", arr(JOIN_GROUP_RESP_JOIN_GROUP_RESPONSE_MEMBER), 0, MAX),
];
pub(super) const HEARTBEAT_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 1, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
];
const LEAVE_GROUP_RESP_MEMBER_RESPONSE: &[Field] = &[
    f("MemberId", STRING, 3, MAX),
    f("GroupInstanceId", STRING, 3, MAX).nullable(3, MAX),
    f("ErrorCode", INT16, 3, MAX).role(Error),
];
pub(super) const LEAVE_GROUP_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 1, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("Members", arr(LEAVE_GROUP_RESP_MEMBER_RESPONSE), 3, MAX),
];
pub(super) const SYNC_GROUP_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 1, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ProtocolType", STRING, 5, MAX).nullable(5, MAX),
    f("ProtocolName", STRING, 5, MAX).nullable(5, MAX),
    f("Assignment", BYTES, 0, MAX),
];
const DESCRIBE_GROUPS_RESP_DESCRIBED_GROUP_MEMBER: &[Field] = &[
    f("MemberId", STRING, 0, MAX),
    f("GroupInstanceId", STRING, 4, MAX).nullable(4, MAX),
    f("ClientId", STRING, 0, MAX),
    f("ClientHost", STRING, 0, MAX),
    f("MemberMetadata", BYTES, 0, MAX),
    f("MemberAssignment", BYTES, 0, MAX),
];
const DESCRIBE_GROUPS_RESP_DESCRIBED_GROUP: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 6, MAX).nullable(6, MAX).role(ErrorMessage),
    f("GroupId", STRING, 0, MAX),
    f("GroupState", STRING, 0, MAX),
    f("ProtocolType", STRING, 0, MAX),
    f("ProtocolData", STRING, 0, MAX),
    f("Members", arr(DESCRIBE_GROUPS_RESP_DESCRIBED_GROUP_MEMBER), 0, MAX),
    f("AuthorizedOperations", INT32, 3, MAX).default(-2147483648),
];
pub(super) const DESCRIBE_GROUPS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 1, MAX),
    f("Groups", arr(DESCRIBE_GROUPS_RESP_DESCRIBED_GROUP), 0, MAX),
];
const LIST_GROUPS_RESP_LISTED_GROUP: &[Field] = &[
    f("GroupId", STRING, 0, MAX),
    f("ProtocolType", STRING, 0, MAX),
    f("GroupState", STRING, 4, MAX),
    f("GroupType", STRING, 5, MAX),
];
pub(super) const LIST_GROUPS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 1, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("Groups", arr(LIST_GROUPS_RESP_LISTED_GROUP), 0, MAX),
];
pub(super) const SASL_HANDSHAKE_RESP: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("Mechanisms", arr_of(Prim::String), 0, MAX),
];
const API_VERSIONS_RESP_API_VERSION: &[Field] = &[
    f("ApiKey", INT16, 0, MAX),
    f("MinVersion", INT16, 0, MAX),
    f("MaxVersion", INT16, 0, MAX),
];
pub(super) const API_VERSIONS_RESP: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ApiKeys", arr(API_VERSIONS_RESP_API_VERSION), 0, MAX),
    f("ThrottleTimeMs", INT32, 1, MAX),
];
const CREATE_TOPICS_REQ_CREATABLE_REPLICA_ASSIGNMENT: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("BrokerIds", arr_of(Prim::Int32), 0, MAX),
];
const CREATE_TOPICS_REQ_CREATABLE_TOPIC_CONFIG: &[Field] = &[
    f("Name", STRING, 0, MAX),
    f("Value", STRING, 0, MAX).nullable(0, MAX),
];
const CREATE_TOPICS_REQ_CREATABLE_TOPIC: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("NumPartitions", INT32, 0, MAX),
    f("ReplicationFactor", INT16, 0, MAX),
    f("Assignments", arr(CREATE_TOPICS_REQ_CREATABLE_REPLICA_ASSIGNMENT), 0, MAX),
    f("Configs", arr(CREATE_TOPICS_REQ_CREATABLE_TOPIC_CONFIG), 0, MAX),
];
pub(super) const CREATE_TOPICS_REQ: &[Field] = &[
    f("Topics", arr(CREATE_TOPICS_REQ_CREATABLE_TOPIC), 0, MAX),
    f("timeoutMs", INT32, 0, MAX),
    f("validateOnly", BOOL, 1, MAX),
];
const CREATE_TOPICS_RESP_CREATABLE_TOPIC_CONFIGS: &[Field] = &[
    f("Name", STRING, 5, MAX),
    f("Value", STRING, 5, MAX).nullable(5, MAX),
    f("ReadOnly", BOOL, 5, MAX),
    f("ConfigSource", INT8, 5, MAX).default(-1),
    f("IsSensitive", BOOL, 5, MAX),
];
const CREATE_TOPICS_RESP_CREATABLE_TOPIC_RESULT: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("TopicId", UUID, 7, MAX).role(TopicId),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 1, MAX).nullable(0, MAX).role(ErrorMessage),
    f("NumPartitions", INT32, 5, MAX).default(-1),
    f("ReplicationFactor", INT16, 5, MAX).default(-1),
    f("Configs", arr(CREATE_TOPICS_RESP_CREATABLE_TOPIC_CONFIGS), 5, MAX).nullable(5, MAX),
];
pub(super) const CREATE_TOPICS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 2, MAX),
    f("Topics", arr(CREATE_TOPICS_RESP_CREATABLE_TOPIC_RESULT), 0, MAX),
];
const DELETE_TOPICS_REQ_DELETE_TOPIC_STATE: &[Field] = &[
    f("Name", STRING, 6, MAX).nullable(6, MAX).role(TopicName),
    f("TopicId", UUID, 6, MAX).role(TopicId),
];
pub(super) const DELETE_TOPICS_REQ: &[Field] = &[
    f("Topics", arr(DELETE_TOPICS_REQ_DELETE_TOPIC_STATE), 6, MAX),
    f("TopicNames", arr_of(Prim::String), 0, 5).role(TopicNames),
    f("TimeoutMs", INT32, 0, MAX),
];
const DELETE_TOPICS_RESP_DELETABLE_TOPIC_RESULT: &[Field] = &[
    f("Name", STRING, 0, MAX).nullable(6, MAX).role(TopicName),
    f("TopicId", UUID, 6, MAX).role(TopicId),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 5, MAX).nullable(5, MAX).role(ErrorMessage),
];
pub(super) const DELETE_TOPICS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 1, MAX),
    f("Responses", arr(DELETE_TOPICS_RESP_DELETABLE_TOPIC_RESULT), 0, MAX),
];
const DELETE_RECORDS_REQ_DELETE_RECORDS_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("Offset", INT64, 0, MAX),
];
const DELETE_RECORDS_REQ_DELETE_RECORDS_TOPIC: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(DELETE_RECORDS_REQ_DELETE_RECORDS_PARTITION), 0, MAX),
];
pub(super) const DELETE_RECORDS_REQ: &[Field] = &[
    f("Topics", arr(DELETE_RECORDS_REQ_DELETE_RECORDS_TOPIC), 0, MAX),
    f("TimeoutMs", INT32, 0, MAX),
];
const DELETE_RECORDS_RESP_DELETE_RECORDS_PARTITION_RESULT: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("LowWatermark", INT64, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
];
const DELETE_RECORDS_RESP_DELETE_RECORDS_TOPIC_RESULT: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(DELETE_RECORDS_RESP_DELETE_RECORDS_PARTITION_RESULT), 0, MAX),
];
pub(super) const DELETE_RECORDS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Topics", arr(DELETE_RECORDS_RESP_DELETE_RECORDS_TOPIC_RESULT), 0, MAX),
];
pub(super) const INIT_PRODUCER_ID_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ProducerId", INT64, 0, MAX).default(-1),
    f("ProducerEpoch", INT16, 0, MAX),
    f("OngoingTxnProducerId", INT64, 6, MAX).default(-1),
    f("OngoingTxnProducerEpoch", INT16, 6, MAX).default(-1),
];
const OFFSET_FOR_LEADER_EPOCH_REQ_OFFSET_FOR_LEADER_PARTITION: &[Field] = &[
    f("Partition", INT32, 0, MAX).role(Partition),
    f("CurrentLeaderEpoch", INT32, 2, MAX),
    f("LeaderEpoch", INT32, 0, MAX),
];
const OFFSET_FOR_LEADER_EPOCH_REQ_OFFSET_FOR_LEADER_TOPIC: &[Field] = &[
    f("Topic", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(OFFSET_FOR_LEADER_EPOCH_REQ_OFFSET_FOR_LEADER_PARTITION), 0, MAX),
];
pub(super) const OFFSET_FOR_LEADER_EPOCH_REQ: &[Field] = &[
    f("ReplicaId", INT32, 3, MAX),
    f("Topics", arr(OFFSET_FOR_LEADER_EPOCH_REQ_OFFSET_FOR_LEADER_TOPIC), 0, MAX),
];
const OFFSET_FOR_LEADER_EPOCH_RESP_EPOCH_END_OFFSET: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("Partition", INT32, 0, MAX).role(Partition),
    f("LeaderEpoch", INT32, 1, MAX).default(-1),
    f("EndOffset", INT64, 0, MAX).default(-1),
];
const OFFSET_FOR_LEADER_EPOCH_RESP_OFFSET_FOR_LEADER_TOPIC_RESULT: &[Field] = &[
    f("Topic", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(OFFSET_FOR_LEADER_EPOCH_RESP_EPOCH_END_OFFSET), 0, MAX),
];
pub(super) const OFFSET_FOR_LEADER_EPOCH_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 2, MAX),
    f("Topics", arr(OFFSET_FOR_LEADER_EPOCH_RESP_OFFSET_FOR_LEADER_TOPIC_RESULT), 0, MAX),
];
const ADD_PARTITIONS_TO_TXN_REQ_ADD_PARTITIONS_TO_TXN_TOPIC: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr_of(Prim::Int32), 0, MAX).role(Partitions),
];
const ADD_PARTITIONS_TO_TXN_REQ_ADD_PARTITIONS_TO_TXN_TRANSACTION: &[Field] = &[
    f("TransactionalId", STRING, 4, MAX).role(ParentKey),
    f("ProducerId", INT64, 4, MAX),
    f("ProducerEpoch", INT16, 4, MAX),
    f("VerifyOnly", BOOL, 4, MAX),
    f("Topics", arr(ADD_PARTITIONS_TO_TXN_REQ_ADD_PARTITIONS_TO_TXN_TOPIC), 4, MAX),
];
pub(super) const ADD_PARTITIONS_TO_TXN_REQ: &[Field] = &[
    f("Transactions", arr(ADD_PARTITIONS_TO_TXN_REQ_ADD_PARTITIONS_TO_TXN_TRANSACTION), 4, MAX),
    f("V3AndBelowTransactionalId", STRING, 0, 3),
    f("V3AndBelowProducerId", INT64, 0, 3),
    f("V3AndBelowProducerEpoch", INT16, 0, 3),
    f("V3AndBelowTopics", arr(ADD_PARTITIONS_TO_TXN_REQ_ADD_PARTITIONS_TO_TXN_TOPIC), 0, 3),
];
const ADD_PARTITIONS_TO_TXN_RESP_ADD_PARTITIONS_TO_TXN_PARTITION_RESULT: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("PartitionErrorCode", INT16, 0, MAX).role(Error),
];
const ADD_PARTITIONS_TO_TXN_RESP_ADD_PARTITIONS_TO_TXN_TOPIC_RESULT: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("ResultsByPartition", arr(ADD_PARTITIONS_TO_TXN_RESP_ADD_PARTITIONS_TO_TXN_PARTITION_RESULT), 0, MAX),
];
const ADD_PARTITIONS_TO_TXN_RESP_ADD_PARTITIONS_TO_TXN_RESULT: &[Field] = &[
    f("TransactionalId", STRING, 4, MAX).role(ParentKey),
    f("TopicResults", arr(ADD_PARTITIONS_TO_TXN_RESP_ADD_PARTITIONS_TO_TXN_TOPIC_RESULT), 4, MAX),
];
pub(super) const ADD_PARTITIONS_TO_TXN_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 4, MAX).role(Error),
    f("ResultsByTransaction", arr(ADD_PARTITIONS_TO_TXN_RESP_ADD_PARTITIONS_TO_TXN_RESULT), 4, MAX),
    f("ResultsByTopicV3AndBelow", arr(ADD_PARTITIONS_TO_TXN_RESP_ADD_PARTITIONS_TO_TXN_TOPIC_RESULT), 0, 3),
];
pub(super) const ADD_OFFSETS_TO_TXN_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
];
pub(super) const END_TXN_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ProducerId", INT64, 5, MAX).default(-1),
    f("ProducerEpoch", INT16, 5, MAX).default(-1),
];
const WRITE_TXN_MARKERS_REQ_WRITABLE_TXN_MARKER_TOPIC: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("PartitionIndexes", arr_of(Prim::Int32), 0, MAX).role(Partitions),
];
const WRITE_TXN_MARKERS_REQ_WRITABLE_TXN_MARKER: &[Field] = &[
    f("ProducerId", INT64, 0, MAX).role(ParentKey),
    f("ProducerEpoch", INT16, 0, MAX),
    f("TransactionResult", BOOL, 0, MAX),
    f("Topics", arr(WRITE_TXN_MARKERS_REQ_WRITABLE_TXN_MARKER_TOPIC), 0, MAX),
    f("CoordinatorEpoch", INT32, 0, MAX),
    f("TransactionVersion", INT8, 2, MAX),
];
pub(super) const WRITE_TXN_MARKERS_REQ: &[Field] = &[
    f("Markers", arr(WRITE_TXN_MARKERS_REQ_WRITABLE_TXN_MARKER), 0, MAX),
];
const WRITE_TXN_MARKERS_RESP_WRITABLE_TXN_MARKER_PARTITION_RESULT: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
];
const WRITE_TXN_MARKERS_RESP_WRITABLE_TXN_MARKER_TOPIC_RESULT: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(WRITE_TXN_MARKERS_RESP_WRITABLE_TXN_MARKER_PARTITION_RESULT), 0, MAX),
];
const WRITE_TXN_MARKERS_RESP_WRITABLE_TXN_MARKER_RESULT: &[Field] = &[
    f("ProducerId", INT64, 0, MAX).role(ParentKey),
    f("Topics", arr(WRITE_TXN_MARKERS_RESP_WRITABLE_TXN_MARKER_TOPIC_RESULT), 0, MAX),
];
pub(super) const WRITE_TXN_MARKERS_RESP: &[Field] = &[
    f("Markers", arr(WRITE_TXN_MARKERS_RESP_WRITABLE_TXN_MARKER_RESULT), 0, MAX),
];
const TXN_OFFSET_COMMIT_REQ_TXN_OFFSET_COMMIT_REQUEST_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("CommittedOffset", INT64, 0, MAX),
    f("CommittedLeaderEpoch", INT32, 2, MAX),
    f("CommittedMetadata", STRING, 0, MAX).nullable(0, MAX),
];
const TXN_OFFSET_COMMIT_REQ_TXN_OFFSET_COMMIT_REQUEST_TOPIC: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(TXN_OFFSET_COMMIT_REQ_TXN_OFFSET_COMMIT_REQUEST_PARTITION), 0, MAX),
];
pub(super) const TXN_OFFSET_COMMIT_REQ: &[Field] = &[
    f("TransactionalId", STRING, 0, MAX),
    f("GroupId", STRING, 0, MAX),
    f("ProducerId", INT64, 0, MAX),
    f("ProducerEpoch", INT16, 0, MAX),
    f("GenerationId", INT32, 3, MAX),
    f("MemberId", STRING, 3, MAX),
    f("GroupInstanceId", STRING, 3, MAX).nullable(3, MAX),
    f("Topics", arr(TXN_OFFSET_COMMIT_REQ_TXN_OFFSET_COMMIT_REQUEST_TOPIC), 0, MAX),
];
const TXN_OFFSET_COMMIT_RESP_TXN_OFFSET_COMMIT_RESPONSE_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
];
const TXN_OFFSET_COMMIT_RESP_TXN_OFFSET_COMMIT_RESPONSE_TOPIC: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(TXN_OFFSET_COMMIT_RESP_TXN_OFFSET_COMMIT_RESPONSE_PARTITION), 0, MAX),
];
pub(super) const TXN_OFFSET_COMMIT_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Topics", arr(TXN_OFFSET_COMMIT_RESP_TXN_OFFSET_COMMIT_RESPONSE_TOPIC), 0, MAX),
];
const DESCRIBE_ACLS_RESP_ACL_DESCRIPTION: &[Field] = &[
    f("Principal", STRING, 0, MAX),
    f("Host", STRING, 0, MAX),
    f("Operation", INT8, 0, MAX),
    f("PermissionType", INT8, 0, MAX),
];
const DESCRIBE_ACLS_RESP_DESCRIBE_ACLS_RESOURCE: &[Field] = &[
    f("ResourceType", INT8, 0, MAX),
    f("ResourceName", STRING, 0, MAX),
    f("PatternType", INT8, 1, MAX).default(3),
    f("Acls", arr(DESCRIBE_ACLS_RESP_ACL_DESCRIPTION), 0, MAX),
];
pub(super) const DESCRIBE_ACLS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("Resources", arr(DESCRIBE_ACLS_RESP_DESCRIBE_ACLS_RESOURCE), 0, MAX),
];
const CREATE_ACLS_RESP_ACL_CREATION_RESULT: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
];
pub(super) const CREATE_ACLS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Results", arr(CREATE_ACLS_RESP_ACL_CREATION_RESULT), 0, MAX),
];
const DELETE_ACLS_RESP_DELETE_ACLS_MATCHING_ACL: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("ResourceType", INT8, 0, MAX),
    f("ResourceName", STRING, 0, MAX),
    f("PatternType", INT8, 1, MAX).default(3),
    f("Principal", STRING, 0, MAX),
    f("Host", STRING, 0, MAX),
    f("Operation", INT8, 0, MAX),
    f("PermissionType", INT8, 0, MAX),
];
const DELETE_ACLS_RESP_DELETE_ACLS_FILTER_RESULT: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("MatchingAcls", arr(DELETE_ACLS_RESP_DELETE_ACLS_MATCHING_ACL), 0, MAX),
];
pub(super) const DELETE_ACLS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("FilterResults", arr(DELETE_ACLS_RESP_DELETE_ACLS_FILTER_RESULT), 0, MAX),
];
const DESCRIBE_CONFIGS_REQ_DESCRIBE_CONFIGS_RESOURCE: &[Field] = &[
    f("ResourceType", INT8, 0, MAX).role(ResourceType),
    f("ResourceName", STRING, 0, MAX).role(ResourceName),
    f("ConfigurationKeys", arr_of(Prim::String), 0, MAX).nullable(0, MAX),
];
pub(super) const DESCRIBE_CONFIGS_REQ: &[Field] = &[
    f("Resources", arr(DESCRIBE_CONFIGS_REQ_DESCRIBE_CONFIGS_RESOURCE), 0, MAX),
    f("IncludeSynonyms", BOOL, 1, MAX),
    f("IncludeDocumentation", BOOL, 3, MAX),
];
const DESCRIBE_CONFIGS_RESP_DESCRIBE_CONFIGS_SYNONYM: &[Field] = &[
    f("Name", STRING, 1, MAX),
    f("Value", STRING, 1, MAX).nullable(0, MAX),
    f("Source", INT8, 1, MAX),
];
const DESCRIBE_CONFIGS_RESP_DESCRIBE_CONFIGS_RESOURCE_RESULT: &[Field] = &[
    f("Name", STRING, 0, MAX),
    f("Value", STRING, 0, MAX).nullable(0, MAX),
    f("ReadOnly", BOOL, 0, MAX),
    f("ConfigSource", INT8, 1, MAX).default(-1),
    f("IsDefault", BOOL, 0, 0),
    f("IsSensitive", BOOL, 0, MAX),
    f("Synonyms", arr(DESCRIBE_CONFIGS_RESP_DESCRIBE_CONFIGS_SYNONYM), 1, MAX),
    f("ConfigType", INT8, 3, MAX),
    f("Documentation", STRING, 3, MAX).nullable(0, MAX),
];
const DESCRIBE_CONFIGS_RESP_DESCRIBE_CONFIGS_RESULT: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("ResourceType", INT8, 0, MAX).role(ResourceType),
    f("ResourceName", STRING, 0, MAX).role(ResourceName),
    f("Configs", arr(DESCRIBE_CONFIGS_RESP_DESCRIBE_CONFIGS_RESOURCE_RESULT), 0, MAX),
];
pub(super) const DESCRIBE_CONFIGS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Results", arr(DESCRIBE_CONFIGS_RESP_DESCRIBE_CONFIGS_RESULT), 0, MAX),
];
const ALTER_CONFIGS_REQ_ALTERABLE_CONFIG: &[Field] = &[
    f("Name", STRING, 0, MAX),
    f("Value", STRING, 0, MAX).nullable(0, MAX),
];
const ALTER_CONFIGS_REQ_ALTER_CONFIGS_RESOURCE: &[Field] = &[
    f("ResourceType", INT8, 0, MAX).role(ResourceType),
    f("ResourceName", STRING, 0, MAX).role(ResourceName),
    f("Configs", arr(ALTER_CONFIGS_REQ_ALTERABLE_CONFIG), 0, MAX),
];
pub(super) const ALTER_CONFIGS_REQ: &[Field] = &[
    f("Resources", arr(ALTER_CONFIGS_REQ_ALTER_CONFIGS_RESOURCE), 0, MAX),
    f("ValidateOnly", BOOL, 0, MAX),
];
const ALTER_CONFIGS_RESP_ALTER_CONFIGS_RESOURCE_RESPONSE: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("ResourceType", INT8, 0, MAX).role(ResourceType),
    f("ResourceName", STRING, 0, MAX).role(ResourceName),
];
pub(super) const ALTER_CONFIGS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Responses", arr(ALTER_CONFIGS_RESP_ALTER_CONFIGS_RESOURCE_RESPONSE), 0, MAX),
];
const ALTER_REPLICA_LOG_DIRS_REQ_ALTER_REPLICA_LOG_DIR_TOPIC: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr_of(Prim::Int32), 0, MAX).role(Partitions),
];
const ALTER_REPLICA_LOG_DIRS_REQ_ALTER_REPLICA_LOG_DIR: &[Field] = &[
    f("Path", STRING, 0, MAX),
    f("Topics", arr(ALTER_REPLICA_LOG_DIRS_REQ_ALTER_REPLICA_LOG_DIR_TOPIC), 0, MAX),
];
pub(super) const ALTER_REPLICA_LOG_DIRS_REQ: &[Field] = &[
    f("Dirs", arr(ALTER_REPLICA_LOG_DIRS_REQ_ALTER_REPLICA_LOG_DIR), 0, MAX),
];
const ALTER_REPLICA_LOG_DIRS_RESP_ALTER_REPLICA_LOG_DIR_PARTITION_RESULT: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
];
const ALTER_REPLICA_LOG_DIRS_RESP_ALTER_REPLICA_LOG_DIR_TOPIC_RESULT: &[Field] = &[
    f("TopicName", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(ALTER_REPLICA_LOG_DIRS_RESP_ALTER_REPLICA_LOG_DIR_PARTITION_RESULT), 0, MAX),
];
pub(super) const ALTER_REPLICA_LOG_DIRS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Results", arr(ALTER_REPLICA_LOG_DIRS_RESP_ALTER_REPLICA_LOG_DIR_TOPIC_RESULT), 0, MAX),
];
const DESCRIBE_LOG_DIRS_REQ_DESCRIBABLE_LOG_DIR_TOPIC: &[Field] = &[
    f("Topic", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr_of(Prim::Int32), 0, MAX).role(Partitions),
];
pub(super) const DESCRIBE_LOG_DIRS_REQ: &[Field] = &[
    f("Topics", arr(DESCRIBE_LOG_DIRS_REQ_DESCRIBABLE_LOG_DIR_TOPIC), 0, MAX).nullable(0, MAX).role(AllIfNull),
];
const DESCRIBE_LOG_DIRS_RESP_DESCRIBE_LOG_DIRS_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("PartitionSize", INT64, 0, MAX),
    f("OffsetLag", INT64, 0, MAX),
    f("IsFutureKey", BOOL, 0, MAX),
];
const DESCRIBE_LOG_DIRS_RESP_DESCRIBE_LOG_DIRS_TOPIC: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(DESCRIBE_LOG_DIRS_RESP_DESCRIBE_LOG_DIRS_PARTITION), 0, MAX),
];
const DESCRIBE_LOG_DIRS_RESP_DESCRIBE_LOG_DIRS_RESULT: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("LogDir", STRING, 0, MAX),
    f("Topics", arr(DESCRIBE_LOG_DIRS_RESP_DESCRIBE_LOG_DIRS_TOPIC), 0, MAX),
    f("TotalBytes", INT64, 4, MAX).default(-1),
    f("UsableBytes", INT64, 4, MAX).default(-1),
    f("IsCordoned", BOOL, 5, MAX),
];
pub(super) const DESCRIBE_LOG_DIRS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 3, MAX).role(Error),
    f("Results", arr(DESCRIBE_LOG_DIRS_RESP_DESCRIBE_LOG_DIRS_RESULT), 0, MAX),
];
pub(super) const SASL_AUTHENTICATE_RESP: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("AuthBytes", BYTES, 0, MAX),
    f("SessionLifetimeMs", INT64, 1, MAX),
];
const CREATE_PARTITIONS_REQ_CREATE_PARTITIONS_ASSIGNMENT: &[Field] = &[
    f("BrokerIds", arr_of(Prim::Int32), 0, MAX),
];
const CREATE_PARTITIONS_REQ_CREATE_PARTITIONS_TOPIC: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Count", INT32, 0, MAX),
    f("Assignments", arr(CREATE_PARTITIONS_REQ_CREATE_PARTITIONS_ASSIGNMENT), 0, MAX).nullable(0, MAX),
];
pub(super) const CREATE_PARTITIONS_REQ: &[Field] = &[
    f("Topics", arr(CREATE_PARTITIONS_REQ_CREATE_PARTITIONS_TOPIC), 0, MAX),
    f("TimeoutMs", INT32, 0, MAX),
    f("ValidateOnly", BOOL, 0, MAX),
];
const CREATE_PARTITIONS_RESP_CREATE_PARTITIONS_TOPIC_RESULT: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
];
pub(super) const CREATE_PARTITIONS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Results", arr(CREATE_PARTITIONS_RESP_CREATE_PARTITIONS_TOPIC_RESULT), 0, MAX),
];
pub(super) const CREATE_DELEGATION_TOKEN_RESP: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("PrincipalType", STRING, 0, MAX),
    f("PrincipalName", STRING, 0, MAX),
    f("TokenRequesterPrincipalType", STRING, 3, MAX),
    f("TokenRequesterPrincipalName", STRING, 3, MAX),
    f("IssueTimestampMs", INT64, 0, MAX),
    f("ExpiryTimestampMs", INT64, 0, MAX),
    f("MaxTimestampMs", INT64, 0, MAX),
    f("TokenId", STRING, 0, MAX),
    f("Hmac", BYTES, 0, MAX),
    f("ThrottleTimeMs", INT32, 0, MAX),
];
pub(super) const RENEW_DELEGATION_TOKEN_RESP: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ExpiryTimestampMs", INT64, 0, MAX),
    f("ThrottleTimeMs", INT32, 0, MAX),
];
pub(super) const EXPIRE_DELEGATION_TOKEN_RESP: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ExpiryTimestampMs", INT64, 0, MAX),
    f("ThrottleTimeMs", INT32, 0, MAX),
];
const DESCRIBE_DELEGATION_TOKEN_RESP_DESCRIBED_DELEGATION_TOKEN_RENEWER: &[Field] = &[
    f("PrincipalType", STRING, 0, MAX),
    f("PrincipalName", STRING, 0, MAX),
];
const DESCRIBE_DELEGATION_TOKEN_RESP_DESCRIBED_DELEGATION_TOKEN: &[Field] = &[
    f("PrincipalType", STRING, 0, MAX),
    f("PrincipalName", STRING, 0, MAX),
    f("TokenRequesterPrincipalType", STRING, 3, MAX),
    f("TokenRequesterPrincipalName", STRING, 3, MAX),
    f("IssueTimestamp", INT64, 0, MAX).default(-1),
    f("ExpiryTimestamp", INT64, 0, MAX).default(-1),
    f("MaxTimestamp", INT64, 0, MAX).default(-1),
    f("TokenId", STRING, 0, MAX),
    f("Hmac", BYTES, 0, MAX),
    f("Renewers", arr(DESCRIBE_DELEGATION_TOKEN_RESP_DESCRIBED_DELEGATION_TOKEN_RENEWER), 0, MAX),
];
pub(super) const DESCRIBE_DELEGATION_TOKEN_RESP: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("Tokens", arr(DESCRIBE_DELEGATION_TOKEN_RESP_DESCRIBED_DELEGATION_TOKEN), 0, MAX),
    f("ThrottleTimeMs", INT32, 0, MAX),
];
const DELETE_GROUPS_RESP_DELETABLE_GROUP_RESULT: &[Field] = &[
    f("GroupId", STRING, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
];
pub(super) const DELETE_GROUPS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Results", arr(DELETE_GROUPS_RESP_DELETABLE_GROUP_RESULT), 0, MAX),
];
const ELECT_LEADERS_REQ_TOPIC_PARTITIONS: &[Field] = &[
    f("Topic", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr_of(Prim::Int32), 0, MAX).role(Partitions),
];
pub(super) const ELECT_LEADERS_REQ: &[Field] = &[
    f("ElectionType", INT8, 1, MAX),
    f("TopicPartitions", arr(ELECT_LEADERS_REQ_TOPIC_PARTITIONS), 0, MAX).nullable(0, MAX).role(AllIfNull),
    f("TimeoutMs", INT32, 0, MAX),
];
const ELECT_LEADERS_RESP_PARTITION_RESULT: &[Field] = &[
    f("PartitionId", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
];
const ELECT_LEADERS_RESP_REPLICA_ELECTION_RESULT: &[Field] = &[
    f("Topic", STRING, 0, MAX).role(TopicName),
    f("PartitionResult", arr(ELECT_LEADERS_RESP_PARTITION_RESULT), 0, MAX),
];
pub(super) const ELECT_LEADERS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 1, MAX).role(Error),
    f("ReplicaElectionResults", arr(ELECT_LEADERS_RESP_REPLICA_ELECTION_RESULT), 0, MAX),
];
const INCREMENTAL_ALTER_CONFIGS_REQ_ALTERABLE_CONFIG: &[Field] = &[
    f("Name", STRING, 0, MAX),
    f("ConfigOperation", INT8, 0, MAX),
    f("Value", STRING, 0, MAX).nullable(0, MAX),
];
const INCREMENTAL_ALTER_CONFIGS_REQ_ALTER_CONFIGS_RESOURCE: &[Field] = &[
    f("ResourceType", INT8, 0, MAX).role(ResourceType),
    f("ResourceName", STRING, 0, MAX).role(ResourceName),
    f("Configs", arr(INCREMENTAL_ALTER_CONFIGS_REQ_ALTERABLE_CONFIG), 0, MAX),
];
pub(super) const INCREMENTAL_ALTER_CONFIGS_REQ: &[Field] = &[
    f("Resources", arr(INCREMENTAL_ALTER_CONFIGS_REQ_ALTER_CONFIGS_RESOURCE), 0, MAX),
    f("ValidateOnly", BOOL, 0, MAX),
];
const INCREMENTAL_ALTER_CONFIGS_RESP_ALTER_CONFIGS_RESOURCE_RESPONSE: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("ResourceType", INT8, 0, MAX).role(ResourceType),
    f("ResourceName", STRING, 0, MAX).role(ResourceName),
];
pub(super) const INCREMENTAL_ALTER_CONFIGS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Responses", arr(INCREMENTAL_ALTER_CONFIGS_RESP_ALTER_CONFIGS_RESOURCE_RESPONSE), 0, MAX),
];
const ALTER_PARTITION_REASSIGNMENTS_REQ_REASSIGNABLE_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("Replicas", arr_of(Prim::Int32), 0, MAX).nullable(0, MAX),
];
const ALTER_PARTITION_REASSIGNMENTS_REQ_REASSIGNABLE_TOPIC: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(ALTER_PARTITION_REASSIGNMENTS_REQ_REASSIGNABLE_PARTITION), 0, MAX),
];
pub(super) const ALTER_PARTITION_REASSIGNMENTS_REQ: &[Field] = &[
    f("TimeoutMs", INT32, 0, MAX),
    f("AllowReplicationFactorChange", BOOL, 1, MAX),
    f("Topics", arr(ALTER_PARTITION_REASSIGNMENTS_REQ_REASSIGNABLE_TOPIC), 0, MAX),
];
const ALTER_PARTITION_REASSIGNMENTS_RESP_REASSIGNABLE_PARTITION_RESPONSE: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
];
const ALTER_PARTITION_REASSIGNMENTS_RESP_REASSIGNABLE_TOPIC_RESPONSE: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(ALTER_PARTITION_REASSIGNMENTS_RESP_REASSIGNABLE_PARTITION_RESPONSE), 0, MAX),
];
pub(super) const ALTER_PARTITION_REASSIGNMENTS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("AllowReplicationFactorChange", BOOL, 1, MAX).default(1),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("Responses", arr(ALTER_PARTITION_REASSIGNMENTS_RESP_REASSIGNABLE_TOPIC_RESPONSE), 0, MAX),
];
const LIST_PARTITION_REASSIGNMENTS_REQ_LIST_PARTITION_REASSIGNMENTS_TOPICS: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("PartitionIndexes", arr_of(Prim::Int32), 0, MAX).role(Partitions),
];
pub(super) const LIST_PARTITION_REASSIGNMENTS_REQ: &[Field] = &[
    f("TimeoutMs", INT32, 0, MAX),
    f("Topics", arr(LIST_PARTITION_REASSIGNMENTS_REQ_LIST_PARTITION_REASSIGNMENTS_TOPICS), 0, MAX).nullable(0, MAX).role(AllIfNull),
];
const LIST_PARTITION_REASSIGNMENTS_RESP_ONGOING_PARTITION_REASSIGNMENT: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("Replicas", arr_of(Prim::Int32), 0, MAX),
    f("AddingReplicas", arr_of(Prim::Int32), 0, MAX),
    f("RemovingReplicas", arr_of(Prim::Int32), 0, MAX),
];
const LIST_PARTITION_REASSIGNMENTS_RESP_ONGOING_TOPIC_REASSIGNMENT: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(LIST_PARTITION_REASSIGNMENTS_RESP_ONGOING_PARTITION_REASSIGNMENT), 0, MAX),
];
pub(super) const LIST_PARTITION_REASSIGNMENTS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("Topics", arr(LIST_PARTITION_REASSIGNMENTS_RESP_ONGOING_TOPIC_REASSIGNMENT), 0, MAX),
];
const OFFSET_DELETE_REQ_OFFSET_DELETE_REQUEST_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
];
const OFFSET_DELETE_REQ_OFFSET_DELETE_REQUEST_TOPIC: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(OFFSET_DELETE_REQ_OFFSET_DELETE_REQUEST_PARTITION), 0, MAX),
];
pub(super) const OFFSET_DELETE_REQ: &[Field] = &[
    f("GroupId", STRING, 0, MAX),
    f("Topics", arr(OFFSET_DELETE_REQ_OFFSET_DELETE_REQUEST_TOPIC), 0, MAX),
];
const OFFSET_DELETE_RESP_OFFSET_DELETE_RESPONSE_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
];
const OFFSET_DELETE_RESP_OFFSET_DELETE_RESPONSE_TOPIC: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(OFFSET_DELETE_RESP_OFFSET_DELETE_RESPONSE_PARTITION), 0, MAX),
];
pub(super) const OFFSET_DELETE_RESP: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Topics", arr(OFFSET_DELETE_RESP_OFFSET_DELETE_RESPONSE_TOPIC), 0, MAX),
];
const DESCRIBE_CLIENT_QUOTAS_RESP_ENTITY_DATA: &[Field] = &[
    f("EntityType", STRING, 0, MAX),
    f("EntityName", STRING, 0, MAX).nullable(0, MAX),
];
const DESCRIBE_CLIENT_QUOTAS_RESP_VALUE_DATA: &[Field] = &[
    f("Key", STRING, 0, MAX),
    f("Value", FLOAT64, 0, MAX),
];
const DESCRIBE_CLIENT_QUOTAS_RESP_ENTRY_DATA: &[Field] = &[
    f("Entity", arr(DESCRIBE_CLIENT_QUOTAS_RESP_ENTITY_DATA), 0, MAX),
    f("Values", arr(DESCRIBE_CLIENT_QUOTAS_RESP_VALUE_DATA), 0, MAX),
];
pub(super) const DESCRIBE_CLIENT_QUOTAS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("Entries", arr(DESCRIBE_CLIENT_QUOTAS_RESP_ENTRY_DATA), 0, MAX).nullable(0, MAX),
];
const ALTER_CLIENT_QUOTAS_RESP_ENTITY_DATA: &[Field] = &[
    f("EntityType", STRING, 0, MAX),
    f("EntityName", STRING, 0, MAX).nullable(0, MAX),
];
const ALTER_CLIENT_QUOTAS_RESP_ENTRY_DATA: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("Entity", arr(ALTER_CLIENT_QUOTAS_RESP_ENTITY_DATA), 0, MAX),
];
pub(super) const ALTER_CLIENT_QUOTAS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Entries", arr(ALTER_CLIENT_QUOTAS_RESP_ENTRY_DATA), 0, MAX),
];
const DESCRIBE_USER_SCRAM_CREDENTIALS_RESP_CREDENTIAL_INFO: &[Field] = &[
    f("Mechanism", INT8, 0, MAX),
    f("Iterations", INT32, 0, MAX),
];
const DESCRIBE_USER_SCRAM_CREDENTIALS_RESP_DESCRIBE_USER_SCRAM_CREDENTIALS_RESULT: &[Field] = &[
    f("User", STRING, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("CredentialInfos", arr(DESCRIBE_USER_SCRAM_CREDENTIALS_RESP_CREDENTIAL_INFO), 0, MAX),
];
pub(super) const DESCRIBE_USER_SCRAM_CREDENTIALS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("Results", arr(DESCRIBE_USER_SCRAM_CREDENTIALS_RESP_DESCRIBE_USER_SCRAM_CREDENTIALS_RESULT), 0, MAX),
];
const ALTER_USER_SCRAM_CREDENTIALS_RESP_ALTER_USER_SCRAM_CREDENTIALS_RESULT: &[Field] = &[
    f("User", STRING, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
];
pub(super) const ALTER_USER_SCRAM_CREDENTIALS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Results", arr(ALTER_USER_SCRAM_CREDENTIALS_RESP_ALTER_USER_SCRAM_CREDENTIALS_RESULT), 0, MAX),
];
const DESCRIBE_QUORUM_RESP_REPLICA_STATE: &[Field] = &[
    f("ReplicaId", INT32, 0, MAX),
    f("ReplicaDirectoryId", UUID, 2, MAX),
    f("LogEndOffset", INT64, 0, MAX).default(-1),
    f("LastFetchTimestamp", INT64, 1, MAX).default(-1),
    f("LastCaughtUpTimestamp", INT64, 1, MAX).default(-1),
];
const DESCRIBE_QUORUM_RESP_PARTITION_DATA: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 2, MAX).nullable(2, MAX).role(ErrorMessage),
    f("LeaderId", INT32, 0, MAX).default(-1),
    f("LeaderEpoch", INT32, 0, MAX).default(-1),
    f("HighWatermark", INT64, 0, MAX).default(-1),
    f("CurrentVoters", arr(DESCRIBE_QUORUM_RESP_REPLICA_STATE), 0, MAX),
    f("Observers", arr(DESCRIBE_QUORUM_RESP_REPLICA_STATE), 0, MAX),
];
const DESCRIBE_QUORUM_RESP_TOPIC_DATA: &[Field] = &[
    f("TopicName", STRING, 0, MAX),
    f("Partitions", arr(DESCRIBE_QUORUM_RESP_PARTITION_DATA), 0, MAX),
];
const DESCRIBE_QUORUM_RESP_LISTENER: &[Field] = &[
    f("Name", STRING, 2, MAX),
    f("Host", STRING, 2, MAX),
    f("Port", UINT16, 2, MAX),
];
const DESCRIBE_QUORUM_RESP_NODE: &[Field] = &[
    f("NodeId", INT32, 2, MAX),
    f("Listeners", arr(DESCRIBE_QUORUM_RESP_LISTENER), 2, MAX),
];
pub(super) const DESCRIBE_QUORUM_RESP: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 2, MAX).nullable(2, MAX).role(ErrorMessage),
    f("Topics", arr(DESCRIBE_QUORUM_RESP_TOPIC_DATA), 0, MAX),
    f("Nodes", arr(DESCRIBE_QUORUM_RESP_NODE), 2, MAX),
];
const UPDATE_FEATURES_RESP_UPDATABLE_FEATURE_RESULT: &[Field] = &[
    f("Feature", STRING, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
];
pub(super) const UPDATE_FEATURES_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("Results", arr(UPDATE_FEATURES_RESP_UPDATABLE_FEATURE_RESULT), 0, 1),
];
const DESCRIBE_CLUSTER_RESP_DESCRIBE_CLUSTER_BROKER: &[Field] = &[
    f("BrokerId", INT32, 0, MAX),
    f("Host", STRING, 0, MAX).role(BrokerHost),
    f("Port", INT32, 0, MAX).role(BrokerPort),
    f("Rack", STRING, 0, MAX).nullable(0, MAX),
    f("IsFenced", BOOL, 2, MAX),
];
pub(super) const DESCRIBE_CLUSTER_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("EndpointType", INT8, 1, MAX).default(1),
    f("ClusterId", STRING, 0, MAX),
    f("ControllerId", INT32, 0, MAX).default(-1),
    f("Brokers", arr(DESCRIBE_CLUSTER_RESP_DESCRIBE_CLUSTER_BROKER), 0, MAX),
    f("ClusterAuthorizedOperations", INT32, 0, MAX).default(-2147483648),
];
const DESCRIBE_PRODUCERS_REQ_TOPIC_REQUEST: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("PartitionIndexes", arr_of(Prim::Int32), 0, MAX).role(Partitions),
];
pub(super) const DESCRIBE_PRODUCERS_REQ: &[Field] = &[
    f("Topics", arr(DESCRIBE_PRODUCERS_REQ_TOPIC_REQUEST), 0, MAX),
];
const DESCRIBE_PRODUCERS_RESP_PRODUCER_STATE: &[Field] = &[
    f("ProducerId", INT64, 0, MAX),
    f("ProducerEpoch", INT32, 0, MAX),
    f("LastSequence", INT32, 0, MAX).default(-1),
    f("LastTimestamp", INT64, 0, MAX).default(-1),
    f("CoordinatorEpoch", INT32, 0, MAX),
    f("CurrentTxnStartOffset", INT64, 0, MAX).default(-1),
];
const DESCRIBE_PRODUCERS_RESP_PARTITION_RESPONSE: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("ActiveProducers", arr(DESCRIBE_PRODUCERS_RESP_PRODUCER_STATE), 0, MAX),
];
const DESCRIBE_PRODUCERS_RESP_TOPIC_RESPONSE: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(DESCRIBE_PRODUCERS_RESP_PARTITION_RESPONSE), 0, MAX),
];
pub(super) const DESCRIBE_PRODUCERS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Topics", arr(DESCRIBE_PRODUCERS_RESP_TOPIC_RESPONSE), 0, MAX),
];
pub(super) const UNREGISTER_BROKER_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
];
const DESCRIBE_TRANSACTIONS_RESP_TOPIC_DATA: &[Field] = &[
    f("Topic", STRING, 0, MAX),
    f("Partitions", arr_of(Prim::Int32), 0, MAX),
];
const DESCRIBE_TRANSACTIONS_RESP_TRANSACTION_STATE: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("TransactionalId", STRING, 0, MAX),
    f("TransactionState", STRING, 0, MAX),
    f("TransactionTimeoutMs", INT32, 0, MAX),
    f("TransactionStartTimeMs", INT64, 0, MAX).default(-1),
    f("ProducerId", INT64, 0, MAX),
    f("ProducerEpoch", INT16, 0, MAX),
    f("Topics", arr(DESCRIBE_TRANSACTIONS_RESP_TOPIC_DATA), 0, MAX),
];
pub(super) const DESCRIBE_TRANSACTIONS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("TransactionStates", arr(DESCRIBE_TRANSACTIONS_RESP_TRANSACTION_STATE), 0, MAX),
];
const LIST_TRANSACTIONS_RESP_TRANSACTION_STATE: &[Field] = &[
    f("TransactionalId", STRING, 0, MAX),
    f("ProducerId", INT64, 0, MAX),
    f("TransactionState", STRING, 0, MAX),
];
pub(super) const LIST_TRANSACTIONS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("UnknownStateFilters", arr_of(Prim::String), 0, MAX),
    f("TransactionStates", arr(LIST_TRANSACTIONS_RESP_TRANSACTION_STATE), 0, MAX),
];
const CONSUMER_GROUP_HEARTBEAT_REQ_TOPIC_PARTITIONS: &[Field] = &[
    f("TopicId", UUID, 0, MAX).role(TopicId),
    f("Partitions", arr_of(Prim::Int32), 0, MAX).role(Partitions),
];
pub(super) const CONSUMER_GROUP_HEARTBEAT_REQ: &[Field] = &[
    f("GroupId", STRING, 0, MAX),
    f("MemberId", STRING, 0, MAX),
    f("MemberEpoch", INT32, 0, MAX),
    f("InstanceId", STRING, 0, MAX).nullable(0, MAX),
    f("RackId", STRING, 0, MAX).nullable(0, MAX),
    f("RebalanceTimeoutMs", INT32, 0, MAX),
    f("SubscribedTopicNames", arr_of(Prim::String), 0, MAX).nullable(0, MAX).role(TopicNames),
    f("SubscribedTopicRegex", STRING, 1, MAX).nullable(1, MAX).role(Pattern),
    f("ServerAssignor", STRING, 0, MAX).nullable(0, MAX),
    f("TopicPartitions", arr(CONSUMER_GROUP_HEARTBEAT_REQ_TOPIC_PARTITIONS), 0, MAX).nullable(0, MAX),
];
const CONSUMER_GROUP_HEARTBEAT_RESP_TOPIC_PARTITIONS: &[Field] = &[
    f("TopicId", UUID, 0, MAX).role(TopicId),
    f("Partitions", arr_of(Prim::Int32), 0, MAX).role(Partitions),
];
const CONSUMER_GROUP_HEARTBEAT_RESP_ASSIGNMENT: &[Field] = &[
    f("TopicPartitions", arr(CONSUMER_GROUP_HEARTBEAT_RESP_TOPIC_PARTITIONS), 0, MAX),
];
pub(super) const CONSUMER_GROUP_HEARTBEAT_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("MemberId", STRING, 0, MAX).nullable(0, MAX),
    f("MemberEpoch", INT32, 0, MAX),
    f("HeartbeatIntervalMs", INT32, 0, MAX),
    f("Assignment", obj(CONSUMER_GROUP_HEARTBEAT_RESP_ASSIGNMENT), 0, MAX).nullable(0, MAX),
];
const CONSUMER_GROUP_DESCRIBE_RESP_TOPIC_PARTITIONS: &[Field] = &[
    f("TopicId", UUID, 0, MAX),
    f("TopicName", STRING, 0, MAX),
    f("Partitions", arr_of(Prim::Int32), 0, MAX),
];
const CONSUMER_GROUP_DESCRIBE_RESP_ASSIGNMENT: &[Field] = &[
    f("TopicPartitions", arr(CONSUMER_GROUP_DESCRIBE_RESP_TOPIC_PARTITIONS), 0, MAX),
];
const CONSUMER_GROUP_DESCRIBE_RESP_MEMBER: &[Field] = &[
    f("MemberId", STRING, 0, MAX),
    f("InstanceId", STRING, 0, MAX).nullable(0, MAX),
    f("RackId", STRING, 0, MAX).nullable(0, MAX),
    f("MemberEpoch", INT32, 0, MAX),
    f("ClientId", STRING, 0, MAX),
    f("ClientHost", STRING, 0, MAX),
    f("SubscribedTopicNames", arr_of(Prim::String), 0, MAX),
    f("SubscribedTopicRegex", STRING, 0, MAX).nullable(0, MAX),
    f("Assignment", obj(CONSUMER_GROUP_DESCRIBE_RESP_ASSIGNMENT), 0, MAX),
    f("TargetAssignment", obj(CONSUMER_GROUP_DESCRIBE_RESP_ASSIGNMENT), 0, MAX),
    f("MemberType", INT8, 1, MAX).default(-1),
];
const CONSUMER_GROUP_DESCRIBE_RESP_DESCRIBED_GROUP: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("GroupId", STRING, 0, MAX),
    f("GroupState", STRING, 0, MAX),
    f("GroupEpoch", INT32, 0, MAX),
    f("AssignmentEpoch", INT32, 0, MAX),
    f("AssignorName", STRING, 0, MAX),
    f("Members", arr(CONSUMER_GROUP_DESCRIBE_RESP_MEMBER), 0, MAX),
    f("AuthorizedOperations", INT32, 0, MAX).default(-2147483648),
];
pub(super) const CONSUMER_GROUP_DESCRIBE_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Groups", arr(CONSUMER_GROUP_DESCRIBE_RESP_DESCRIBED_GROUP), 0, MAX),
];
pub(super) const GET_TELEMETRY_SUBSCRIPTIONS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ClientInstanceId", UUID, 0, MAX),
    f("SubscriptionId", INT32, 0, MAX),
    f("AcceptedCompressionTypes", arr_of(Prim::Int8), 0, MAX),
    f("PushIntervalMs", INT32, 0, MAX),
    f("TelemetryMaxBytes", INT32, 0, MAX),
    f("DeltaTemporality", BOOL, 0, MAX),
    f("RequestedMetrics", arr_of(Prim::String), 0, MAX),
];
pub(super) const PUSH_TELEMETRY_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
];
const LIST_CONFIG_RESOURCES_RESP_CONFIG_RESOURCE: &[Field] = &[
    f("ResourceName", STRING, 0, MAX),
    f("ResourceType", INT8, 1, MAX).default(16),
];
pub(super) const LIST_CONFIG_RESOURCES_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ConfigResources", arr(LIST_CONFIG_RESOURCES_RESP_CONFIG_RESOURCE), 0, MAX),
];
const DESCRIBE_TOPIC_PARTITIONS_REQ_TOPIC_REQUEST: &[Field] = &[
    f("Name", STRING, 0, MAX).role(TopicName),
];
const DESCRIBE_TOPIC_PARTITIONS_REQ_CURSOR: &[Field] = &[
    f("TopicName", STRING, 0, MAX).role(TopicName),
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
];
pub(super) const DESCRIBE_TOPIC_PARTITIONS_REQ: &[Field] = &[
    f("Topics", arr(DESCRIBE_TOPIC_PARTITIONS_REQ_TOPIC_REQUEST), 0, MAX),
    f("ResponsePartitionLimit", INT32, 0, MAX),
    f("Cursor", obj(DESCRIBE_TOPIC_PARTITIONS_REQ_CURSOR), 0, MAX).nullable(0, MAX),
];
const DESCRIBE_TOPIC_PARTITIONS_RESP_DESCRIBE_TOPIC_PARTITIONS_RESPONSE_PARTITION: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("LeaderId", INT32, 0, MAX).default(-1),
    f("LeaderEpoch", INT32, 0, MAX).default(-1),
    f("ReplicaNodes", arr_of(Prim::Int32), 0, MAX),
    f("IsrNodes", arr_of(Prim::Int32), 0, MAX),
    f("EligibleLeaderReplicas", arr_of(Prim::Int32), 0, MAX).nullable(0, MAX),
    f("LastKnownElr", arr_of(Prim::Int32), 0, MAX).nullable(0, MAX),
    f("OfflineReplicas", arr_of(Prim::Int32), 0, MAX),
];
const DESCRIBE_TOPIC_PARTITIONS_RESP_DESCRIBE_TOPIC_PARTITIONS_RESPONSE_TOPIC: &[Field] = &[
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("Name", STRING, 0, MAX).nullable(0, MAX).role(TopicName),
    f("TopicId", UUID, 0, MAX).role(TopicId),
    f("IsInternal", BOOL, 0, MAX),
    f("Partitions", arr(DESCRIBE_TOPIC_PARTITIONS_RESP_DESCRIBE_TOPIC_PARTITIONS_RESPONSE_PARTITION), 0, MAX),
    f("TopicAuthorizedOperations", INT32, 0, MAX).default(-2147483648),
];
const DESCRIBE_TOPIC_PARTITIONS_RESP_CURSOR: &[Field] = &[
    f("TopicName", STRING, 0, MAX).role(TopicName),
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
];
pub(super) const DESCRIBE_TOPIC_PARTITIONS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Topics", arr(DESCRIBE_TOPIC_PARTITIONS_RESP_DESCRIBE_TOPIC_PARTITIONS_RESPONSE_TOPIC), 0, MAX),
    f("NextCursor", obj(DESCRIBE_TOPIC_PARTITIONS_RESP_CURSOR), 0, MAX).nullable(0, MAX),
];
pub(super) const SHARE_GROUP_HEARTBEAT_REQ: &[Field] = &[
    f("GroupId", STRING, 0, MAX),
    f("MemberId", STRING, 0, MAX),
    f("MemberEpoch", INT32, 0, MAX),
    f("RackId", STRING, 0, MAX).nullable(0, MAX),
    f("SubscribedTopicNames", arr_of(Prim::String), 0, MAX).nullable(0, MAX).role(TopicNames),
];
const SHARE_GROUP_HEARTBEAT_RESP_TOPIC_PARTITIONS: &[Field] = &[
    f("TopicId", UUID, 0, MAX).role(TopicId),
    f("Partitions", arr_of(Prim::Int32), 0, MAX).role(Partitions),
];
const SHARE_GROUP_HEARTBEAT_RESP_ASSIGNMENT: &[Field] = &[
    f("TopicPartitions", arr(SHARE_GROUP_HEARTBEAT_RESP_TOPIC_PARTITIONS), 0, MAX),
];
pub(super) const SHARE_GROUP_HEARTBEAT_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("MemberId", STRING, 0, MAX).nullable(0, MAX),
    f("MemberEpoch", INT32, 0, MAX),
    f("HeartbeatIntervalMs", INT32, 0, MAX),
    f("Assignment", obj(SHARE_GROUP_HEARTBEAT_RESP_ASSIGNMENT), 0, MAX).nullable(0, MAX),
];
const SHARE_FETCH_REQ_ACKNOWLEDGEMENT_BATCH: &[Field] = &[
    f("FirstOffset", INT64, 0, MAX),
    f("LastOffset", INT64, 0, MAX),
    f("AcknowledgeTypes", arr_of(Prim::Int8), 0, MAX),
];
const SHARE_FETCH_REQ_FETCH_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("PartitionMaxBytes", INT32, 0, 0),
    f("AcknowledgementBatches", arr(SHARE_FETCH_REQ_ACKNOWLEDGEMENT_BATCH), 0, MAX),
];
const SHARE_FETCH_REQ_FETCH_TOPIC: &[Field] = &[
    f("TopicId", UUID, 0, MAX).role(TopicId),
    f("Partitions", arr(SHARE_FETCH_REQ_FETCH_PARTITION), 0, MAX),
];
const SHARE_FETCH_REQ_FORGOTTEN_TOPIC: &[Field] = &[
    f("TopicId", UUID, 0, MAX).role(TopicId),
    f("Partitions", arr_of(Prim::Int32), 0, MAX).role(Partitions),
];
pub(super) const SHARE_FETCH_REQ: &[Field] = &[
    f("GroupId", STRING, 0, MAX).nullable(0, MAX),
    f("MemberId", STRING, 0, MAX).nullable(0, MAX),
    f("ShareSessionEpoch", INT32, 0, MAX),
    f("MaxWaitMs", INT32, 0, MAX),
    f("MinBytes", INT32, 0, MAX),
    f("MaxBytes", INT32, 0, MAX),
    f("MaxRecords", INT32, 1, MAX),
    f("BatchSize", INT32, 1, MAX),
    f("Topics", arr(SHARE_FETCH_REQ_FETCH_TOPIC), 0, MAX),
    f("ForgottenTopicsData", arr(SHARE_FETCH_REQ_FORGOTTEN_TOPIC), 0, MAX).role(NoCollect),
];
const SHARE_FETCH_RESP_LEADER_ID_AND_EPOCH: &[Field] = &[
    f("LeaderId", INT32, 0, MAX).default(-1),
    f("LeaderEpoch", INT32, 0, MAX).default(-1),
];
const SHARE_FETCH_RESP_ACQUIRED_RECORDS: &[Field] = &[
    f("FirstOffset", INT64, 0, MAX).default(-1),
    f("LastOffset", INT64, 0, MAX).default(-1),
    f("DeliveryCount", INT16, 0, MAX),
];
const SHARE_FETCH_RESP_PARTITION_DATA: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("AcknowledgeErrorCode", INT16, 0, MAX).role(Error),
    f("AcknowledgeErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("CurrentLeader", obj(SHARE_FETCH_RESP_LEADER_ID_AND_EPOCH), 0, MAX),
    f("Records", BYTES, 0, MAX).nullable(0, MAX),
    f("AcquiredRecords", arr(SHARE_FETCH_RESP_ACQUIRED_RECORDS), 0, MAX),
];
const SHARE_FETCH_RESP_SHARE_FETCHABLE_TOPIC_RESPONSE: &[Field] = &[
    f("TopicId", UUID, 0, MAX).role(TopicId),
    f("Partitions", arr(SHARE_FETCH_RESP_PARTITION_DATA), 0, MAX),
];
const SHARE_FETCH_RESP_NODE_ENDPOINT: &[Field] = &[
    f("NodeId", INT32, 0, MAX),
    f("Host", STRING, 0, MAX).role(BrokerHost),
    f("Port", INT32, 0, MAX).role(BrokerPort),
    f("Rack", STRING, 0, MAX).nullable(0, MAX),
];
pub(super) const SHARE_FETCH_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("AcquisitionLockTimeoutMs", INT32, 1, MAX),
    f("Responses", arr(SHARE_FETCH_RESP_SHARE_FETCHABLE_TOPIC_RESPONSE), 0, MAX),
    f("NodeEndpoints", arr(SHARE_FETCH_RESP_NODE_ENDPOINT), 0, MAX),
];
const SHARE_ACKNOWLEDGE_REQ_ACKNOWLEDGEMENT_BATCH: &[Field] = &[
    f("FirstOffset", INT64, 0, MAX),
    f("LastOffset", INT64, 0, MAX),
    f("AcknowledgeTypes", arr_of(Prim::Int8), 0, MAX),
];
const SHARE_ACKNOWLEDGE_REQ_ACKNOWLEDGE_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("AcknowledgementBatches", arr(SHARE_ACKNOWLEDGE_REQ_ACKNOWLEDGEMENT_BATCH), 0, MAX),
];
const SHARE_ACKNOWLEDGE_REQ_ACKNOWLEDGE_TOPIC: &[Field] = &[
    f("TopicId", UUID, 0, MAX).role(TopicId),
    f("Partitions", arr(SHARE_ACKNOWLEDGE_REQ_ACKNOWLEDGE_PARTITION), 0, MAX),
];
pub(super) const SHARE_ACKNOWLEDGE_REQ: &[Field] = &[
    f("GroupId", STRING, 0, MAX).nullable(0, MAX),
    f("MemberId", STRING, 0, MAX).nullable(0, MAX),
    f("ShareSessionEpoch", INT32, 0, MAX),
    f("IsRenewAck", BOOL, 2, MAX),
    f("Topics", arr(SHARE_ACKNOWLEDGE_REQ_ACKNOWLEDGE_TOPIC), 0, MAX),
];
const SHARE_ACKNOWLEDGE_RESP_LEADER_ID_AND_EPOCH: &[Field] = &[
    f("LeaderId", INT32, 0, MAX).default(-1),
    f("LeaderEpoch", INT32, 0, MAX).default(-1),
];
const SHARE_ACKNOWLEDGE_RESP_PARTITION_DATA: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("CurrentLeader", obj(SHARE_ACKNOWLEDGE_RESP_LEADER_ID_AND_EPOCH), 0, MAX),
];
const SHARE_ACKNOWLEDGE_RESP_SHARE_ACKNOWLEDGE_TOPIC_RESPONSE: &[Field] = &[
    f("TopicId", UUID, 0, MAX).role(TopicId),
    f("Partitions", arr(SHARE_ACKNOWLEDGE_RESP_PARTITION_DATA), 0, MAX),
];
const SHARE_ACKNOWLEDGE_RESP_NODE_ENDPOINT: &[Field] = &[
    f("NodeId", INT32, 0, MAX),
    f("Host", STRING, 0, MAX).role(BrokerHost),
    f("Port", INT32, 0, MAX).role(BrokerPort),
    f("Rack", STRING, 0, MAX).nullable(0, MAX),
];
pub(super) const SHARE_ACKNOWLEDGE_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("AcquisitionLockTimeoutMs", INT32, 2, MAX),
    f("Responses", arr(SHARE_ACKNOWLEDGE_RESP_SHARE_ACKNOWLEDGE_TOPIC_RESPONSE), 0, MAX),
    f("NodeEndpoints", arr(SHARE_ACKNOWLEDGE_RESP_NODE_ENDPOINT), 0, MAX),
];
pub(super) const ADD_RAFT_VOTER_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
];
pub(super) const REMOVE_RAFT_VOTER_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
];
const STREAMS_GROUP_HEARTBEAT_RESP_STATUS: &[Field] = &[
    f("StatusCode", INT8, 0, MAX),
    f("StatusDetail", STRING, 0, MAX),
];
const STREAMS_GROUP_HEARTBEAT_RESP_TASK_IDS: &[Field] = &[
    f("SubtopologyId", STRING, 0, MAX),
    f("Partitions", arr_of(Prim::Int32), 0, MAX),
];
const STREAMS_GROUP_HEARTBEAT_RESP_ENDPOINT: &[Field] = &[
    f("Host", STRING, 0, MAX),
    f("Port", UINT16, 0, MAX),
];
const STREAMS_GROUP_HEARTBEAT_RESP_TOPIC_PARTITION: &[Field] = &[
    f("Topic", STRING, 0, MAX),
    f("Partitions", arr_of(Prim::Int32), 0, MAX),
];
const STREAMS_GROUP_HEARTBEAT_RESP_ENDPOINT_TO_PARTITIONS: &[Field] = &[
    f("UserEndpoint", obj(STREAMS_GROUP_HEARTBEAT_RESP_ENDPOINT), 0, MAX),
    f("ActivePartitions", arr(STREAMS_GROUP_HEARTBEAT_RESP_TOPIC_PARTITION), 0, MAX),
    f("StandbyPartitions", arr(STREAMS_GROUP_HEARTBEAT_RESP_TOPIC_PARTITION), 0, MAX),
];
pub(super) const STREAMS_GROUP_HEARTBEAT_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("MemberId", STRING, 0, MAX),
    f("MemberEpoch", INT32, 0, MAX),
    f("HeartbeatIntervalMs", INT32, 0, MAX),
    f("AcceptableRecoveryLag", INT32, 0, MAX),
    f("TaskOffsetIntervalMs", INT32, 0, MAX),
    f("Status", arr(STREAMS_GROUP_HEARTBEAT_RESP_STATUS), 0, MAX).nullable(0, MAX),
    f("ActiveTasks", arr(STREAMS_GROUP_HEARTBEAT_RESP_TASK_IDS), 0, MAX).nullable(0, MAX),
    f("StandbyTasks", arr(STREAMS_GROUP_HEARTBEAT_RESP_TASK_IDS), 0, MAX).nullable(0, MAX),
    f("WarmupTasks", arr(STREAMS_GROUP_HEARTBEAT_RESP_TASK_IDS), 0, MAX).nullable(0, MAX),
    f("EndpointInformationEpoch", INT32, 0, MAX),
    f("PartitionsByUserEndpoint", arr(STREAMS_GROUP_HEARTBEAT_RESP_ENDPOINT_TO_PARTITIONS), 0, MAX).nullable(0, MAX),
];
const DESCRIBE_SHARE_GROUP_OFFSETS_REQ_DESCRIBE_SHARE_GROUP_OFFSETS_REQUEST_TOPIC: &[Field] = &[
    f("TopicName", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr_of(Prim::Int32), 0, MAX).role(Partitions),
];
const DESCRIBE_SHARE_GROUP_OFFSETS_REQ_DESCRIBE_SHARE_GROUP_OFFSETS_REQUEST_GROUP: &[Field] = &[
    f("GroupId", STRING, 0, MAX).role(ParentKey),
    f("Topics", arr(DESCRIBE_SHARE_GROUP_OFFSETS_REQ_DESCRIBE_SHARE_GROUP_OFFSETS_REQUEST_TOPIC), 0, MAX).nullable(0, MAX).role(AllIfNull),
];
pub(super) const DESCRIBE_SHARE_GROUP_OFFSETS_REQ: &[Field] = &[
    f("Groups", arr(DESCRIBE_SHARE_GROUP_OFFSETS_REQ_DESCRIBE_SHARE_GROUP_OFFSETS_REQUEST_GROUP), 0, MAX),
];
const DESCRIBE_SHARE_GROUP_OFFSETS_RESP_DESCRIBE_SHARE_GROUP_OFFSETS_RESPONSE_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("StartOffset", INT64, 0, MAX).default(-1),
    f("LeaderEpoch", INT32, 0, MAX).default(-1),
    f("Lag", INT64, 1, MAX).default(-1),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
];
const DESCRIBE_SHARE_GROUP_OFFSETS_RESP_DESCRIBE_SHARE_GROUP_OFFSETS_RESPONSE_TOPIC: &[Field] = &[
    f("TopicName", STRING, 0, MAX).role(TopicName),
    f("TopicId", UUID, 0, MAX).role(TopicId),
    f("Partitions", arr(DESCRIBE_SHARE_GROUP_OFFSETS_RESP_DESCRIBE_SHARE_GROUP_OFFSETS_RESPONSE_PARTITION), 0, MAX),
];
const DESCRIBE_SHARE_GROUP_OFFSETS_RESP_DESCRIBE_SHARE_GROUP_OFFSETS_RESPONSE_GROUP: &[Field] = &[
    f("GroupId", STRING, 0, MAX).role(ParentKey),
    f("Topics", arr(DESCRIBE_SHARE_GROUP_OFFSETS_RESP_DESCRIBE_SHARE_GROUP_OFFSETS_RESPONSE_TOPIC), 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
];
pub(super) const DESCRIBE_SHARE_GROUP_OFFSETS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("Groups", arr(DESCRIBE_SHARE_GROUP_OFFSETS_RESP_DESCRIBE_SHARE_GROUP_OFFSETS_RESPONSE_GROUP), 0, MAX),
];
const ALTER_SHARE_GROUP_OFFSETS_REQ_ALTER_SHARE_GROUP_OFFSETS_REQUEST_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("StartOffset", INT64, 0, MAX),
];
const ALTER_SHARE_GROUP_OFFSETS_REQ_ALTER_SHARE_GROUP_OFFSETS_REQUEST_TOPIC: &[Field] = &[
    f("TopicName", STRING, 0, MAX).role(TopicName),
    f("Partitions", arr(ALTER_SHARE_GROUP_OFFSETS_REQ_ALTER_SHARE_GROUP_OFFSETS_REQUEST_PARTITION), 0, MAX),
];
pub(super) const ALTER_SHARE_GROUP_OFFSETS_REQ: &[Field] = &[
    f("GroupId", STRING, 0, MAX),
    f("Topics", arr(ALTER_SHARE_GROUP_OFFSETS_REQ_ALTER_SHARE_GROUP_OFFSETS_REQUEST_TOPIC), 0, MAX),
];
const ALTER_SHARE_GROUP_OFFSETS_RESP_ALTER_SHARE_GROUP_OFFSETS_RESPONSE_PARTITION: &[Field] = &[
    f("PartitionIndex", INT32, 0, MAX).role(Partition),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
];
const ALTER_SHARE_GROUP_OFFSETS_RESP_ALTER_SHARE_GROUP_OFFSETS_RESPONSE_TOPIC: &[Field] = &[
    f("TopicName", STRING, 0, MAX).role(TopicName),
    f("TopicId", UUID, 0, MAX).role(TopicId),
    f("Partitions", arr(ALTER_SHARE_GROUP_OFFSETS_RESP_ALTER_SHARE_GROUP_OFFSETS_RESPONSE_PARTITION), 0, MAX),
];
pub(super) const ALTER_SHARE_GROUP_OFFSETS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("Responses", arr(ALTER_SHARE_GROUP_OFFSETS_RESP_ALTER_SHARE_GROUP_OFFSETS_RESPONSE_TOPIC), 0, MAX),
];
const DELETE_SHARE_GROUP_OFFSETS_REQ_DELETE_SHARE_GROUP_OFFSETS_REQUEST_TOPIC: &[Field] = &[
    f("TopicName", STRING, 0, MAX).role(TopicName),
];
pub(super) const DELETE_SHARE_GROUP_OFFSETS_REQ: &[Field] = &[
    f("GroupId", STRING, 0, MAX),
    f("Topics", arr(DELETE_SHARE_GROUP_OFFSETS_REQ_DELETE_SHARE_GROUP_OFFSETS_REQUEST_TOPIC), 0, MAX),
];
const DELETE_SHARE_GROUP_OFFSETS_RESP_DELETE_SHARE_GROUP_OFFSETS_RESPONSE_TOPIC: &[Field] = &[
    f("TopicName", STRING, 0, MAX).role(TopicName),
    f("TopicId", UUID, 0, MAX).role(TopicId),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
];
pub(super) const DELETE_SHARE_GROUP_OFFSETS_RESP: &[Field] = &[
    f("ThrottleTimeMs", INT32, 0, MAX),
    f("ErrorCode", INT16, 0, MAX).role(Error),
    f("ErrorMessage", STRING, 0, MAX).nullable(0, MAX).role(ErrorMessage),
    f("Responses", arr(DELETE_SHARE_GROUP_OFFSETS_RESP_DELETE_SHARE_GROUP_OFFSETS_RESPONSE_TOPIC), 0, MAX),
];
/// Every API key, by key.
pub(super) const APIS: &[ApiInfo] = &[
    def(0, "Produce", 13, Some(9), TopicKind::Extracted, Some(PRODUCE_REQ), Some(PRODUCE_RESP)),
    def(1, "Fetch", 18, Some(12), TopicKind::Extracted, Some(FETCH_REQ), Some(FETCH_RESP)),
    def(2, "ListOffsets", 11, Some(6), TopicKind::Extracted, Some(LIST_OFFSETS_REQ), Some(LIST_OFFSETS_RESP)),
    def(3, "Metadata", 13, Some(9), TopicKind::Extracted, Some(METADATA_REQ), Some(METADATA_RESP)),
    def(4, "LeaderAndIsr", 7, Some(4), TopicKind::Opaque, None, None),
    def(5, "StopReplica", 4, Some(2), TopicKind::Opaque, None, None),
    def(6, "UpdateMetadata", 8, Some(6), TopicKind::Opaque, None, None),
    def(7, "ControlledShutdown", 3, Some(3), TopicKind::None, None, None),
    def(8, "OffsetCommit", 10, Some(8), TopicKind::Extracted, Some(OFFSET_COMMIT_REQ), Some(OFFSET_COMMIT_RESP)),
    def(9, "OffsetFetch", 10, Some(6), TopicKind::Extracted, Some(OFFSET_FETCH_REQ), Some(OFFSET_FETCH_RESP)),
    def(10, "FindCoordinator", 6, Some(3), TopicKind::None, None, Some(FIND_COORDINATOR_RESP)),
    def(11, "JoinGroup", 9, Some(6), TopicKind::None, None, Some(JOIN_GROUP_RESP)),
    def(12, "Heartbeat", 4, Some(4), TopicKind::None, None, Some(HEARTBEAT_RESP)),
    def(13, "LeaveGroup", 5, Some(4), TopicKind::None, None, Some(LEAVE_GROUP_RESP)),
    def(14, "SyncGroup", 5, Some(4), TopicKind::None, None, Some(SYNC_GROUP_RESP)),
    def(15, "DescribeGroups", 6, Some(5), TopicKind::None, None, Some(DESCRIBE_GROUPS_RESP)),
    def(16, "ListGroups", 5, Some(3), TopicKind::None, None, Some(LIST_GROUPS_RESP)),
    def(17, "SaslHandshake", 1, None, TopicKind::None, None, Some(SASL_HANDSHAKE_RESP)),
    def(18, "ApiVersions", 4, Some(3), TopicKind::None, None, Some(API_VERSIONS_RESP)),
    def(19, "CreateTopics", 7, Some(5), TopicKind::Extracted, Some(CREATE_TOPICS_REQ), Some(CREATE_TOPICS_RESP)),
    def(20, "DeleteTopics", 6, Some(4), TopicKind::Extracted, Some(DELETE_TOPICS_REQ), Some(DELETE_TOPICS_RESP)),
    def(21, "DeleteRecords", 2, Some(2), TopicKind::Extracted, Some(DELETE_RECORDS_REQ), Some(DELETE_RECORDS_RESP)),
    def(22, "InitProducerId", 6, Some(2), TopicKind::None, None, Some(INIT_PRODUCER_ID_RESP)),
    def(23, "OffsetForLeaderEpoch", 4, Some(4), TopicKind::Extracted, Some(OFFSET_FOR_LEADER_EPOCH_REQ), Some(OFFSET_FOR_LEADER_EPOCH_RESP)),
    def(24, "AddPartitionsToTxn", 5, Some(3), TopicKind::Extracted, Some(ADD_PARTITIONS_TO_TXN_REQ), Some(ADD_PARTITIONS_TO_TXN_RESP)),
    def(25, "AddOffsetsToTxn", 4, Some(3), TopicKind::None, None, Some(ADD_OFFSETS_TO_TXN_RESP)),
    def(26, "EndTxn", 5, Some(3), TopicKind::None, None, Some(END_TXN_RESP)),
    def(27, "WriteTxnMarkers", 2, Some(1), TopicKind::Extracted, Some(WRITE_TXN_MARKERS_REQ), Some(WRITE_TXN_MARKERS_RESP)),
    def(28, "TxnOffsetCommit", 5, Some(3), TopicKind::Extracted, Some(TXN_OFFSET_COMMIT_REQ), Some(TXN_OFFSET_COMMIT_RESP)),
    def(29, "DescribeAcls", 3, Some(2), TopicKind::None, None, Some(DESCRIBE_ACLS_RESP)),
    def(30, "CreateAcls", 3, Some(2), TopicKind::None, None, Some(CREATE_ACLS_RESP)),
    def(31, "DeleteAcls", 3, Some(2), TopicKind::None, None, Some(DELETE_ACLS_RESP)),
    def(32, "DescribeConfigs", 4, Some(4), TopicKind::Extracted, Some(DESCRIBE_CONFIGS_REQ), Some(DESCRIBE_CONFIGS_RESP)),
    def(33, "AlterConfigs", 2, Some(2), TopicKind::Extracted, Some(ALTER_CONFIGS_REQ), Some(ALTER_CONFIGS_RESP)),
    def(34, "AlterReplicaLogDirs", 2, Some(2), TopicKind::Extracted, Some(ALTER_REPLICA_LOG_DIRS_REQ), Some(ALTER_REPLICA_LOG_DIRS_RESP)),
    def(35, "DescribeLogDirs", 5, Some(2), TopicKind::Extracted, Some(DESCRIBE_LOG_DIRS_REQ), Some(DESCRIBE_LOG_DIRS_RESP)),
    def(36, "SaslAuthenticate", 2, Some(2), TopicKind::None, None, Some(SASL_AUTHENTICATE_RESP)),
    def(37, "CreatePartitions", 3, Some(2), TopicKind::Extracted, Some(CREATE_PARTITIONS_REQ), Some(CREATE_PARTITIONS_RESP)),
    def(38, "CreateDelegationToken", 3, Some(2), TopicKind::None, None, Some(CREATE_DELEGATION_TOKEN_RESP)),
    def(39, "RenewDelegationToken", 2, Some(2), TopicKind::None, None, Some(RENEW_DELEGATION_TOKEN_RESP)),
    def(40, "ExpireDelegationToken", 2, Some(2), TopicKind::None, None, Some(EXPIRE_DELEGATION_TOKEN_RESP)),
    def(41, "DescribeDelegationToken", 3, Some(2), TopicKind::None, None, Some(DESCRIBE_DELEGATION_TOKEN_RESP)),
    def(42, "DeleteGroups", 2, Some(2), TopicKind::None, None, Some(DELETE_GROUPS_RESP)),
    def(43, "ElectLeaders", 2, Some(2), TopicKind::Extracted, Some(ELECT_LEADERS_REQ), Some(ELECT_LEADERS_RESP)),
    def(44, "IncrementalAlterConfigs", 1, Some(1), TopicKind::Extracted, Some(INCREMENTAL_ALTER_CONFIGS_REQ), Some(INCREMENTAL_ALTER_CONFIGS_RESP)),
    def(45, "AlterPartitionReassignments", 1, Some(0), TopicKind::Extracted, Some(ALTER_PARTITION_REASSIGNMENTS_REQ), Some(ALTER_PARTITION_REASSIGNMENTS_RESP)),
    def(46, "ListPartitionReassignments", 0, Some(0), TopicKind::Extracted, Some(LIST_PARTITION_REASSIGNMENTS_REQ), Some(LIST_PARTITION_REASSIGNMENTS_RESP)),
    def(47, "OffsetDelete", 0, None, TopicKind::Extracted, Some(OFFSET_DELETE_REQ), Some(OFFSET_DELETE_RESP)),
    def(48, "DescribeClientQuotas", 1, Some(1), TopicKind::None, None, Some(DESCRIBE_CLIENT_QUOTAS_RESP)),
    def(49, "AlterClientQuotas", 1, Some(1), TopicKind::None, None, Some(ALTER_CLIENT_QUOTAS_RESP)),
    def(50, "DescribeUserScramCredentials", 0, Some(0), TopicKind::None, None, Some(DESCRIBE_USER_SCRAM_CREDENTIALS_RESP)),
    def(51, "AlterUserScramCredentials", 0, Some(0), TopicKind::None, None, Some(ALTER_USER_SCRAM_CREDENTIALS_RESP)),
    def(52, "Vote", 2, Some(0), TopicKind::Opaque, None, None),
    def(53, "BeginQuorumEpoch", 1, Some(1), TopicKind::Opaque, None, None),
    def(54, "EndQuorumEpoch", 1, Some(1), TopicKind::Opaque, None, None),
    def(55, "DescribeQuorum", 2, Some(0), TopicKind::Opaque, None, Some(DESCRIBE_QUORUM_RESP)),
    def(56, "AlterPartition", 3, Some(0), TopicKind::Opaque, None, None),
    def(57, "UpdateFeatures", 2, Some(0), TopicKind::None, None, Some(UPDATE_FEATURES_RESP)),
    def(58, "Envelope", 0, Some(0), TopicKind::None, None, None),
    def(59, "FetchSnapshot", 1, Some(0), TopicKind::Opaque, None, None),
    def(60, "DescribeCluster", 2, Some(0), TopicKind::None, None, Some(DESCRIBE_CLUSTER_RESP)),
    def(61, "DescribeProducers", 0, Some(0), TopicKind::Extracted, Some(DESCRIBE_PRODUCERS_REQ), Some(DESCRIBE_PRODUCERS_RESP)),
    def(62, "BrokerRegistration", 4, Some(0), TopicKind::None, None, None),
    def(63, "BrokerHeartbeat", 1, Some(0), TopicKind::None, None, None),
    def(64, "UnregisterBroker", 0, Some(0), TopicKind::None, None, Some(UNREGISTER_BROKER_RESP)),
    def(65, "DescribeTransactions", 0, Some(0), TopicKind::None, None, Some(DESCRIBE_TRANSACTIONS_RESP)),
    def(66, "ListTransactions", 2, Some(0), TopicKind::None, None, Some(LIST_TRANSACTIONS_RESP)),
    def(67, "AllocateProducerIds", 0, Some(0), TopicKind::None, None, None),
    def(68, "ConsumerGroupHeartbeat", 1, Some(0), TopicKind::Extracted, Some(CONSUMER_GROUP_HEARTBEAT_REQ), Some(CONSUMER_GROUP_HEARTBEAT_RESP)),
    def(69, "ConsumerGroupDescribe", 1, Some(0), TopicKind::None, None, Some(CONSUMER_GROUP_DESCRIBE_RESP)),
    def(70, "ControllerRegistration", 0, Some(0), TopicKind::None, None, None),
    def(71, "GetTelemetrySubscriptions", 0, Some(0), TopicKind::None, None, Some(GET_TELEMETRY_SUBSCRIPTIONS_RESP)),
    def(72, "PushTelemetry", 0, Some(0), TopicKind::None, None, Some(PUSH_TELEMETRY_RESP)),
    def(73, "AssignReplicasToDirs", 0, Some(0), TopicKind::Opaque, None, None),
    def(74, "ListConfigResources", 1, Some(0), TopicKind::None, None, Some(LIST_CONFIG_RESOURCES_RESP)),
    def(75, "DescribeTopicPartitions", 0, Some(0), TopicKind::Extracted, Some(DESCRIBE_TOPIC_PARTITIONS_REQ), Some(DESCRIBE_TOPIC_PARTITIONS_RESP)),
    def(76, "ShareGroupHeartbeat", 1, Some(0), TopicKind::Extracted, Some(SHARE_GROUP_HEARTBEAT_REQ), Some(SHARE_GROUP_HEARTBEAT_RESP)),
    def(77, "ShareGroupDescribe", 1, Some(0), TopicKind::None, None, None),
    def(78, "ShareFetch", 1, Some(0), TopicKind::Extracted, Some(SHARE_FETCH_REQ), Some(SHARE_FETCH_RESP)),
    def(79, "ShareAcknowledge", 2, Some(0), TopicKind::Extracted, Some(SHARE_ACKNOWLEDGE_REQ), Some(SHARE_ACKNOWLEDGE_RESP)),
    def(80, "AddRaftVoter", 1, Some(0), TopicKind::None, None, Some(ADD_RAFT_VOTER_RESP)),
    def(81, "RemoveRaftVoter", 0, Some(0), TopicKind::None, None, Some(REMOVE_RAFT_VOTER_RESP)),
    def(82, "UpdateRaftVoter", 0, Some(0), TopicKind::None, None, None),
    def(83, "InitializeShareGroupState", 0, Some(0), TopicKind::Opaque, None, None),
    def(84, "ReadShareGroupState", 0, Some(0), TopicKind::Opaque, None, None),
    def(85, "WriteShareGroupState", 1, Some(0), TopicKind::Opaque, None, None),
    def(86, "DeleteShareGroupState", 0, Some(0), TopicKind::Opaque, None, None),
    def(87, "ReadShareGroupStateSummary", 1, Some(0), TopicKind::Opaque, None, None),
    def(88, "StreamsGroupHeartbeat", 0, Some(0), TopicKind::Opaque, None, Some(STREAMS_GROUP_HEARTBEAT_RESP)),
    def(89, "StreamsGroupDescribe", 0, Some(0), TopicKind::None, None, None),
    def(90, "DescribeShareGroupOffsets", 1, Some(0), TopicKind::Extracted, Some(DESCRIBE_SHARE_GROUP_OFFSETS_REQ), Some(DESCRIBE_SHARE_GROUP_OFFSETS_RESP)),
    def(91, "AlterShareGroupOffsets", 0, Some(0), TopicKind::Extracted, Some(ALTER_SHARE_GROUP_OFFSETS_REQ), Some(ALTER_SHARE_GROUP_OFFSETS_RESP)),
    def(92, "DeleteShareGroupOffsets", 0, Some(0), TopicKind::Extracted, Some(DELETE_SHARE_GROUP_OFFSETS_REQ), Some(DELETE_SHARE_GROUP_OFFSETS_RESP)),
];
