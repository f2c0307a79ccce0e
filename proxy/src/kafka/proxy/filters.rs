//! Kafka requests through a listener's WASM filters (`strait_on_kafka_request`, the Kafka
//! extension of the ABI in `docs/proxy-wasm.md`), and the topic id → name map that lets
//! filters see topic names for requests that carry only ids.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::super::metadata;
use super::super::request::{Parsed, Topics};
use super::super::response::denial_code;
use super::super::wire::TopicId;
use crate::wasm::{ChainHandle, KafkaRequestInfo, KafkaTopics, Outcome, StreamFilters, StreamInfo};

/// Topic ids learned from the Metadata responses that pass through a listener (ids are
/// cluster-wide: a client may learn an id on its bootstrap connection and use it on another).
#[derive(Debug, Default)]
pub struct TopicNames {
    names: Mutex<HashMap<TopicId, String>>,
}

/// Past this many ids the map starts over (a cluster with more topics than this re-learns them
/// from the next Metadata responses; a request naming a forgotten id is judged as one whose
/// topics strait cannot name).
const MAX_TOPIC_IDS: usize = 100_000;

impl TopicNames {
    /// Records the (id, name) pairs of a Metadata response of `version`.
    pub fn learn(&self, frame: &[u8], version: i16) {
        if version < 10 {
            return;
        }
        match metadata::topic_ids(frame, version) {
            Ok(pairs) if !pairs.is_empty() => {
                let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
                if names.len() + pairs.len() > MAX_TOPIC_IDS {
                    names.clear();
                }
                for p in pairs {
                    names.insert(p.id, p.name);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot read topic ids from a Metadata response"),
        }
    }

    fn name(&self, id: TopicId) -> Option<String> {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }
}

/// What a filter chain made of one request.
pub struct Judged {
    /// `None`: forward. `Some(code)`: deny with this Kafka error code.
    pub deny: Option<i16>,
    /// Why (from the filter's local response, or its failure).
    pub reason: Option<String>,
    /// The deciding filter and the policy it named (`strait.policy`).
    pub filter: Option<String>,
    pub policy: Option<String>,
}

/// One connection's walk through its listener's filters: one stream context per filter for
/// the whole connection, replaced when a reload swaps the chain (so the next request meets
/// the policy in force when it arrives).
pub struct ConnFilters {
    handle: ChainHandle,
    current: Option<StreamFilters>,
    listener: Arc<str>,
    source: SocketAddr,
    destination: SocketAddr,
    upstream: Arc<str>,
    identity: Option<u32>,
    destination_identity: Option<u32>,
}

impl ConnFilters {
    pub fn new(
        handle: ChainHandle,
        listener: &str,
        source: SocketAddr,
        destination: SocketAddr,
        upstream: String,
        identities: (Option<u32>, Option<u32>),
    ) -> Self {
        Self {
            handle,
            current: None,
            listener: Arc::from(listener),
            source,
            destination,
            upstream: Arc::from(upstream),
            identity: identities.0,
            destination_identity: identities.1,
        }
    }

    /// Runs `parsed` through the current chain.
    pub fn judge(&mut self, parsed: &Parsed, names: &TopicNames) -> Judged {
        let chain = self.handle.load_full();
        let mut forward = Judged {
            deny: None,
            reason: None,
            filter: None,
            policy: None,
        };
        if chain.plugins.is_empty() {
            self.current = None;
            return forward;
        }
        if !self.current.as_ref().is_some_and(|c| c.runs(&chain)) {
            let info = StreamInfo {
                listener: self.listener.clone(),
                source: self.source,
                destination: self.destination,
                upstream: self.upstream.clone(),
                protocol: "kafka",
                tls: false,
                identity: self.identity,
                destination_identity: self.destination_identity,
                start: SystemTime::now(),
                request: None,
                policy: Default::default(),
                wake: Default::default(),
                status: Default::default(),
                past: Default::default(),
            };
            // Dropping the old chain's contexts ends them (proxy_on_done / proxy_on_delete).
            self.current = Some(StreamFilters::new(chain, info, Duration::ZERO));
        }
        let Some(filters) = &self.current else {
            return forward;
        };
        let req = Arc::new(request_info(parsed, names));
        let outcome = filters.kafka_request(&req);
        let decided = filters.info().take_policy();
        let default_code = match parsed {
            Parsed::Known(r) => denial_code(r),
            _ => super::super::response::TOPIC_AUTHORIZATION_FAILED,
        };
        match outcome {
            Outcome::Continue => {
                if let Some((f, p)) = decided {
                    forward.filter = Some(f.to_string());
                    forward.policy = Some(p);
                }
                forward
            }
            Outcome::Reply { filter, reply } => {
                let code = match reply.status {
                    0 => default_code,
                    c => i16::try_from(c).unwrap_or(default_code),
                };
                Judged {
                    deny: Some(code),
                    reason: (!reply.details.is_empty()).then_some(reply.details),
                    policy: decided.as_ref().map(|(_, p)| p.clone()),
                    filter: Some(filter),
                }
            }
            Outcome::Fail(f) => Judged {
                deny: Some(default_code),
                reason: Some(format!(
                    "filter `{}` failed (failure: closed): {}",
                    f.filter, f.message
                )),
                policy: decided.as_ref().map(|(_, p)| p.clone()),
                filter: Some(f.filter),
            },
        }
    }
}

/// The `kafka.*` properties of a request.
fn request_info(parsed: &Parsed, names: &TopicNames) -> KafkaRequestInfo {
    let h = parsed.header();
    let (api_name, topics) = match parsed {
        Parsed::Known(r) => (r.api.name.to_owned(), topics(&r.topics, names)),
        Parsed::UnknownVersion { api, .. } => (api.name.to_owned(), KafkaTopics::Unknown),
        Parsed::UnknownApi(_) => ("unknown".to_owned(), KafkaTopics::Unknown),
    };
    KafkaRequestInfo {
        api_key: h.api_key,
        api_version: h.api_version,
        correlation_id: h.correlation_id,
        api_name,
        client_id: h.client_id.clone(),
        topics,
    }
}

fn topics(t: &Topics, names: &TopicNames) -> KafkaTopics {
    let list = match t {
        Topics::None => return KafkaTopics::None,
        Topics::Opaque => return KafkaTopics::Unknown,
        Topics::Listed(l) => l,
    };
    if !list.patterns.is_empty() {
        return KafkaTopics::Unknown;
    }
    if list.all {
        return KafkaTopics::All;
    }
    let mut out: Vec<String> = Vec::with_capacity(list.entries.len());
    for e in &list.entries {
        let name = match (&e.name, e.id) {
            (Some(n), _) => n.clone(),
            (None, Some(id)) if !id.is_zero() => match names.name(id) {
                Some(n) => n,
                None => return KafkaTopics::Unknown,
            },
            _ => return KafkaTopics::Unknown,
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    KafkaTopics::Listed(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::super::request::{TopicEntry, TopicList};
    use super::*;

    fn entry(name: Option<&str>, id: Option<TopicId>) -> TopicEntry {
        TopicEntry {
            name: name.map(str::to_owned),
            id,
            partitions: vec![0],
            parent: None,
        }
    }

    #[test]
    fn topic_scopes_and_ids_mapped_to_names() {
        let names = TopicNames::default();
        let id = TopicId([7; 16]);
        names.names.lock().unwrap().insert(id, "orders".into());
        let listed = |entries: Vec<TopicEntry>| {
            Topics::Listed(TopicList {
                entries,
                ..TopicList::default()
            })
        };
        assert_eq!(topics(&Topics::None, &names), KafkaTopics::None);
        assert_eq!(topics(&Topics::Opaque, &names), KafkaTopics::Unknown);
        // Names once each, in order; a known id becomes its name.
        let t = listed(vec![
            entry(Some("a"), None),
            entry(None, Some(id)),
            entry(Some("a"), None),
        ]);
        assert_eq!(
            topics(&t, &names),
            KafkaTopics::Listed(vec!["a".into(), "orders".into()])
        );
        // An id no Metadata response named, or an entry with neither: cannot be named.
        let t = listed(vec![
            entry(Some("a"), None),
            entry(None, Some(TopicId([9; 16]))),
        ]);
        assert_eq!(topics(&t, &names), KafkaTopics::Unknown);
        assert_eq!(
            topics(&listed(vec![entry(None, None)]), &names),
            KafkaTopics::Unknown
        );
        let all = Topics::Listed(TopicList {
            all: true,
            ..TopicList::default()
        });
        assert_eq!(topics(&all, &names), KafkaTopics::All);
        let re = Topics::Listed(TopicList {
            patterns: vec!["or.*".into()],
            ..TopicList::default()
        });
        assert_eq!(topics(&re, &names), KafkaTopics::Unknown);
    }
}
