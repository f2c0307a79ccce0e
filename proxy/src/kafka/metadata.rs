//! Metadata under a topic policy.
//!
//! - [`topic_ids`]: Fetch v13+, Produce v13+, OffsetCommit/OffsetFetch v10+, DeleteTopics v6+
//!   and the share-group APIs name topics by id. A policy written in topic names needs the
//!   id → name map, which the proxy learns by reading the Metadata responses (v10+) that pass
//!   through it: every client asks for Metadata before it produces or fetches, so the ids a
//!   client uses have gone by first.
//! - [`keep_request_topics`] and [`edit_response_topics`]: Metadata is authorized per topic, as
//!   Kafka's own authorizer does it. A denied topic is taken out of the request before it
//!   reaches the broker (so it is neither described nor auto-created) and answered with
//!   `TOPIC_AUTHORIZATION_FAILED` inside the broker's own answer, which keeps the broker list,
//!   cluster id and controller: clients (librdkafka ≥ 2.10) forget every broker a Metadata
//!   answer leaves out, so an answer made up without them would cut the client off. Topics the
//!   broker lists that the request did not name (an "all topics" request, or a broker that
//!   answers an empty list with every topic) are judged one by one the same way.
//!
//! Every function takes a frame payload (header and body, without the 4-byte size) and edits only
//! the topic array: every other byte, tagged fields included, is copied as the broker or client
//! sent it.

use super::api::{self, ApiInfo, METADATA};
use std::ops::Range;

use super::extract::{self, TopicArrayAt, Walked};
use super::request::{TopicEntry, TopicList};
use super::response::topic_error_entries;
use super::schema::Field;
use super::wire::{ParseError, TopicId, Writer};

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
    #[error("malformed Kafka Metadata v{version} {what}: {source}")]
    Malformed {
        version: i16,
        what: &'static str,
        source: ParseError,
    },
    #[error("a Kafka Metadata v{0} {1} without a topic array")]
    NoTopics(i16, &'static str),
}

/// The Metadata layout of `version` and whether it is flexible.
fn layout(
    version: i16,
    request: bool,
) -> Result<(&'static ApiInfo, &'static [Field]), MetadataError> {
    let info = api::api(METADATA).filter(|a| a.supports(version));
    let fields = info.and_then(|a| if request { a.request } else { a.response });
    match (info, fields) {
        (Some(info), Some(fields)) => Ok((info, fields)),
        _ => Err(MetadataError::UnknownVersion(version)),
    }
}

/// Where the body starts, and the walked body, of a Metadata request or response frame.
fn walk(
    frame: &[u8],
    version: i16,
    request: bool,
) -> Result<(&'static ApiInfo, usize, Walked), MetadataError> {
    let (info, fields) = layout(version, request)?;
    let what = if request { "request" } else { "response" };
    let malformed = |source| MetadataError::Malformed {
        version,
        what,
        source,
    };
    let (start, walked) =
        extract::walk_frame(frame, info, fields, version, request).map_err(malformed)?;
    Ok((info, start, walked))
}

/// Rebuilds `frame` (body at `start`) with the elements of its topic array `arr` replaced by
/// `elements` (`n` of them, already encoded).
fn splice_topics(
    frame: &[u8],
    start: usize,
    arr: &TopicArrayAt,
    flexible: bool,
    (n, elements): (usize, &[u8]),
) -> Vec<u8> {
    let mut w = Writer::default();
    w.buf.reserve(frame.len() + elements.len());
    w.buf.extend_from_slice(&frame[..start + arr.count.start]);
    w.length(flexible, true, Some(n));
    w.buf.extend_from_slice(elements);
    w.buf.extend_from_slice(&frame[start + arr.end..]);
    w.buf
}

/// The bytes of `span` (relative to the body at `start`).
fn at<'a>(frame: &'a [u8], start: usize, span: &Range<usize>) -> &'a [u8] {
    &frame[start + span.start..start + span.end]
}

/// A Metadata request frame of `version` naming only the topics whose entry `keep` accepts
/// (none: a "brokers only" request). A request with a null topic list ("all topics") is an
/// error: there is nothing to take out.
pub fn keep_request_topics(
    frame: &[u8],
    version: i16,
    mut keep: impl FnMut(&TopicEntry) -> bool,
) -> Result<Vec<u8>, MetadataError> {
    let (info, start, walked) = walk(frame, version, true)?;
    let Some(arr) = walked.topic_arrays.first() else {
        return Err(MetadataError::NoTopics(version, "request"));
    };
    let mut kept = Vec::new();
    let mut n = 0;
    for (entry, span) in walked.topics.entries.iter().zip(&walked.entry_spans) {
        if keep(entry) {
            kept.extend_from_slice(at(frame, start, span));
            n += 1;
        }
    }
    let flexible = info.is_flexible(version);
    Ok(splice_topics(frame, start, arr, flexible, (n, &kept)))
}

/// A Metadata response frame of `version` with every topic `deny` gives an error code replaced
/// by an entry with only that code and the topic's name (no id, no partitions: nothing about
/// the topic leaks), and `extra` appended with error `extra_code` (topics taken out of the
/// request, echoed by name or id as the request named them; a broker that lists one of them
/// anyway has that entry dropped). `Ok(None)` when nothing changes.
pub fn edit_response_topics(
    frame: &[u8],
    version: i16,
    mut deny: impl FnMut(&TopicEntry) -> Option<i16>,
    extra: &TopicList,
    extra_code: i16,
) -> Result<Option<Vec<u8>>, MetadataError> {
    let (info, start, walked) = walk(frame, version, false)?;
    let Some(arr) = walked.topic_arrays.first() else {
        return Err(MetadataError::NoTopics(version, "response"));
    };
    // A topic `extra` names is answered there, not twice.
    let in_extra = |e: &TopicEntry| {
        extra
            .entries
            .iter()
            .any(|x| (x.name.is_some() && x.name == e.name) || (x.id.is_some() && x.id == e.id))
    };
    let mut elements = Vec::new();
    let mut n = extra.entries.len();
    let mut changed = n > 0;
    for i in arr.entries.clone() {
        let (entry, span) = (&walked.topics.entries[i], &walked.entry_spans[i]);
        if in_extra(entry) {
            continue;
        }
        n += 1;
        match deny(entry) {
            Some(code) => {
                changed = true;
                let hidden = TopicList {
                    entries: vec![TopicEntry {
                        name: entry.name.clone(),
                        id: None,
                        partitions: Vec::new(),
                        parent: None,
                    }],
                    ..TopicList::default()
                };
                let entry = topic_error_entries(info, version, &hidden, code)
                    .ok_or(MetadataError::NoTopics(version, "response"))?;
                elements.extend(entry);
            }
            None => elements.extend_from_slice(at(frame, start, span)),
        }
    }
    if !changed {
        return Ok(None);
    }
    if let Some(e) = topic_error_entries(info, version, extra, extra_code) {
        elements.extend(e);
    }
    let flexible = info.is_flexible(version);
    Ok(Some(splice_topics(
        frame,
        start,
        arr,
        flexible,
        (n, &elements),
    )))
}

/// The (id, name) pairs of a Metadata response frame payload (header and body, without the
/// 4-byte size) of `version`, the version of the request it answers. Before v10 responses carry
/// no ids and the list is empty; topics without a name (v12+, asked for by an unknown id) or with
/// the zero id are left out.
pub fn topic_ids(frame: &[u8], version: i16) -> Result<Vec<TopicIdName>, MetadataError> {
    layout(version, false)?;
    if version < 10 {
        return Ok(Vec::new());
    }
    let (_, _, walked) = walk(frame, version, false)?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::request::{parse_request, Parsed, Request, Topics};
    use super::super::response::{error_response, TOPIC_AUTHORIZATION_FAILED};
    use super::*;

    /// A Metadata request of `version` for `topics` (by name), with auto-creation on.
    fn request(version: i16, topics: &[&str]) -> Vec<u8> {
        let flexible = version >= 9;
        let mut w = Writer::default();
        w.i16(METADATA);
        w.i16(version);
        w.i32(7);
        w.string(false, Some("client"));
        if flexible {
            w.empty_tagged_fields();
        }
        w.length(flexible, true, Some(topics.len()));
        for t in topics {
            if version >= 10 {
                w.buf.extend_from_slice(&[0; 16]);
            }
            w.string(flexible, Some(t));
            if flexible {
                w.empty_tagged_fields();
            }
        }
        if version >= 4 {
            w.i8(1);
        }
        if (8..=10).contains(&version) {
            w.i8(0);
        }
        if version >= 8 {
            w.i8(1);
        }
        if flexible {
            w.empty_tagged_fields();
        }
        w.buf
    }

    fn parsed(frame: &[u8]) -> Request {
        match parse_request(frame).unwrap() {
            Parsed::Known(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn listed(r: &Request) -> &TopicList {
        match &r.topics {
            Topics::Listed(l) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requests_keep_only_the_allowed_topics_and_every_other_field() {
        for version in 0..=13 {
            let frame = request(version, &["orders", "secret", "audit"]);
            let out = keep_request_topics(&frame, version, |e| e.name.as_deref() != Some("secret"))
                .unwrap();
            assert_eq!(out, request(version, &["orders", "audit"]), "v{version}");
            let r = parsed(&out);
            let names: Vec<&str> = listed(&r).names().collect();
            assert_eq!(names, ["orders", "audit"], "v{version}");
            // None kept: a "brokers only" request (in v0, where that reads as every topic,
            // the answer's topics are replaced anyway).
            let none = keep_request_topics(&frame, version, |_| false).unwrap();
            assert_eq!(none, request(version, &[]), "v{version}");
        }
        // Nothing to take out of an "all topics" request.
        let mut all = request(1, &[]);
        let n = all.len();
        all[n - 4..].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(
            keep_request_topics(&all, 1, |_| true),
            Err(MetadataError::NoTopics(1, "request"))
        ));
        assert!(keep_request_topics(&request(12, &["a"])[..20], 12, |_| true).is_err());
        assert!(matches!(
            keep_request_topics(&request(1, &["a"]), 99, |_| true),
            Err(MetadataError::UnknownVersion(99))
        ));
    }

    /// A Metadata answer of `version` listing `topics`, each with error `code` (built by the
    /// error encoder: brokers empty, defaults elsewhere).
    fn answer(version: i16, topics: &[&str], code: i16) -> Vec<u8> {
        let r = parsed(&request(version, topics));
        error_response(&r, code, None).unwrap().unwrap()
    }

    #[test]
    fn answers_hide_denied_topics_and_add_the_ones_taken_out() {
        const UNKNOWN: i16 = 3;
        for version in 0..=13 {
            let broker = answer(version, &["orders", "secret"], UNKNOWN);
            // Unchanged when the policy denies nothing and nothing was taken out.
            let none = edit_response_topics(&broker, version, |_| None, &TopicList::default(), 0);
            assert_eq!(none.unwrap(), None, "v{version}");
            // Every listed topic denied, one more added back: as if all three had code 29.
            let extra = listed(&parsed(&request(version, &["audit"]))).clone();
            let out = edit_response_topics(
                &broker,
                version,
                |_| Some(TOPIC_AUTHORIZATION_FAILED),
                &extra,
                TOPIC_AUTHORIZATION_FAILED,
            )
            .unwrap()
            .unwrap();
            let want = answer(
                version,
                &["orders", "secret", "audit"],
                TOPIC_AUTHORIZATION_FAILED,
            );
            assert_eq!(out, want, "v{version}");
            // A topic added back that the broker listed too appears once, where it is added.
            let extra = listed(&parsed(&request(version, &["orders"]))).clone();
            let edit = |broker: &[u8]| {
                edit_response_topics(broker, version, |_| None, &extra, 29)
                    .unwrap()
                    .unwrap()
            };
            let secret_only = answer(version, &["secret"], UNKNOWN);
            assert_eq!(edit(&broker), edit(&secret_only), "v{version}");
        }
    }

    #[test]
    fn broken_answers_are_errors_not_panics() {
        let good = answer(12, &["orders", "secret"], 3);
        for cut in 0..good.len() {
            let r = edit_response_topics(&good[..cut], 12, |_| Some(29), &TopicList::default(), 0);
            assert!(r.is_err(), "cut at {cut}");
        }
        for i in 0..good.len() * 8 {
            let mut f = good.clone();
            f[i / 8] ^= 1 << (i % 8);
            let _ = edit_response_topics(&f, 12, |_| Some(29), &TopicList::default(), 0);
            let _ = topic_ids(&f, 12);
        }
    }
}
