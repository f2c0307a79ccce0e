//! # strait-sdk
//!
//! Write strait policy filters in Rust. A filter is a WebAssembly module speaking the
//! proxy-wasm ABI 0.2.1; this crate implements the guest side of that ABI (exports, imports from
//! `env`, memory hand-over, header map encoding, local responses) so that a filter is a type
//! implementing [`Filter`] plus one [`export_filter!`] line.
//!
//! ```
//! use strait_sdk::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     allowed: Vec<String>,
//! }
//!
//! struct AllowPaths {
//!     allowed: Vec<String>,
//!     denied: Counter,
//! }
//!
//! impl Filter for AllowPaths {
//!     fn configure(config: &[u8]) -> Result<Self, ConfigError> {
//!         let config: Config = strait_sdk::config::from_json(config)?;
//!         Ok(AllowPaths { allowed: config.allowed, denied: Counter::define("denied")? })
//!     }
//!
//!     fn on_request(&self, req: &mut Request<'_>) -> Decision {
//!         if self.allowed.contains(&req.path_without_query()) {
//!             Decision::Allow
//!         } else {
//!             self.denied.increment(1);
//!             Decision::deny_with(403, "path not allowed\n")
//!         }
//!     }
//! }
//!
//! strait_sdk::export_filter!(AllowPaths);
//!
//! // The same filter, in-process, without a proxy:
//! use strait_sdk::testing::{Harness, TestRequest};
//! let mut h = Harness::<AllowPaths>::new(r#"{"allowed":["/a"]}"#).unwrap();
//! assert!(h.request(TestRequest::get("/a?x=1")).allowed());
//! let out = h.request(TestRequest::get("/b"));
//! assert_eq!(out.status(), Some(403));
//! assert_eq!(h.metric("denied"), Some(1));
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip1 -p <crate>` (crate type
//! `cdylib`); `wasm32-unknown-unknown` works too.
//!
//! ## What the module exports and imports
//!
//! [`export_filter!`] exports `proxy_abi_version_0_2_1`, `proxy_on_memory_allocate` (and
//! `malloc` on `wasm32-unknown-unknown`; on WASI targets `malloc` is libc's and not exported),
//! `proxy_on_vm_start`, `proxy_on_configure`, `proxy_on_context_create`,
//! `proxy_on_request_headers`, `proxy_on_response_headers` (not with
//! `export_filter!(T, requests_only)`, for filters without [`Filter::on_response`]),
//! `proxy_on_delete`, and strait's
//! Kafka extension `strait_on_kafka_request` (see [`kafka`]). It does not export the body,
//! trailers, `proxy_on_log`, `proxy_on_done` and `proxy_on_tick` callbacks: a filter built
//! with the SDK does nothing in them, and a host skips a callback a module does not export,
//! so strait neither calls into the VM for them nor passes bodies through the filter. It
//! imports from `env` only what it uses among `proxy_log`, `proxy_get_buffer_bytes`, the five
//! header map calls, `proxy_send_local_response`, `proxy_get_property`, `proxy_set_property`
//! and the four metric calls.
//!
//! ## Kafka
//!
//! On strait's `protocol: kafka` listeners, the hook is [`Filter::on_kafka_request`], called
//! once per Kafka request with a [`KafkaRequest`] (API key and version, client id, the topics
//! it reaches) and returning a [`KafkaDecision`]. Its default denies every request, so a filter
//! written for HTTP fails closed on a Kafka listener. See the [`kafka`] module.
//!
//! ## Failures
//!
//! * [`Filter::configure`] returning `Err` → `proxy_on_configure` returns false → the host
//!   rejects the filter.
//! * A host call the SDK cannot do without (reading or changing headers, sending a local
//!   response) failing → panic. In a wasm module that is a trap (the message is logged first at
//!   `CRITICAL`), and the host applies the filter's failure mode. Metric updates and logging
//!   never panic.
//!
//! ## Testing
//!
//! On every target but `wasm32`, the host calls go to an in-process emulated host, and
//! `testing::Harness` drives the same entry points the exports call. See the `testing` module
//! (not built for `wasm32`).

#![warn(missing_docs)]

pub mod abi;
pub mod config;
mod dispatch;
mod errors;
mod filter;
mod hostcalls;
mod http;
pub mod kafka;
mod logging;
mod memory;
pub mod metrics;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use errors::{ConfigError, HostError};
pub use filter::{grpc, Decision, Filter};
pub use http::{destination_identity, listener, property, property_i64, property_string};
pub use http::{source_identity, Request, Response};
pub use kafka::{KafkaDecision, KafkaRequest, KafkaTopics};
pub use logging::{log, Level};
pub use metrics::{Counter, Gauge, Histogram};

/// Everything a typical filter needs: `use strait_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{grpc, ConfigError, Decision, Filter, Level, Request, Response};
    pub use crate::{kafka, KafkaDecision, KafkaRequest, KafkaTopics};
    pub use crate::{Counter, Gauge, Histogram};
}

/// The functions behind the exports of [`export_filter!`]. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::dispatch::*;
}

/// Exports a [`Filter`] type as a proxy-wasm ABI 0.2.1 module: `strait_sdk::export_filter!(MyFilter);`
///
/// Use it once per `cdylib` crate (two uses would export the same symbols twice). On `wasm32`
/// it generates the module's exports, each a one-line call into the SDK; on other targets it
/// only checks that the type implements [`Filter`] (tests use `testing::Harness`).
///
/// `strait_sdk::export_filter!(MyFilter, requests_only);` leaves out
/// `proxy_on_response_headers`, for a filter that does not implement
/// [`Filter::on_response`]: the host then skips the filter for response heads instead of
/// calling into the module for nothing (one call per request fewer). An `on_response` of such
/// a filter is never called, so use this form only when the default is what you want.
#[macro_export]
macro_rules! export_filter {
    ($filter:ty, requests_only) => {
        $crate::__export_filter_common!($filter);
    };
    ($filter:ty) => {
        $crate::__export_filter_common!($filter);

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[unsafe(no_mangle)]
            pub extern "C" fn proxy_on_response_headers(
                context_id: u32,
                num_headers: usize,
                end_of_stream: u32,
            ) -> u32 {
                $crate::__private::on_response_headers::<$filter>(
                    context_id,
                    num_headers,
                    end_of_stream,
                )
            }
        };
    };
}

/// The exports every form of [`export_filter!`] has. Not a stable API.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_filter_common {
    ($filter:ty) => {
        const _: () = {
            fn assert_filter<F: $crate::Filter>() {}
            let _ = assert_filter::<$filter>;
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__private as rt;

            #[unsafe(no_mangle)]
            pub extern "C" fn proxy_abi_version_0_2_1() {}

            // A WASI module with `_initialize` is a "reactor": the host calls it once after
            // instantiation (running static constructors), and the linker does not wrap every
            // export in the command-model constructor/destructor calls.
            #[cfg(target_os = "wasi")]
            #[unsafe(no_mangle)]
            pub extern "C" fn _initialize() {
                unsafe extern "C" {
                    fn __wasm_call_ctors();
                }
                // SAFETY: the linker-generated constructor runner; `_initialize` is called
                // once, before any other export, as WASI reactors require.
                unsafe { __wasm_call_ctors() }
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
                rt::allocate(size)
            }

            // On WASI targets `malloc` belongs to libc (and backs Rust's allocator there).
            #[cfg(target_os = "unknown")]
            #[unsafe(no_mangle)]
            pub extern "C" fn malloc(size: usize) -> *mut u8 {
                rt::allocate(size)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn proxy_on_vm_start(root_context_id: u32, size: usize) -> u32 {
                rt::on_vm_start(root_context_id, size)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn proxy_on_configure(root_context_id: u32, size: usize) -> u32 {
                rt::on_configure::<$filter>(root_context_id, size)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn proxy_on_context_create(context_id: u32, parent_context_id: u32) {
                rt::on_context_create(context_id, parent_context_id)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn proxy_on_request_headers(
                context_id: u32,
                num_headers: usize,
                end_of_stream: u32,
            ) -> u32 {
                rt::on_request_headers::<$filter>(context_id, num_headers, end_of_stream)
            }

            // strait's Kafka extension: one call per Kafka request (docs/proxy-wasm.md).
            #[unsafe(no_mangle)]
            pub extern "C" fn strait_on_kafka_request(context_id: u32) -> u32 {
                rt::on_kafka_request::<$filter>(context_id)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn proxy_on_delete(context_id: u32) {
                rt::on_delete(context_id)
            }
        };
    };
}
