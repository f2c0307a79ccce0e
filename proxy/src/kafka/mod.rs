//! Kafka protocol support: framing, request headers, the topics a request names, and error
//! responses for the requests a policy denies. See docs/kafka.md.
//!
//! - [`codec`]: size-prefixed frames ([`codec::KafkaCodec`], a `tokio_util` codec).
//! - [`request`]: [`request::parse_request`] → known API and version (with its
//!   [`request::Topics`]), unknown API, or unknown version.
//! - [`response`]: [`response::error_response`] answers a denied request in its own version.
//! - [`metadata`]: topic id → name pairs from Metadata responses, for requests that name topics
//!   by id.
//! - [`rewrite`]: broker addresses in Metadata / FindCoordinator / DescribeCluster responses
//!   moved to the proxy's own, and ApiVersions capped to the versions strait can rewrite.
//! - [`api`] / [`apis`]: the table of API keys, versions and flexible versions.
//! - [`proxy`]: the `protocol: kafka` listener flow built on all of the above.
//!
//! Parsing is driven by data: the message layouts in `messages.rs` (derived from Kafka's JSON
//! message definitions) are interpreted by one walker (`extract.rs`) and one encoder
//! (`response.rs`), so a new Kafka version is a table change, not new code.
//!
//! Apart from [`proxy`], the module depends only on `bytes`, `tokio-util` and `thiserror` (the
//! fuzz target in `proxy/fuzz` compiles it on its own, without `proxy`), and refers to nothing
//! else in the crate.

// `fuzzing` is set by cargo-fuzz only.
#![allow(unexpected_cfgs)]

mod api;
pub mod codec;
mod extract;
#[rustfmt::skip]
mod messages;
pub mod metadata;
// The listener flow needs the rest of the crate; the fuzz target (built by cargo-fuzz with
// `--cfg fuzzing`) compiles this module alone, without it.
#[cfg(not(fuzzing))]
pub mod proxy;
pub mod request;
pub mod response;
pub mod rewrite;
mod schema;
mod wire;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

pub use api::{api, apis, ApiInfo, TopicKind};
pub use wire::{ParseError, TopicId};
