//! Topic ids learned from Metadata responses.
//!
//! Fetch v13+, Produce v13+, OffsetCommit/OffsetFetch v10+, DeleteTopics v6+ and the share-group
//! APIs name topics by id. A policy written in topic names needs the id → name map, which the
//! proxy learns by reading the Metadata responses (v10+) that pass through it: every client asks
//! for Metadata before it produces or fetches, so the ids a client uses have gone by first.

use super::api::{self, METADATA};
use super::extract;
use super::wire::{ParseError, Reader, TopicId};

/// One topic of a Metadata response that has both a name and a (non-zero) id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicIdName {
    pub id: TopicId,
    pub name: String,
}

/// Why a Metadata response could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("Metadata v{0} is not a version strait knows")]
    UnknownVersion(i16),
    #[error("malformed Kafka Metadata v{version} response: {source}")]
    Malformed { version: i16, source: ParseError },
}

/// The (id, name) pairs of a Metadata response frame payload (header and body, without the
/// 4-byte size) of `version`, the version of the request it answers. Before v10 responses carry
/// no ids and the list is empty; topics without a name (v12+, asked for by an unknown id) or with
/// the zero id are left out.
pub fn topic_ids(frame: &[u8], version: i16) -> Result<Vec<TopicIdName>, MetadataError> {
    let info = api::api(METADATA).filter(|a| a.supports(version));
    let Some((info, fields)) = info.and_then(|a| a.response.map(|f| (a, f))) else {
        return Err(MetadataError::UnknownVersion(version));
    };
    let malformed = |source| MetadataError::Malformed { version, source };
    let mut r = Reader::new(frame);
    r.i32("correlation_id").map_err(malformed)?;
    if info.response_header_version(version) >= 1 {
        r.skip_tagged_fields().map_err(malformed)?;
    }
    if version < 10 {
        return Ok(Vec::new());
    }
    let body = &frame[r.position()..];
    let walked =
        extract::walk(body, fields, version, info.is_flexible(version)).map_err(malformed)?;
    Ok(walked
        .topics
        .entries
        .into_iter()
        .filter_map(|e| match (e.id, e.name) {
            (Some(id), Some(name)) => Some(TopicIdName { id, name }),
            _ => None,
        })
        .collect())
}
