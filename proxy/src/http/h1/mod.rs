//! The native HTTP/1.1 forwarding path (`http1_engine: native`, the default): a hand-written
//! codec and one task per client connection instead of hyper's two HTTP/1 state machines,
//! for HTTP/1.1 clients of listeners with a cleartext HTTP/1.1 upstream, filters included.
//! Everything else is handed to hyper ([`conn::Served::HandOff`]); requests hyper serves
//! with no body still reach a cleartext HTTP/1.1 upstream through [`client`].

pub mod client;
pub mod codec;
pub mod conn;
mod filtered;
