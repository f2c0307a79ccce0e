//! Request headers and the topics a request names.
//!
//! [`parse_request`] takes one frame payload (what [`super::codec::KafkaCodec`] yields: the bytes
//! after the 4-byte size) and returns one of three things:
//!
//! - [`Parsed::Known`]: an API and version in the table ([`super::api`]); the header is parsed
//!   in its version (v0 for ControlledShutdown v0, v2 for flexible versions, v1 otherwise) and,
//!   for topic-bearing APIs, the body is walked for the topics it names ([`Topics`]).
//! - [`Parsed::UnknownApi`]: an API key not in the table.
//! - [`Parsed::UnknownVersion`]: a known API at a version above the table's maximum (or below 0).
//!
//! For the last two only the header fields common to every header version after v0 are read
//! (key, version, correlation id, client id), and the body is not looked at: the policy layer
//! decides (forward when the policy does not need the topic, otherwise refuse). A malformed frame
//! is a [`RequestError`], never a panic.

use super::api::{self, ApiInfo, TopicKind};
use super::extract;
use super::wire::{ParseError, Reader, TopicId};

/// The request header (v0–v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    /// v1+; null or absent (v0) is `None`. Always a classic int16-length string, even in v2.
    pub client_id: Option<String>,
}

/// One topic a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicEntry {
    /// The topic name, when the request names it.
    pub name: Option<String>,
    /// The topic id, when the request names it by id (Fetch v13+, Produce v13+, OffsetCommit
    /// v10+, OffsetFetch v10+, Metadata v10+, DeleteTopics v6+, share APIs, …). Map it to a name
    /// with the ids learned from Metadata responses ([`super::metadata`]). An entry with neither
    /// a name nor an id is a malformed request (a null name and the zero id); treat it as a topic
    /// the policy cannot name.
    pub id: Option<TopicId>,
    /// The partitions of this topic the request names, when it names any.
    pub partitions: Vec<i32>,
    /// The group / transaction / marker element this entry belongs to (for echoing the request's
    /// structure in error responses).
    pub(crate) parent: Option<usize>,
}

/// The topics a request of a topic-bearing API names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicList {
    /// Topic entries in request order; a topic may appear more than once (e.g. under two log
    /// dirs of AlterReplicaLogDirs, or as a DescribeTopicPartitions cursor).
    pub entries: Vec<TopicEntry>,
    /// The request reaches every topic, not just those listed: a null topic list in Metadata
    /// (v1+; an empty list in v0), OffsetFetch (v2+, per group in v8+), DescribeLogDirs,
    /// ElectLeaders, ListPartitionReassignments and DescribeShareGroupOffsets.
    pub all: bool,
    /// Topic regexes (ConsumerGroupHeartbeat v1+ `SubscribedTopicRegex`, RE2/J syntax).
    pub patterns: Vec<String>,
    pub(crate) parents: Vec<Parent>,
}

impl TopicList {
    /// The topic names, in request order (entries named only by id are left out).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|e| e.name.as_deref())
    }

    /// The topic ids of entries named by id.
    pub fn ids(&self) -> impl Iterator<Item = TopicId> + '_ {
        self.entries.iter().filter_map(|e| e.id)
    }
}

/// A group, transaction or txn-marker element of a request that holds topics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Parent {
    pub key: ParentKey,
    /// Its topic list was null: every topic (OffsetFetch v8+ groups).
    pub all: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum ParentKey {
    /// The element has no key strait echoes (AlterReplicaLogDirs log dirs).
    #[default]
    None,
    /// `GroupId`, `TransactionalId`.
    Str(Option<String>),
    /// `ProducerId` (WriteTxnMarkers).
    Int(i64),
}

/// What a request says about topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topics {
    /// The API names no topic (ApiVersions, SASL, group membership, ACLs, quotas, …). JoinGroup
    /// and SyncGroup carry topic subscriptions inside opaque protocol metadata; like Kafka's own
    /// authorizer, strait does not treat them as topic accesses.
    None,
    /// The API names topics in a layout strait does not read (inter-broker and KRaft APIs,
    /// StreamsGroupHeartbeat): a policy that needs topic names must refuse it.
    Opaque,
    /// The topics the request names.
    Listed(TopicList),
}

/// A request of a known API and version.
#[derive(Debug, Clone)]
pub struct Request {
    pub header: RequestHeader,
    pub api: &'static ApiInfo,
    pub topics: Topics,
    /// False for Produce with `acks=0`: the broker sends no response, and neither may strait.
    pub expects_response: bool,
}

/// The result of [`parse_request`].
#[derive(Debug, Clone)]
pub enum Parsed {
    Known(Request),
    /// An API key strait's table does not have.
    UnknownApi(RequestHeader),
    /// A known API at a version above the table's maximum (or negative).
    UnknownVersion {
        header: RequestHeader,
        api: &'static ApiInfo,
    },
}

impl Parsed {
    pub fn header(&self) -> &RequestHeader {
        match self {
            Parsed::Known(r) => &r.header,
            Parsed::UnknownApi(h) | Parsed::UnknownVersion { header: h, .. } => h,
        }
    }
}

/// Why a request frame could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("malformed Kafka request header: {0}")]
    Header(ParseError),
    #[error(
        "malformed Kafka {api} v{version} request (correlation id {correlation_id}): {source}"
    )]
    Body {
        api: &'static str,
        version: i16,
        correlation_id: i32,
        source: ParseError,
    },
}

/// Parses a request frame payload (without the 4-byte size).
pub fn parse_request(frame: &[u8]) -> Result<Parsed, RequestError> {
    let mut r = Reader::new(frame);
    let api_key = r.i16("request_api_key").map_err(RequestError::Header)?;
    let api_version = r.i16("request_api_version").map_err(RequestError::Header)?;
    let correlation_id = r.i32("correlation_id").map_err(RequestError::Header)?;
    let api = api::api(api_key);
    let known = api.filter(|a| a.supports(api_version));
    let header_version = match known {
        Some(a) => a.request_header_version(api_version),
        // Unknown: read what headers v1 and v2 share (the client id), never the tagged fields.
        None => 1,
    };
    let client_id = if header_version >= 1 {
        r.string(false, "client_id")
            .map_err(RequestError::Header)?
            .map(str::to_owned)
    } else {
        None
    };
    let header = RequestHeader {
        api_key,
        api_version,
        correlation_id,
        client_id,
    };
    let Some(api) = api else {
        return Ok(Parsed::UnknownApi(header));
    };
    if known.is_none() {
        return Ok(Parsed::UnknownVersion { header, api });
    }
    if header_version >= 2 {
        r.skip_tagged_fields().map_err(RequestError::Header)?;
    }
    let body_error = |source| RequestError::Body {
        api: api.name,
        version: api_version,
        correlation_id,
        source,
    };
    let body = &frame[r.position()..];
    let (topics, acks) = match (api.topics, api.request) {
        (TopicKind::None, _) => (Topics::None, None),
        (TopicKind::Opaque, _) | (TopicKind::Extracted, None) => (Topics::Opaque, None),
        (TopicKind::Extracted, Some(fields)) => {
            let flexible = api.is_flexible(api_version);
            let mut walked =
                extract::walk(body, fields, api_version, flexible).map_err(body_error)?;
            if api.key == api::METADATA && api_version == 0 && walked.topics.entries.is_empty() {
                // Metadata v0 has no null list: empty means every topic.
                walked.topics.all = true;
            }
            (Topics::Listed(walked.topics), walked.acks)
        }
    };
    Ok(Parsed::Known(Request {
        header,
        api,
        topics,
        expects_response: !(api.key == api::PRODUCE && acks == Some(0)),
    }))
}
