//! Kafka requests (strait's `protocol: kafka` listeners): what [`Filter::on_kafka_request`]
//! sees and decides, and the Kafka error codes a filter typically denies with.
//!
//! strait extends the proxy-wasm ABI with one export, `strait_on_kafka_request(context_id)`,
//! called once per Kafka request on the connection's stream context (see `docs/proxy-wasm.md`,
//! "Kafka extension"). The request's header and the topics it names are host properties
//! (`kafka.api_key`, `kafka.topic_scope`, `kafka.topics`, …); a deny is a local response whose
//! status code is the Kafka error code. [`export_filter!`](crate::export_filter) exports the
//! callback and [`KafkaRequest`] reads the properties, so a filter only implements
//! [`Filter::on_kafka_request`].
//!
//! ```
//! use strait_sdk::prelude::*;
//!
//! struct NoProduce;
//!
//! impl Filter for NoProduce {
//!     fn configure(_: &[u8]) -> Result<Self, ConfigError> {
//!         Ok(NoProduce)
//!     }
//!     fn on_request(&self, _: &mut Request<'_>) -> Decision {
//!         Decision::deny(500)
//!     }
//!     fn on_kafka_request(&self, req: &mut KafkaRequest<'_>) -> KafkaDecision {
//!         if req.api_key() == 0 {
//!             return KafkaDecision::deny_with_code(
//!                 kafka::TOPIC_AUTHORIZATION_FAILED,
//!                 format!("no Produce for client {:?}", req.client_id()),
//!             );
//!         }
//!         KafkaDecision::Allow
//!     }
//! }
//!
//! use strait_sdk::testing::{Harness, TestKafkaRequest};
//! let mut h = Harness::<NoProduce>::new("").unwrap();
//! assert!(h.kafka(TestKafkaRequest::fetch(&["orders"])).allowed());
//! let out = h.kafka(TestKafkaRequest::produce(&["orders"]).client_id("app"));
//! assert_eq!(out.code(), Some(29));
//! assert_eq!(out.reason(), Some("no Produce for client Some(\"app\")"));
//! ```
//!
//! [`Filter::on_kafka_request`]: crate::Filter::on_kafka_request

use std::cell::OnceCell;
use std::marker::PhantomData;

use crate::http::host_failure;

/// The error code `0`: strait picks one, [`TOPIC_AUTHORIZATION_FAILED`] when the request names
/// topics, [`CLUSTER_AUTHORIZATION_FAILED`] otherwise.
pub const STRAIT_CHOOSES: i16 = 0;
/// `TOPIC_AUTHORIZATION_FAILED` (29): not authorized to access the topics.
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
/// `GROUP_AUTHORIZATION_FAILED` (30): not authorized to access the group.
pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
/// `CLUSTER_AUTHORIZATION_FAILED` (31): not authorized for this cluster operation.
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
/// `POLICY_VIOLATION` (44): the request parameters do not satisfy the configured policy.
pub const POLICY_VIOLATION: i16 = 44;
/// `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` (53): not authorized to use the transactional id.
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;

/// Which topics a Kafka request reaches (properties `kafka.topic_scope` and `kafka.topics`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KafkaTopics {
    /// The API names no topic (ApiVersions, FindCoordinator, JoinGroup, Heartbeat, …).
    None,
    /// Exactly these topics, each once, in request order (topic ids already mapped to names).
    /// May be empty: the request could name topics but this one lists none.
    Listed(Vec<String>),
    /// Every topic (Metadata with a null topic list, OffsetFetch of all topics, …).
    All,
    /// strait cannot name the topics: an unknown API or version, a layout strait does not
    /// read, topic ids no Metadata response has named yet, topic regexes. Also what the SDK
    /// reports when the host's answer makes no sense, so treat it as "possibly any topic".
    Unknown,
}

impl KafkaTopics {
    /// The listed topics; `None` for every scope but [`KafkaTopics::Listed`].
    pub fn listed(&self) -> Option<&[String]> {
        match self {
            KafkaTopics::Listed(t) => Some(t),
            _ => None,
        }
    }

    /// The scope as strait names it: `none`, `listed`, `all` or `unknown`.
    pub fn scope(&self) -> &'static str {
        match self {
            KafkaTopics::None => "none",
            KafkaTopics::Listed(_) => "listed",
            KafkaTopics::All => "all",
            KafkaTopics::Unknown => "unknown",
        }
    }

    /// Whether the request names no topic at all: scope `none`, or `listed` with zero topics.
    pub fn is_empty(&self) -> bool {
        match self {
            KafkaTopics::None => true,
            KafkaTopics::Listed(t) => t.is_empty(),
            KafkaTopics::All | KafkaTopics::Unknown => false,
        }
    }
}

/// What to do with a Kafka request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KafkaDecision {
    /// Forward it to the broker.
    Allow,
    /// Answer it with an error response of the request's API and version instead (the later
    /// filters are not called, the broker never sees it).
    Deny {
        /// The Kafka error code, 1..=32767 (see the constants of [`kafka`](crate::kafka)), or
        /// [`STRAIT_CHOOSES`] (0). strait refuses negative codes, and the SDK then panics (the
        /// module traps) rather than let the request through.
        code: i16,
        /// Why: strait records it in the request's flow record and logs it (first line only,
        /// at most 256 bytes). Clients do not see it.
        reason: String,
    },
}

impl KafkaDecision {
    /// [`KafkaDecision::Deny`] with code 0: strait answers `TOPIC_AUTHORIZATION_FAILED` when the
    /// request names topics, `CLUSTER_AUTHORIZATION_FAILED` otherwise.
    pub fn deny(reason: impl Into<String>) -> KafkaDecision {
        KafkaDecision::deny_with_code(STRAIT_CHOOSES, reason)
    }

    /// [`KafkaDecision::Deny`] with this error code, e.g. [`GROUP_AUTHORIZATION_FAILED`].
    pub fn deny_with_code(code: i16, reason: impl Into<String>) -> KafkaDecision {
        KafkaDecision::Deny {
            code,
            reason: reason.into(),
        }
    }

    /// Whether this is [`KafkaDecision::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, KafkaDecision::Allow)
    }
}

const API_KEY: &[&str] = &["kafka", "api_key"];
const API_VERSION: &[&str] = &["kafka", "api_version"];
const CORRELATION_ID: &[&str] = &["kafka", "correlation_id"];
const API_NAME: &[&str] = &["kafka", "api_name"];
const CLIENT_ID: &[&str] = &["kafka", "client_id"];
const TOPIC_SCOPE: &[&str] = &["kafka", "topic_scope"];
const TOPICS: &[&str] = &["kafka", "topics"];

/// The Kafka request a filter is deciding about, valid during [`Filter::on_kafka_request`]
/// only.
///
/// Each accessor asks the host once, on first use, and keeps the answer (the request does not
/// change during the callback), so a filter pays only for what it reads. The request's body
/// (records, offsets) is not available; strait hands over the header fields and the topics.
///
/// [`Filter::on_kafka_request`]: crate::Filter::on_kafka_request
#[derive(Debug)]
pub struct KafkaRequest<'a> {
    context_id: u32,
    api_key: OnceCell<i16>,
    api_version: OnceCell<i16>,
    correlation_id: OnceCell<i32>,
    api_name: OnceCell<String>,
    client_id: OnceCell<Option<String>>,
    topics: OnceCell<KafkaTopics>,
    _callback: PhantomData<&'a mut ()>,
}

impl KafkaRequest<'_> {
    pub(crate) fn new(context_id: u32) -> Self {
        KafkaRequest {
            context_id,
            api_key: OnceCell::new(),
            api_version: OnceCell::new(),
            correlation_id: OnceCell::new(),
            api_name: OnceCell::new(),
            client_id: OnceCell::new(),
            topics: OnceCell::new(),
            _callback: PhantomData,
        }
    }

    /// The request's API key (`kafka.api_key`), e.g. 0 for Produce, 1 for Fetch, 3 for
    /// Metadata; -1 if the host gave none.
    pub fn api_key(&self) -> i16 {
        *self.api_key.get_or_init(|| int_property(API_KEY))
    }

    /// The request's API version (`kafka.api_version`); -1 if the host gave none.
    pub fn api_version(&self) -> i16 {
        *self.api_version.get_or_init(|| int_property(API_VERSION))
    }

    /// The request's correlation id (`kafka.correlation_id`); -1 if the host gave none.
    pub fn correlation_id(&self) -> i32 {
        *self
            .correlation_id
            .get_or_init(|| int_property(CORRELATION_ID))
    }

    /// The API's name (`kafka.api_name`), e.g. `Produce`; `unknown` for an API key strait does
    /// not know (and if the host gave none).
    pub fn api_name(&self) -> &str {
        self.api_name
            .get_or_init(|| crate::property_string(API_NAME).unwrap_or_else(|| "unknown".into()))
    }

    /// The client id of the request header (`kafka.client_id`), `None` when it is null.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id
            .get_or_init(|| crate::property_string(CLIENT_ID))
            .as_deref()
    }

    /// The topics the request reaches (`kafka.topic_scope`, `kafka.topics`). A scope the SDK
    /// does not know, or `listed` without a topic list, is [`KafkaTopics::Unknown`].
    pub fn topics(&self) -> &KafkaTopics {
        self.topics.get_or_init(read_topics)
    }

    crate::http::context_methods!();

    /// The port the client connected to (`destination.port`).
    pub fn destination_port(&self) -> Option<u16> {
        self.property_i64(&["destination", "port"])
            .and_then(|p| u16::try_from(p).ok())
    }
}

/// An integer property narrowed to `T`; -1 when absent or out of range.
fn int_property<T: TryFrom<i64> + From<i8>>(path: &[&str]) -> T {
    crate::property_i64(path)
        .and_then(|v| T::try_from(v).ok())
        .unwrap_or_else(|| T::from(-1))
}

fn read_topics() -> KafkaTopics {
    let Some(scope) = crate::property(TOPIC_SCOPE) else {
        return KafkaTopics::Unknown;
    };
    match scope.as_slice() {
        b"none" => KafkaTopics::None,
        b"all" => KafkaTopics::All,
        b"listed" => match crate::property(TOPICS) {
            Some(raw) if raw.is_empty() => KafkaTopics::Listed(Vec::new()),
            Some(raw) => KafkaTopics::Listed(
                raw.split(|&b| b == b'\n')
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .collect(),
            ),
            // `listed` without the list: the host contradicts itself; assume the worst.
            None => KafkaTopics::Unknown,
        },
        _ => KafkaTopics::Unknown,
    }
}
