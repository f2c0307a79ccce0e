//! The API table: every Kafka API key with the versions strait knows, which of them are flexible,
//! and whether (and how) its requests name topics. The rows are in [`super::messages`].

use super::schema::Field;

pub(crate) const PRODUCE: i16 = 0;
pub(crate) const METADATA: i16 = 3;
pub(crate) const CONTROLLED_SHUTDOWN: i16 = 7;
pub(crate) const API_VERSIONS: i16 = 18;

/// Whether and how the requests of an API name topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// No topics in the request.
    None,
    /// Topics are extracted from the request body at every version in the table.
    Extracted,
    /// The request names topics in a layout strait does not read.
    Opaque,
}

/// One API key.
#[derive(Debug)]
pub struct ApiInfo {
    pub key: i16,
    /// The name as in Kafka's message definitions, without `Request` (e.g. `OffsetCommit`).
    pub name: &'static str,
    /// The highest version strait knows; every version from 0 to this one is in the table, even
    /// those Apache Kafka 4.0 stopped accepting (clients still send them to older brokers).
    pub max_version: i16,
    /// The first flexible version (compact strings and arrays, tagged fields), if any.
    pub flexible_from: Option<i16>,
    pub topics: TopicKind,
    /// Request body layout: only for [`TopicKind::Extracted`] APIs.
    pub(crate) request: Option<&'static [Field]>,
    /// Response body layout: for the APIs clients send (error responses, Metadata topic ids).
    pub(crate) response: Option<&'static [Field]>,
}

impl ApiInfo {
    /// Whether `version` is in the table.
    pub fn supports(&self, version: i16) -> bool {
        (0..=self.max_version).contains(&version)
    }

    pub fn is_flexible(&self, version: i16) -> bool {
        self.flexible_from.is_some_and(|f| version >= f)
    }

    /// Request header version: 2 for flexible versions, 1 otherwise, 0 for ControlledShutdown
    /// v0 (the only request without a client id).
    pub fn request_header_version(&self, version: i16) -> i16 {
        if self.key == CONTROLLED_SHUTDOWN && version == 0 {
            0
        } else if self.is_flexible(version) {
            2
        } else {
            1
        }
    }

    /// Response header version: 1 (with tagged fields) for flexible versions, 0 otherwise, and
    /// always 0 for ApiVersions, so that a client can read the answer whatever version it sent.
    pub fn response_header_version(&self, version: i16) -> i16 {
        if self.key != API_VERSIONS && self.is_flexible(version) {
            1
        } else {
            0
        }
    }

    /// Whether strait can build an error response for this API at all (see
    /// [`super::response::error_response`] for the versions and shapes).
    pub fn has_response_layout(&self) -> bool {
        self.response.is_some()
    }
}

pub(crate) const fn def(
    key: i16,
    name: &'static str,
    max_version: i16,
    flexible_from: Option<i16>,
    topics: TopicKind,
    request: Option<&'static [Field]>,
    response: Option<&'static [Field]>,
) -> ApiInfo {
    ApiInfo {
        key,
        name,
        max_version,
        flexible_from,
        topics,
        request,
        response,
    }
}

/// Every API in the table, by key.
pub fn apis() -> &'static [ApiInfo] {
    super::messages::APIS
}

/// The API with this key, if the table has it.
pub fn api(key: i16) -> Option<&'static ApiInfo> {
    let apis = apis();
    // Keys are dense from 0, so the key is the index; the search is the fallback.
    usize::try_from(key)
        .ok()
        .and_then(|i| apis.get(i))
        .filter(|a| a.key == key)
        .or_else(|| apis.iter().find(|a| a.key == key))
}
