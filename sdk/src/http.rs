//! Typed access to the request and response a filter is looking at, and to host properties.

use std::marker::PhantomData;

use crate::abi::map;
use crate::errors::HostError;
use crate::hostcalls;

/// The failure of a host call the filter cannot do without (reading or changing headers).
///
/// A panic in a wasm module traps; the host then applies the filter's `failure` mode
/// (closed: the request is refused; open: the filter is skipped). Under
/// [`testing`](crate::testing) the panic fails the test.
#[track_caller]
pub(crate) fn host_failure(err: HostError) -> ! {
    panic!("strait-sdk: {err}")
}

/// The context methods every request / response view has (properties, identities).
macro_rules! context_methods {
    () => {
        /// The proxy-wasm context id: of the HTTP stream (one per request while it is in flight),
        /// or of the Kafka connection (the same for all its requests).
        pub fn context_id(&self) -> u32 {
            self.context_id
        }

        /// A host property; see [`property`](crate::property).
        pub fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
            crate::property(path)
        }

        /// A string property; see [`property_string`](crate::property_string).
        pub fn property_string(&self, path: &[&str]) -> Option<String> {
            crate::property_string(path)
        }

        /// An integer property; see [`property_i64`](crate::property_i64).
        pub fn property_i64(&self, path: &[&str]) -> Option<i64> {
            crate::property_i64(path)
        }

        /// Sets a property of this stream (`proxy_set_property`): later filters and the host
        /// read it back with [`property`](Self::property). strait records `strait.policy` in
        /// the request's flow record, so a policy filter can name the rule that decided.
        pub fn set_property(&mut self, path: &[&str], value: impl AsRef<[u8]>) {
            crate::hostcalls::set_property(path, value.as_ref()).unwrap_or_else(|e| host_failure(e))
        }

        /// The numeric security identity of the client (property `strait.source_identity`), if
        /// strait knows it.
        pub fn source_identity(&self) -> Option<u64> {
            crate::source_identity()
        }

        /// The numeric security identity of the server (property
        /// `strait.destination_identity`), if strait knows it.
        pub fn destination_identity(&self) -> Option<u64> {
            crate::destination_identity()
        }

        /// The name of the listener the request arrived on (property `strait.listener`).
        pub fn listener(&self) -> Option<String> {
            crate::listener()
        }

        /// The client's address (property `source.address`).
        pub fn source_address(&self) -> Option<String> {
            self.property_string(&["source", "address"])
        }
    };
}
pub(crate) use context_methods;

macro_rules! header_methods {
    ($map:expr, $what:literal) => {
        /// The value of header `name` (first one if repeated), non-UTF-8 bytes replaced by
        /// U+FFFD. Names are matched as the host does (case-insensitively; HTTP/2 names are
        /// lower case). Pseudo-headers (`:path`, …) are headers here.
        pub fn header(&self, name: &str) -> Option<String> {
            self.header_bytes(name)
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        }

        /// The raw bytes of header `name`.
        pub fn header_bytes(&self, name: &str) -> Option<Vec<u8>> {
            hostcalls::get_map_value($map, name).unwrap_or_else(|e| host_failure(e))
        }

        /// Every header, in order, including pseudo-headers, with non-UTF-8 bytes replaced by
        /// U+FFFD.
        pub fn headers(&self) -> Vec<(String, String)> {
            self.headers_bytes()
                .into_iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
                .collect()
        }

        /// Every header as raw bytes.
        pub fn headers_bytes(&self) -> crate::abi::HeaderPairs {
            hostcalls::get_map_pairs($map).unwrap_or_else(|e| host_failure(e))
        }

        /// Every header as raw bytes, read in place from the host's answer (one allocation
        /// for the whole map instead of two per header; see [`crate::abi::RawHeaders`]).
        pub fn headers_raw(&self) -> crate::abi::RawHeaders {
            hostcalls::get_map_raw($map).unwrap_or_else(|e| host_failure(e))
        }

        #[doc = concat!("Sets header `name` to `value`, replacing every existing value, in the ", $what, ".")]
        pub fn set_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
            hostcalls::replace_map_value($map, name, value.as_ref())
                .unwrap_or_else(|e| host_failure(e))
        }

        #[doc = concat!("Adds a value for header `name` (keeping existing ones), in the ", $what, ".")]
        pub fn add_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
            hostcalls::add_map_value($map, name, value.as_ref()).unwrap_or_else(|e| host_failure(e))
        }

        #[doc = concat!("Removes every value of header `name` from the ", $what, " (absent: no-op).")]
        pub fn remove_header(&mut self, name: &str) {
            hostcalls::remove_map_value($map, name).unwrap_or_else(|e| host_failure(e))
        }

        /// Whether this is gRPC (`content-type: application/grpc`, `application/grpc+proto`, …).
        pub fn is_grpc(&self) -> bool {
            self.header_bytes("content-type").is_some_and(|ct| {
                let ct = ct.to_ascii_lowercase();
                ct == b"application/grpc"
                    || ct.starts_with(b"application/grpc+")
                    || ct.starts_with(b"application/grpc;")
            })
        }

        crate::http::context_methods!();
    };
}

/// The request a filter is deciding about, valid during [`Filter::on_request`] only.
///
/// Reading goes to the host on every call (nothing is cached, so changes are seen at once).
///
/// [`Filter::on_request`]: crate::Filter::on_request
#[derive(Debug)]
pub struct Request<'a> {
    context_id: u32,
    _callback: PhantomData<&'a mut ()>,
}

impl Request<'_> {
    pub(crate) fn new(context_id: u32) -> Self {
        Request {
            context_id,
            _callback: PhantomData,
        }
    }

    header_methods!(map::REQUEST_HEADERS, "request");

    /// The request method (`:method`), e.g. `GET`; empty if the host gave none.
    pub fn method(&self) -> String {
        self.header(":method").unwrap_or_default()
    }

    /// The request target (`:path`) including any query string, e.g. `/a/b?c=d`; empty if the
    /// host gave none.
    pub fn path(&self) -> String {
        self.header(":path").unwrap_or_default()
    }

    /// The path without the query string.
    pub fn path_without_query(&self) -> String {
        let mut path = self.path();
        if let Some(q) = path.find('?') {
            path.truncate(q);
        }
        path
    }

    /// The authority (`:authority`, i.e. the Host), if any.
    pub fn authority(&self) -> Option<String> {
        self.header(":authority")
    }

    /// The scheme (`:scheme`), if any.
    pub fn scheme(&self) -> Option<String> {
        self.header(":scheme")
    }

    /// Rewrites the request target (`:path`) sent upstream.
    pub fn set_path(&mut self, path: &str) {
        self.set_header(":path", path)
    }
}

/// The upstream response a filter is looking at, valid during [`Filter::on_response`] only.
///
/// [`Filter::on_response`]: crate::Filter::on_response
#[derive(Debug)]
pub struct Response<'a> {
    context_id: u32,
    _callback: PhantomData<&'a mut ()>,
}

impl Response<'_> {
    pub(crate) fn new(context_id: u32) -> Self {
        Response {
            context_id,
            _callback: PhantomData,
        }
    }

    header_methods!(map::RESPONSE_HEADERS, "response");

    /// The response status (`:status`), if the host gave a valid one.
    pub fn status(&self) -> Option<u16> {
        self.header(":status")?.parse().ok()
    }
}

/// A host property (`proxy_get_property`) as raw bytes, `None` if the host has none at this
/// path (or cannot serialise it).
///
/// `path` is a list of segments, e.g. `&["source", "address"]`; on the wire they are joined
/// with `\0`. strait follows Envoy's encoding: strings are raw UTF-8, integers (`source.port`,
/// `destination.port`, `response.code`) 8-byte little-endian `i64`.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path).ok().flatten()
}

/// A string property (lossy UTF-8).
pub fn property_string(path: &[&str]) -> Option<String> {
    property(path).map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// An integer property: `None` unless the host returned exactly 8 bytes (little-endian `i64`).
pub fn property_i64(path: &[&str]) -> Option<i64> {
    let bytes: [u8; 8] = property(path)?.try_into().ok()?;
    Some(i64::from_le_bytes(bytes))
}

/// The client's numeric security identity: property `strait.source_identity` (path
/// `["strait", "source_identity"]`), a decimal number as a UTF-8 string. `None` when strait
/// does not know it (or it is not a number).
pub fn source_identity() -> Option<u64> {
    let raw = property(&["strait", "source_identity"])?;
    std::str::from_utf8(&raw).ok()?.trim().parse().ok()
}

/// The server's numeric security identity: property `strait.destination_identity` (path
/// `["strait", "destination_identity"]`), a decimal number as a UTF-8 string. `None` when
/// strait does not know it (or it is not a number).
pub fn destination_identity() -> Option<u64> {
    let raw = property(&["strait", "destination_identity"])?;
    std::str::from_utf8(&raw).ok()?.trim().parse().ok()
}

/// The listener's name: property `strait.listener` (path `["strait", "listener"]`).
pub fn listener() -> Option<String> {
    property_string(&["strait", "listener"])
}
