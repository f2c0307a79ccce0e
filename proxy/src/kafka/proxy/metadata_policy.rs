//! Metadata under a topic policy (see [`crate::kafka::metadata`] for why): Metadata is
//! authorized per topic, as Kafka's authorizer does it, and answered from the broker's own
//! answer so the client keeps its brokers.
//!
//! - A Metadata request the policy allows is forwarded; every topic the broker's answer lists is
//!   then judged as if the request had named it alone, and those denied are answered with the
//!   denial code and nothing else (an "all topics" answer, or a broker such as tansu that lists
//!   every topic for an empty list, would otherwise show the client topics it may not use).
//! - A denied request that names topics is forwarded without the topics the policy denies
//!   (judged one by one; when each alone would pass, all are taken out: the request as a whole
//!   was denied) and those come back in the answer with the denial code. The flow is a denial.
//! - A denied "all topics" request is forwarded and its answer judged topic by topic.
//!
//! When the request cannot be edited (malformed for its version), the request is answered by
//! strait alone, as any other denial ([`super::KafkaProxy::denial`]).

use std::sync::Mutex;

use bytes::Bytes;

use super::super::api::{ApiInfo, METADATA};
use super::super::metadata::{edit_response_topics, keep_request_topics};
use super::super::request::{Parsed, Request, RequestHeader, TopicEntry, TopicList, Topics};
use super::filters::ConnFilters;
use super::{denied, Connection, InFlight, KafkaProxy, Verdict};

/// How to edit the broker's answer to one Metadata request.
pub(super) struct MetadataEdit {
    /// The request's header and API, to judge each topic of the answer as a request of its own.
    header: RequestHeader,
    api: &'static ApiInfo,
    /// The topics taken out of the request, answered with `code`.
    denied: TopicList,
    code: i16,
}

impl KafkaProxy {
    /// The verdict to act on for `parsed`, and the frame to forward instead of the client's
    /// (see the module docs). Sets `info.metadata` for the writer.
    pub(super) fn metadata_plan(
        &self,
        conn: &Connection<'_>,
        filters: &Mutex<Option<ConnFilters>>,
        parsed: &Parsed,
        frame: &[u8],
        verdict: Verdict,
        info: &mut InFlight,
    ) -> (Verdict, Option<Vec<u8>>) {
        let Parsed::Known(r) = parsed else {
            return (verdict, None);
        };
        let Topics::Listed(list) = &r.topics else {
            return (verdict, None);
        };
        if r.api.key != METADATA || !self.judges_topics {
            return (verdict, None);
        }
        let mut edit = MetadataEdit {
            header: r.header.clone(),
            api: r.api,
            denied: TopicList::default(),
            code: 0,
        };
        let Verdict::Deny { code } = verdict else {
            info.metadata = Some(edit);
            return (verdict, None);
        };
        edit.code = code;
        let why = denied(code, info);
        if list.all {
            info.metadata = Some(edit);
            info.denial = Some(format!("{why}; answered with the topics the policy allows"));
            self.metrics.filter_denied.inc();
            return (Verdict::Forward, None);
        }
        let mut deny: Vec<bool> = list
            .entries
            .iter()
            .map(|e| self.topic_verdict(conn, filters, r, e).is_some())
            .collect();
        if !deny.contains(&true) {
            deny.iter_mut().for_each(|d| *d = true);
        }
        let mut each = deny.iter();
        let kept = keep_request_topics(frame, r.header.api_version, |_| {
            !each.next().copied().unwrap_or(true)
        });
        match kept {
            Ok(kept) => {
                edit.denied.entries = list
                    .entries
                    .iter()
                    .zip(&deny)
                    .filter(|(_, d)| **d)
                    .map(|(e, _)| alone(e))
                    .collect();
                info.metadata = Some(edit);
                info.denial = Some(why);
                self.metrics.filter_denied.inc();
                (Verdict::Forward, Some(kept))
            }
            Err(e) => {
                tracing::debug!(listener = %conn.listener, peer = %conn.peer, error = %e,
                    "cannot take denied topics out of a Metadata request; strait answers it alone");
                (verdict, None)
            }
        }
    }

    /// The broker's Metadata answer with the topics the policy denies answered with the denial
    /// code, and the topics taken out of the request added back with theirs.
    pub(super) fn edit_metadata(
        &self,
        conn: &Connection<'_>,
        filters: &Mutex<Option<ConnFilters>>,
        edit: &MetadataEdit,
        frame: Bytes,
    ) -> Result<Bytes, String> {
        let req = Request {
            header: edit.header.clone(),
            api: edit.api,
            topics: Topics::None,
            expects_response: true,
        };
        // A topic the answer lists without a name (looked up by an id the broker does not
        // know) already carries the broker's error.
        let deny = |e: &TopicEntry| match e.name {
            Some(_) => self.topic_verdict(conn, filters, &req, e),
            None => None,
        };
        let edited = edit_response_topics(
            &frame,
            edit.header.api_version,
            deny,
            &edit.denied,
            edit.code,
        )
        .map_err(|e| format!("cannot apply the topic policy to this Metadata answer: {e}"))?;
        Ok(edited.map_or(frame, Bytes::from))
    }

    /// The policy's verdict on a Metadata request like `req` naming only `entry`: `Some(code)`
    /// denies it.
    fn topic_verdict(
        &self,
        conn: &Connection<'_>,
        filters: &Mutex<Option<ConnFilters>>,
        req: &Request,
        entry: &TopicEntry,
    ) -> Option<i16> {
        let one = Parsed::Known(Request {
            header: req.header.clone(),
            api: req.api,
            topics: Topics::Listed(TopicList {
                entries: vec![alone(entry)],
                ..TopicList::default()
            }),
            expects_response: true,
        });
        if let Verdict::Deny { code } = self.policy.decide(conn, &one) {
            return Some(code);
        }
        let names = &self.filters.as_ref()?.names;
        let mut guard = filters.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_mut()?.judge(&one, names).deny
    }
}

/// `e` as the only topic of a request: its name or id, nothing else.
fn alone(e: &TopicEntry) -> TopicEntry {
    TopicEntry {
        name: e.name.clone(),
        id: e.id,
        partitions: Vec::new(),
        parent: None,
    }
}
