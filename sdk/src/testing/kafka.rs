//! Kafka requests in the harness: [`TestKafkaRequest`], [`Harness::kafka`] and
//! [`Harness::kafka_connection`], [`KafkaOutcome`].

use super::{host, Harness, Installed, LocalResponse, ROOT_CONTEXT_ID};
use crate::dispatch;
use crate::filter::Filter;
use crate::kafka::KafkaTopics;

/// Kafka's API names by key (0..=92), as strait reports them in `kafka.api_name`.
const API_NAMES: &[&str] = &[
    "Produce",
    "Fetch",
    "ListOffsets",
    "Metadata",
    "LeaderAndIsr",
    "StopReplica",
    "UpdateMetadata",
    "ControlledShutdown",
    "OffsetCommit",
    "OffsetFetch",
    "FindCoordinator",
    "JoinGroup",
    "Heartbeat",
    "LeaveGroup",
    "SyncGroup",
    "DescribeGroups",
    "ListGroups",
    "SaslHandshake",
    "ApiVersions",
    "CreateTopics",
    "DeleteTopics",
    "DeleteRecords",
    "InitProducerId",
    "OffsetForLeaderEpoch",
    "AddPartitionsToTxn",
    "AddOffsetsToTxn",
    "EndTxn",
    "WriteTxnMarkers",
    "TxnOffsetCommit",
    "DescribeAcls",
    "CreateAcls",
    "DeleteAcls",
    "DescribeConfigs",
    "AlterConfigs",
    "AlterReplicaLogDirs",
    "DescribeLogDirs",
    "SaslAuthenticate",
    "CreatePartitions",
    "CreateDelegationToken",
    "RenewDelegationToken",
    "ExpireDelegationToken",
    "DescribeDelegationToken",
    "DeleteGroups",
    "ElectLeaders",
    "IncrementalAlterConfigs",
    "AlterPartitionReassignments",
    "ListPartitionReassignments",
    "OffsetDelete",
    "DescribeClientQuotas",
    "AlterClientQuotas",
    "DescribeUserScramCredentials",
    "AlterUserScramCredentials",
    "Vote",
    "BeginQuorumEpoch",
    "EndQuorumEpoch",
    "DescribeQuorum",
    "AlterPartition",
    "UpdateFeatures",
    "Envelope",
    "FetchSnapshot",
    "DescribeCluster",
    "DescribeProducers",
    "BrokerRegistration",
    "BrokerHeartbeat",
    "UnregisterBroker",
    "DescribeTransactions",
    "ListTransactions",
    "AllocateProducerIds",
    "ConsumerGroupHeartbeat",
    "ConsumerGroupDescribe",
    "ControllerRegistration",
    "GetTelemetrySubscriptions",
    "PushTelemetry",
    "AssignReplicasToDirs",
    "ListConfigResources",
    "DescribeTopicPartitions",
    "ShareGroupHeartbeat",
    "ShareGroupDescribe",
    "ShareFetch",
    "ShareAcknowledge",
    "AddRaftVoter",
    "RemoveRaftVoter",
    "UpdateRaftVoter",
    "InitializeShareGroupState",
    "ReadShareGroupState",
    "WriteShareGroupState",
    "DeleteShareGroupState",
    "ReadShareGroupStateSummary",
    "StreamsGroupHeartbeat",
    "StreamsGroupDescribe",
    "DescribeShareGroupOffsets",
    "AlterShareGroupOffsets",
    "DeleteShareGroupOffsets",
];

fn api_name(key: i16) -> &'static str {
    usize::try_from(key)
        .ok()
        .and_then(|k| API_NAMES.get(k))
        .copied()
        .unwrap_or("unknown")
}

type Properties = Vec<(Vec<String>, Vec<u8>)>;

fn path_of(path: &[&str]) -> Vec<String> {
    path.iter().map(|s| (*s).to_owned()).collect()
}

/// A synthetic Kafka request: the header fields and topics strait would hand over as
/// `kafka.*` properties, plus any other properties (`strait.listener` is `test` unless set).
///
/// ```
/// use strait_sdk::testing::TestKafkaRequest;
/// use strait_sdk::KafkaTopics;
///
/// let produce = TestKafkaRequest::produce(&["orders"]).client_id("billing").source_identity(7);
/// let metadata_of_everything = TestKafkaRequest::new(3, 12).scope(KafkaTopics::All);
/// ```
#[derive(Clone, Debug)]
pub struct TestKafkaRequest {
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    api_name: Option<String>,
    client_id: Option<String>,
    topics: KafkaTopics,
    properties: Properties,
    removed: Vec<Vec<String>>,
}

impl TestKafkaRequest {
    /// A request of API `api_key`, version `api_version`: correlation id 1, null client id,
    /// topic scope `none`, `kafka.api_name` as strait names the key (`unknown` if it does not
    /// know it).
    pub fn new(api_key: i16, api_version: i16) -> Self {
        TestKafkaRequest {
            api_key,
            api_version,
            correlation_id: 1,
            api_name: None,
            client_id: None,
            topics: KafkaTopics::None,
            properties: vec![(path_of(&["strait", "listener"]), b"test".to_vec())],
            removed: Vec::new(),
        }
    }

    /// Produce (key 0) v9 to `topics`.
    pub fn produce(topics: &[&str]) -> Self {
        Self::new(0, 9).topics(topics)
    }

    /// Fetch (key 1) v12 from `topics`.
    pub fn fetch(topics: &[&str]) -> Self {
        Self::new(1, 12).topics(topics)
    }

    /// Metadata (key 3) v12 of `topics` (scope `listed`; see [`scope`](Self::scope) for a
    /// Metadata request of every topic).
    pub fn metadata(topics: &[&str]) -> Self {
        Self::new(3, 12).topics(topics)
    }

    /// ApiVersions (key 18) v3: names no topic.
    pub fn api_versions() -> Self {
        Self::new(18, 3)
    }

    /// Sets the API version.
    pub fn api_version(mut self, version: i16) -> Self {
        self.api_version = version;
        self
    }

    /// Sets the correlation id.
    pub fn correlation_id(mut self, id: i32) -> Self {
        self.correlation_id = id;
        self
    }

    /// Sets `kafka.api_name` (by default strait's name for the key).
    pub fn api_name(mut self, name: &str) -> Self {
        self.api_name = Some(name.to_owned());
        self
    }

    /// Sets the client id (null by default: `kafka.client_id` is then `NOT_FOUND`).
    pub fn client_id(mut self, id: &str) -> Self {
        self.client_id = Some(id.to_owned());
        self
    }

    /// Scope `listed` with these topics (none: a request that could name topics but lists
    /// none).
    pub fn topics(self, topics: &[&str]) -> Self {
        self.scope(KafkaTopics::Listed(
            topics.iter().map(|t| (*t).to_owned()).collect(),
        ))
    }

    /// Sets the topic scope and list, e.g. `KafkaTopics::All` or `KafkaTopics::Unknown`.
    pub fn scope(mut self, topics: KafkaTopics) -> Self {
        self.topics = topics;
        self
    }

    /// Sets a property: `path` segments and raw value bytes. Overrides what the builder
    /// derives for `kafka.*` paths (e.g. to test a `kafka.topic_scope` strait never sends).
    pub fn property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> Self {
        let path = path_of(path);
        self.removed.retain(|p| *p != path);
        self.properties.retain(|(p, _)| *p != path);
        self.properties.push((path, value.into()));
        self
    }

    /// Sets an integer property, encoded as strait does (8-byte little-endian `i64`).
    pub fn property_i64(self, path: &[&str], value: i64) -> Self {
        self.property(path, value.to_le_bytes().to_vec())
    }

    /// Removes a property, also one the builder derives (e.g. `&["kafka", "topics"]`).
    pub fn without_property(mut self, path: &[&str]) -> Self {
        let path = path_of(path);
        self.properties.retain(|(p, _)| *p != path);
        self.removed.push(path);
        self
    }

    /// The client's numeric identity (`strait.source_identity`, a decimal string).
    pub fn source_identity(self, identity: u64) -> Self {
        self.property(&["strait", "source_identity"], identity.to_string())
    }

    /// The broker side's numeric identity (`strait.destination_identity`, a decimal string).
    pub fn destination_identity(self, identity: u64) -> Self {
        self.property(&["strait", "destination_identity"], identity.to_string())
    }

    /// The port the client connected to (`destination.port`).
    pub fn destination_port(self, port: u16) -> Self {
        self.property_i64(&["destination", "port"], i64::from(port))
    }

    /// The listener name (`strait.listener`).
    pub fn listener(self, name: &str) -> Self {
        self.property(&["strait", "listener"], name)
    }

    /// The client's address: `source.address` (`ip:port`) and `source.port`.
    pub fn source(self, ip: &str, port: u16) -> Self {
        let address = if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        };
        self.property(&["source", "address"], address)
            .property_i64(&["source", "port"], i64::from(port))
    }

    /// Every property the host offers for this request, encoded as strait does.
    fn host_properties(self) -> Properties {
        let int = |v: i64| v.to_le_bytes().to_vec();
        let mut props: Properties = vec![
            (path_of(&["kafka", "api_key"]), int(self.api_key.into())),
            (
                path_of(&["kafka", "api_version"]),
                int(self.api_version.into()),
            ),
            (
                path_of(&["kafka", "correlation_id"]),
                int(self.correlation_id.into()),
            ),
            (
                path_of(&["kafka", "api_name"]),
                self.api_name
                    .unwrap_or_else(|| api_name(self.api_key).to_owned())
                    .into_bytes(),
            ),
            (
                path_of(&["kafka", "topic_scope"]),
                self.topics.scope().as_bytes().to_vec(),
            ),
        ];
        if let Some(id) = self.client_id {
            props.push((path_of(&["kafka", "client_id"]), id.into_bytes()));
        }
        if let KafkaTopics::Listed(topics) = &self.topics {
            props.push((
                path_of(&["kafka", "topics"]),
                topics.join("\n").into_bytes(),
            ));
        }
        props.retain(|(p, _)| {
            !self.removed.contains(p) && !self.properties.iter().any(|(q, _)| q == p)
        });
        props.extend(self.properties);
        props
    }
}

/// What the filter decided about one Kafka request.
#[derive(Clone, Debug)]
pub struct KafkaOutcome {
    local_response: Option<LocalResponse>,
    set_properties: Vec<(Vec<u8>, Vec<u8>)>,
}

impl KafkaOutcome {
    /// The filter let the request through (sent no local response).
    pub fn allowed(&self) -> bool {
        self.local_response.is_none()
    }

    /// The filter denied the request.
    pub fn denied(&self) -> bool {
        self.local_response.is_some()
    }

    /// The Kafka error code of the deny (0: strait's choice), `None` if allowed.
    pub fn code(&self) -> Option<i16> {
        let status = self.local_response.as_ref()?.status;
        Some(i16::try_from(status).unwrap_or(i16::MAX))
    }

    /// The reason of the deny as strait receives it (the local response's details: first line,
    /// at most 256 bytes), `None` if allowed.
    pub fn reason(&self) -> Option<&str> {
        Some(self.local_response.as_ref()?.details.as_str())
    }

    /// The local response as the host received it (`status` is the error code).
    pub fn local_response(&self) -> Option<&LocalResponse> {
        self.local_response.as_ref()
    }

    /// The last value the filter set for property `path` (with `set_property`) while judging
    /// this request, if it set one.
    pub fn set_property(&self, path: &[&str]) -> Option<&[u8]> {
        let key = path.join("\0").into_bytes();
        self.set_properties
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_slice())
    }
}

impl<F: Filter> Harness<F> {
    /// Sends one Kafka request through the filter on a connection of its own. See
    /// [`Harness::kafka_connection`].
    pub fn kafka(&mut self, req: TestKafkaRequest) -> KafkaOutcome {
        let mut outs = self.kafka_connection([req]);
        outs.pop().expect("one request, one outcome")
    }

    /// Sends Kafka requests through the filter, in order, on one connection, as strait does:
    ///
    /// 1. `proxy_on_context_create(stream, 1)` once;
    /// 2. per request: its `kafka.*` (and other) properties, then
    ///    `strait_on_kafka_request(stream)`;
    /// 3. `proxy_on_delete`.
    ///
    /// A deny answers only its request; the next one is judged afresh. A panic of the filter (a
    /// trap in a real host) propagates to the test.
    pub fn kafka_connection(
        &mut self,
        reqs: impl IntoIterator<Item = TestKafkaRequest>,
    ) -> Vec<KafkaOutcome> {
        let id = self.next_stream_id();
        self.host.maps = Default::default();
        self.host.request_body = Vec::new();
        self.host.response_body = Vec::new();
        let mut outs = Vec::new();
        let _installed = Installed::new(&mut self.host, &mut self.runtime);
        dispatch::on_context_create(id, ROOT_CONTEXT_ID);
        for req in reqs {
            let properties = req.host_properties();
            host::with(|h| {
                h.properties = properties
                    .into_iter()
                    .map(|(path, value)| (path.join("\0").into_bytes(), value))
                    .collect();
                h.local_response = None;
                h.set_properties.clear();
                h.kafka = true;
            });
            dispatch::on_kafka_request::<F>(id);
            outs.push(host::with(|h| {
                h.kafka = false;
                KafkaOutcome {
                    local_response: h.local_response.take(),
                    set_properties: std::mem::take(&mut h.set_properties),
                }
            }));
        }
        dispatch::on_delete(id);
        outs
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use super::api_name;
    use crate::kafka::{self, KafkaDecision, KafkaRequest, KafkaTopics};
    use crate::prelude::*;
    use crate::testing::{Harness, TestKafkaRequest, TestRequest};

    /// Reports what it saw in property `test.seen`, and decides by client id.
    struct Echo {
        judged: Counter,
    }

    impl Filter for Echo {
        fn configure(_: &[u8]) -> Result<Self, ConfigError> {
            Ok(Echo {
                judged: Counter::define("judged")?,
            })
        }

        fn on_request(&self, _: &mut Request<'_>) -> Decision {
            Decision::Allow
        }

        fn on_kafka_request(&self, req: &mut KafkaRequest<'_>) -> KafkaDecision {
            self.judged.increment(1);
            let seen = format!(
                "{} v{} #{} {} {:?} {:?} src={:?} dst={:?} port={:?} listener={:?} addr={:?}",
                req.api_key(),
                req.api_version(),
                req.correlation_id(),
                req.api_name(),
                req.client_id(),
                req.topics(),
                req.source_identity(),
                req.destination_identity(),
                req.destination_port(),
                req.listener(),
                req.source_address(),
            );
            req.set_property(&["test", "seen"], seen);
            match req.client_id() {
                Some("deny") => KafkaDecision::deny("denied: client `deny`\nsecond line"),
                Some("group") => KafkaDecision::deny_with_code(
                    kafka::GROUP_AUTHORIZATION_FAILED,
                    "no group for you",
                ),
                Some("negative") => KafkaDecision::deny_with_code(-1, "bad code"),
                Some("empty") => KafkaDecision::deny(""),
                _ => KafkaDecision::Allow,
            }
        }
    }

    /// An HTTP-only filter: the default `on_kafka_request`.
    struct HttpOnly;

    impl Filter for HttpOnly {
        fn configure(_: &[u8]) -> Result<Self, ConfigError> {
            Ok(HttpOnly)
        }

        fn on_request(&self, _: &mut Request<'_>) -> Decision {
            Decision::Allow
        }
    }

    fn seen(out: &crate::testing::KafkaOutcome) -> String {
        String::from_utf8_lossy(out.set_property(&["test", "seen"]).expect("seen")).into_owned()
    }

    fn echo() -> Harness<Echo> {
        Harness::new("").expect("configured")
    }

    #[test]
    fn api_names_by_key() {
        assert_eq!(api_name(0), "Produce");
        assert_eq!(api_name(18), "ApiVersions");
        assert_eq!(api_name(92), "DeleteShareGroupOffsets");
        assert_eq!(api_name(93), "unknown");
        assert_eq!(api_name(-1), "unknown");
    }

    #[test]
    fn the_request_reaches_the_filter() {
        let mut h = echo();
        let out = h.kafka(
            TestKafkaRequest::produce(&["orders", "audit"])
                .correlation_id(42)
                .client_id("billing")
                .source_identity(256)
                .destination_identity(257)
                .destination_port(9092)
                .source("10.0.0.1", 40000),
        );
        assert!(out.allowed() && !out.denied());
        assert_eq!(out.code(), None);
        assert_eq!(out.reason(), None);
        assert_eq!(
            seen(&out),
            "0 v9 #42 Produce Some(\"billing\") Listed([\"orders\", \"audit\"]) src=Some(256) \
             dst=Some(257) port=Some(9092) listener=Some(\"test\") addr=Some(\"10.0.0.1:40000\")"
        );
        assert_eq!(h.metric("judged"), Some(1));
        assert_eq!(h.live_streams(), 0);
    }

    #[test]
    fn topic_scopes_decode() {
        let mut h = echo();
        let topics = |h: &mut Harness<Echo>, req: TestKafkaRequest| {
            let s = seen(&h.kafka(req));
            s.split(' ').nth(5).expect("topics").to_owned()
        };
        assert_eq!(topics(&mut h, TestKafkaRequest::api_versions()), "None");
        assert_eq!(
            topics(&mut h, TestKafkaRequest::metadata(&[])),
            "Listed([])"
        );
        assert_eq!(
            topics(&mut h, TestKafkaRequest::new(3, 12).scope(KafkaTopics::All)),
            "All"
        );
        assert_eq!(
            topics(
                &mut h,
                TestKafkaRequest::new(1, 17).scope(KafkaTopics::Unknown)
            ),
            "Unknown"
        );
        // What strait never sends is "unknown": the filter must assume any topic.
        assert_eq!(
            topics(
                &mut h,
                TestKafkaRequest::new(0, 9).property(&["kafka", "topic_scope"], "most")
            ),
            "Unknown"
        );
        assert_eq!(
            topics(
                &mut h,
                TestKafkaRequest::produce(&["a"]).without_property(&["kafka", "topics"])
            ),
            "Unknown"
        );
        assert_eq!(
            topics(
                &mut h,
                TestKafkaRequest::new(0, 9).without_property(&["kafka", "topic_scope"])
            ),
            "Unknown"
        );
    }

    #[test]
    fn missing_header_properties_have_defaults() {
        let mut h = echo();
        let out = h.kafka(
            TestKafkaRequest::new(200, 1)
                .without_property(&["kafka", "api_key"])
                .without_property(&["kafka", "api_name"])
                .property(&["kafka", "api_version"], "not an int")
                .property_i64(&["kafka", "correlation_id"], i64::MAX),
        );
        assert!(
            seen(&out).starts_with("-1 v-1 #-1 unknown None None src=None dst=None port=None"),
            "{}",
            seen(&out)
        );
        let out = h.kafka(TestKafkaRequest::new(200, 1));
        assert!(
            seen(&out).starts_with("200 v1 #1 unknown None"),
            "{}",
            seen(&out)
        );
        let out = h.kafka(TestKafkaRequest::new(0, 9).api_name("Custom"));
        assert!(seen(&out).starts_with("0 v9 #1 Custom"), "{}", seen(&out));
    }

    #[test]
    fn denies_carry_code_and_one_line_reason() {
        let mut h = echo();
        let out = h.kafka(TestKafkaRequest::produce(&["a"]).client_id("deny"));
        assert!(out.denied() && !out.allowed());
        assert_eq!(out.code(), Some(kafka::STRAIT_CHOOSES));
        assert_eq!(out.reason(), Some("denied: client `deny`"));
        let r = out.local_response().expect("local response");
        assert!(r.body.is_empty() && r.headers.is_empty());
        assert_eq!(r.grpc_status, None);

        let out = h.kafka(TestKafkaRequest::new(11, 9).client_id("group"));
        assert_eq!(out.code(), Some(30));
        assert_eq!(out.reason(), Some("no group for you"));

        let out = h.kafka(TestKafkaRequest::api_versions().client_id("empty"));
        assert_eq!(out.reason(), Some("denied by filter"));
    }

    #[test]
    fn every_request_of_a_connection_is_judged() {
        let mut h = echo();
        let outs = h.kafka_connection([
            TestKafkaRequest::api_versions(),
            TestKafkaRequest::produce(&["a"]).client_id("deny"),
            TestKafkaRequest::produce(&["a"]).correlation_id(3),
            TestKafkaRequest::produce(&["a"]).client_id("group"),
        ]);
        let verdicts: Vec<_> = outs.iter().map(|o| o.code()).collect();
        assert_eq!(verdicts, [None, Some(0), None, Some(30)]);
        assert!(seen(&outs[2]).contains("#3"));
        assert_eq!(h.metric("judged"), Some(4));
        assert_eq!(h.live_streams(), 0);
        assert!(h.kafka_connection([]).is_empty());
    }

    #[test]
    fn the_default_hook_fails_closed() {
        let mut h = Harness::<HttpOnly>::new("").expect("configured");
        for req in [
            TestKafkaRequest::api_versions(),
            TestKafkaRequest::produce(&["a"]),
        ] {
            let out = h.kafka(req);
            assert_eq!(out.code(), Some(0));
            assert_eq!(
                out.reason(),
                Some("filter does not judge Kafka requests (no on_kafka_request)")
            );
        }
        assert!(h.request(TestRequest::get("/")).allowed());
    }

    #[test]
    fn a_negative_code_traps_and_the_harness_recovers() {
        let mut h = echo();
        let trapped = catch_unwind(AssertUnwindSafe(|| {
            h.kafka(TestKafkaRequest::produce(&["a"]).client_id("negative"))
        }));
        let err = trapped.expect_err("a negative code must not let the request through");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("cannot deny the Kafka request"), "{msg}");
        // The next Kafka request, and HTTP statuses, work as before.
        assert!(h.kafka(TestKafkaRequest::api_versions()).allowed());
        let mut http = Harness::<HttpDeny>::new("").expect("configured");
        let trapped = catch_unwind(AssertUnwindSafe(|| {
            http.kafka(TestKafkaRequest::api_versions().client_id("negative"))
        }));
        assert!(trapped.is_err());
        assert_eq!(http.request(TestRequest::get("/")).status(), Some(403));
    }

    /// Denies HTTP with 403, Kafka with a negative code (traps).
    struct HttpDeny;

    impl Filter for HttpDeny {
        fn configure(_: &[u8]) -> Result<Self, ConfigError> {
            Ok(HttpDeny)
        }

        fn on_request(&self, _: &mut Request<'_>) -> Decision {
            Decision::deny(403)
        }

        fn on_kafka_request(&self, _: &mut KafkaRequest<'_>) -> KafkaDecision {
            KafkaDecision::deny_with_code(-5, "x")
        }
    }

    #[test]
    fn decisions_and_topics_helpers() {
        assert!(KafkaDecision::Allow.is_allow());
        assert_eq!(
            KafkaDecision::deny("why"),
            KafkaDecision::Deny {
                code: 0,
                reason: "why".into()
            }
        );
        assert!(!KafkaDecision::deny_with_code(kafka::TOPIC_AUTHORIZATION_FAILED, "x").is_allow());
        assert_eq!(kafka::CLUSTER_AUTHORIZATION_FAILED, 31);

        let listed = KafkaTopics::Listed(vec!["a".into()]);
        assert_eq!(listed.listed(), Some(&["a".to_owned()][..]));
        assert_eq!(KafkaTopics::All.listed(), None);
        for (t, scope, empty) in [
            (KafkaTopics::None, "none", true),
            (KafkaTopics::Listed(vec![]), "listed", true),
            (listed.clone(), "listed", false),
            (KafkaTopics::All, "all", false),
            (KafkaTopics::Unknown, "unknown", false),
        ] {
            assert_eq!(t.scope(), scope);
            assert_eq!(t.is_empty(), empty, "{t:?}");
        }
    }

    #[test]
    fn http_requests_see_the_destination_identity() {
        struct Dst;
        impl Filter for Dst {
            fn configure(_: &[u8]) -> Result<Self, ConfigError> {
                Ok(Dst)
            }
            fn on_request(&self, req: &mut Request<'_>) -> Decision {
                match req.destination_identity() {
                    Some(id) => Decision::deny_with(403, id.to_string()),
                    None => Decision::Allow,
                }
            }
        }
        let mut h = Harness::<Dst>::new("").expect("configured");
        let out =
            h.request(TestRequest::get("/").property(&["strait", "destination_identity"], "77"));
        assert_eq!(out.body_text(), "77");
        assert!(h.request(TestRequest::get("/")).allowed());
    }
}
