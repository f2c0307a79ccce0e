//! The [`Filter`] trait and the [`Decision`] a filter returns.

use crate::errors::ConfigError;
use crate::http::{Request, Response};
use crate::kafka::{KafkaDecision, KafkaRequest};

/// A policy filter: configured once per plugin instance, then asked about every request (and
/// response) of the listener it is attached to.
///
/// Register the type with [`export_filter!`](crate::export_filter); the SDK does the rest of
/// the proxy-wasm ABI (contexts, memory, header maps, local responses).
///
/// The filter is shared by all requests of its plugin instance, so the hooks take `&self`; use
/// `Cell`/`RefCell` for state that changes (a module instance is single-threaded).
pub trait Filter: Sized + 'static {
    /// Builds the filter from its configuration: the bytes of the `PLUGIN_CONFIGURATION`
    /// buffer, i.e. the filter's `config` in `strait.yaml` (YAML mappings are handed over as
    /// JSON; see [`config::from_json`](crate::config::from_json)). Empty when there is none.
    ///
    /// Returning `Err` makes `proxy_on_configure` return false: the host rejects the filter.
    /// The error is logged at [`Level::Error`](crate::Level::Error).
    fn configure(config: &[u8]) -> Result<Self, ConfigError>;

    /// Called once per request when its headers have arrived (`proxy_on_request_headers`).
    /// Read and change headers through `req`; return [`Decision::Allow`] to forward the request
    /// upstream or a deny to answer it locally.
    fn on_request(&self, req: &mut Request<'_>) -> Decision;

    /// Called when the upstream's response headers have arrived (`proxy_on_response_headers`).
    /// Not called when this filter already answered the request itself. A deny replaces the
    /// upstream's response with a local one. The default allows every response unchanged.
    fn on_response(&self, resp: &mut Response<'_>) -> Decision {
        let _ = resp;
        Decision::Allow
    }

    /// Called once per Kafka request on a `protocol: kafka` listener (strait's
    /// `strait_on_kafka_request` extension of the ABI), before anything reaches the broker.
    /// Read the request header and its topics through `req`; return [`KafkaDecision::Allow`]
    /// to forward it, or a deny to have strait answer it with a Kafka error.
    ///
    /// All requests of one Kafka connection share one stream context, and a deny affects only
    /// the request it answers: the next request on the connection is judged afresh.
    ///
    /// The default **denies** every request (code 0, strait's choice of error): a filter
    /// written for HTTP that ends up on a Kafka listener must fail closed, not let everything
    /// through. Override it to serve Kafka listeners.
    fn on_kafka_request(&self, req: &mut KafkaRequest<'_>) -> KafkaDecision {
        let _ = req;
        KafkaDecision::deny(NO_KAFKA_HOOK)
    }
}

/// The reason of the default [`Filter::on_kafka_request`]'s deny.
pub(crate) const NO_KAFKA_HOOK: &str = "filter does not judge Kafka requests (no on_kafka_request)";

/// What to do with a request (or response).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Let it through (with whatever header changes the filter made).
    Allow,
    /// Answer with an HTTP response of this status and body (`text/plain; charset=utf-8` when
    /// the body is not empty) instead of forwarding.
    Deny {
        /// HTTP status code, e.g. 403. Must be 100..=999: strait refuses other values, and
        /// the SDK then panics (the module traps) rather than let the request through.
        status: u16,
        /// Response body; may be empty.
        body: String,
    },
    /// Answer a gRPC call with this status: HTTP 200, `grpc-status: code`, `grpc-message:
    /// message` (a trailers-only gRPC response).
    DenyGrpc {
        /// gRPC status code, see [`grpc`](crate::grpc), e.g. `grpc::PERMISSION_DENIED` (7).
        code: u32,
        /// The `grpc-message`.
        message: String,
    },
}

impl Decision {
    /// [`Decision::Deny`] with this status and an empty body.
    pub fn deny(status: u16) -> Decision {
        Decision::Deny {
            status,
            body: String::new(),
        }
    }

    /// [`Decision::Deny`] with this status and body.
    pub fn deny_with(status: u16, body: impl Into<String>) -> Decision {
        Decision::Deny {
            status,
            body: body.into(),
        }
    }

    /// [`Decision::DenyGrpc`]: a gRPC error response with this status code and message.
    pub fn deny_grpc(code: u32, message: impl Into<String>) -> Decision {
        Decision::DenyGrpc {
            code,
            message: message.into(),
        }
    }

    /// Whether this is [`Decision::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// gRPC status codes, for [`Decision::deny_grpc`].
pub mod grpc {
    /// `OK`.
    pub const OK: u32 = 0;
    /// `CANCELLED`.
    pub const CANCELLED: u32 = 1;
    /// `UNKNOWN`.
    pub const UNKNOWN: u32 = 2;
    /// `INVALID_ARGUMENT`.
    pub const INVALID_ARGUMENT: u32 = 3;
    /// `DEADLINE_EXCEEDED`.
    pub const DEADLINE_EXCEEDED: u32 = 4;
    /// `NOT_FOUND`.
    pub const NOT_FOUND: u32 = 5;
    /// `ALREADY_EXISTS`.
    pub const ALREADY_EXISTS: u32 = 6;
    /// `PERMISSION_DENIED`.
    pub const PERMISSION_DENIED: u32 = 7;
    /// `RESOURCE_EXHAUSTED`.
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    /// `FAILED_PRECONDITION`.
    pub const FAILED_PRECONDITION: u32 = 9;
    /// `ABORTED`.
    pub const ABORTED: u32 = 10;
    /// `OUT_OF_RANGE`.
    pub const OUT_OF_RANGE: u32 = 11;
    /// `UNIMPLEMENTED`.
    pub const UNIMPLEMENTED: u32 = 12;
    /// `INTERNAL`.
    pub const INTERNAL: u32 = 13;
    /// `UNAVAILABLE`.
    pub const UNAVAILABLE: u32 = 14;
    /// `DATA_LOSS`.
    pub const DATA_LOSS: u32 = 15;
    /// `UNAUTHENTICATED`.
    pub const UNAUTHENTICATED: u32 = 16;
}
