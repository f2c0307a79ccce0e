//! Arbitrary bytes as they would arrive on a Kafka connection: frames through the codec, each
//! frame through the request parser, every known request through error-response synthesis, and
//! each frame also through the Metadata-response reader, the Metadata topic-policy edits of
//! requests and answers, the broker-address rewriter and the ApiVersions cap. Nothing may panic, and what comes out must be consistent with what went in.
//!
//! cargo-fuzz builds with `--cfg fuzzing`, which leaves out `kafka::proxy` (the listener flow,
//! which needs the rest of the crate).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

#[allow(dead_code, unused_imports)]
#[path = "../../src/kafka/mod.rs"]
mod kafka;

use kafka::codec::KafkaCodec;
use kafka::request::{parse_request, Parsed, Topics};
use kafka::response::{denial_code, error_response};

fuzz_target!(|data: &[u8]| {
    // A small limit keeps the fuzzer on parsing rather than on buffering.
    let mut codec = KafkaCodec::with_max_frame(64 * 1024);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        match parse_request(&frame) {
            Ok(Parsed::Known(req)) => {
                if let Topics::Listed(list) = &req.topics {
                    // Everything collected came out of the frame.
                    let partitions: usize = list.entries.iter().map(|e| e.partitions.len()).sum();
                    assert!(list.entries.len() + partitions <= frame.len());
                }
                let code = denial_code(&req);
                if let Ok(Some(resp)) = error_response(&req, code, Some("denied by policy")) {
                    assert_eq!(resp[..4], req.header.correlation_id.to_be_bytes());
                    let mut out = BytesMut::new();
                    assert!(
                        codec.encode(resp.as_slice(), &mut out).is_ok() || resp.len() > 64 * 1024
                    );
                }
            }
            Ok(Parsed::UnknownApi(h)) => assert!(kafka::api(h.api_key).is_none()),
            Ok(Parsed::UnknownVersion { header, api }) => {
                assert!(!api.supports(header.api_version));
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        // The same bytes as a Metadata response of some version: read for ids, and edited by a
        // topic policy (every other topic denied); an edit reads back.
        let version = i16::from(frame[0] % 15);
        let _ = kafka::metadata::topic_ids(&frame, version);
        let mut flip = false;
        let none = kafka::request::TopicList::default();
        let deny = |_: &kafka::request::TopicEntry| {
            flip = !flip;
            flip.then_some(29)
        };
        if let Ok(Some(out)) = kafka::metadata::edit_response_topics(&frame, version, deny, &none, 29)
        {
            assert_eq!(out[..4], frame[..4]);
            kafka::metadata::topic_ids(&out, version).expect("edited answer reads back");
        }
        // A Metadata request with every other topic taken out parses, naming the topics kept.
        if let Ok(Parsed::Known(req)) = parse_request(&frame) {
            if req.header.api_key == 3 {
                let v = req.header.api_version;
                let mut keep = false;
                let mut kept = Vec::new();
                let out = kafka::metadata::keep_request_topics(&frame, v, |e| {
                    keep = !keep;
                    if keep {
                        kept.push(e.clone());
                    }
                    keep
                });
                if let Ok(out) = out {
                    let Ok(Parsed::Known(edited)) = parse_request(&out) else {
                        panic!("edited request does not parse");
                    };
                    let Topics::Listed(list) = edited.topics else {
                        panic!("edited request lists no topics");
                    };
                    if v > 0 || !kept.is_empty() {
                        assert_eq!(list.entries, kept);
                    }
                }
            }
        }
        // ... and as a response advertising brokers: a rewrite keeps the correlation id and
        // leaves a frame that reads back with every broker moved.
        let key = kafka::rewrite::ADVERTISING_APIS[usize::from(frame[0]) % 5];
        let version = i16::from(frame[frame.len() - 1] % 16);
        if let Ok(Some(out)) = kafka::rewrite::rewrite_brokers(&frame, key, version, "strait", 9092)
        {
            assert_eq!(out[..4], frame[..4]);
            let moved =
                kafka::rewrite::advertised(&out, key, version).expect("rewritten reads back");
            assert!(moved
                .iter()
                .all(|b| b.host.is_empty() || (b.host == "strait" && b.port == 9092)));
        }
        let _ =
            kafka::rewrite::cap_api_versions(&frame, version % 5, kafka::rewrite::advertising_cap);
    }
});
