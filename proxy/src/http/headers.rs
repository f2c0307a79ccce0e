//! Header rules of a proxy (RFC 9110 §7.6): hop-by-hop removal, `x-forwarded-*`, `via`, and
//! an HTTP/2 request's `cookie` fields joined into one (RFC 9113 §8.2.3).

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Version;

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// Whether `name` is one of [`HOP_BY_HOP`], in any case.
fn is_listed_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// The protocol a request asks to switch to (`Connection: upgrade` + `Upgrade: X`), if any.
pub fn upgrade_protocol(h: &HeaderMap) -> Option<HeaderValue> {
    let asks = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if asks {
        h.get(header::UPGRADE).cloned()
    } else {
        None
    }
}

/// Removes hop-by-hop headers and those named in `Connection`. `te: trailers` is kept (gRPC
/// needs it end to end); with `upgrade`, the `Connection: upgrade` / `Upgrade` pair is kept.
pub fn strip_hop_by_hop(h: &mut HeaderMap, upgrade: Option<&HeaderValue>) {
    // Fast path: most messages carry none of them, and comparing standard names is cheap
    // where removing by string name hashes each one.
    if upgrade.is_none() && !h.keys().any(is_hop_by_hop) {
        return;
    }
    // Names listed in `Connection` that the fixed list below does not remove anyway (most
    // messages list only `keep-alive`, and then nothing is allocated here). `host` stays
    // whatever is listed: the upstream must route what the filters judged.
    let listed: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !is_listed_hop_by_hop(t) && !t.eq_ignore_ascii_case("host"))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in listed {
        h.remove(name);
    }
    let te_trailers = h
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    for name in HOP_BY_HOP {
        h.remove(name);
    }
    if te_trailers {
        h.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if let Some(proto) = upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, proto.clone());
    }
}

/// Joins the `cookie` fields of an HTTP/2 request into one, with `"; "` between them, as the
/// request arrives. HTTP/2 clients send each cookie as its own field so that HPACK can index
/// them one by one (RFC 9113 §8.2.3), and the same section requires them to be concatenated
/// this way before the request enters an HTTP/1.1 connection: there only one `Cookie` line is
/// allowed (RFC 6265 §5.4), and servers commonly read just the first one. Joined on arrival,
/// not only for HTTP/1.1 upstreams, so filters see one field whatever the upstream speaks, as
/// under Envoy (one field is valid HTTP/2 too).
pub fn join_cookies(h: &mut HeaderMap) {
    if h.get_all(header::COOKIE).iter().nth(1).is_none() {
        return;
    }
    let joined = join_values(
        h.get_all(header::COOKIE).iter().map(|v| v.as_bytes()),
        b"; ",
    );
    // Valid field values joined by "; " are a valid field value.
    if let Some(Ok(v)) = joined.map(|j| HeaderValue::from_bytes(&j)) {
        h.insert(header::COOKIE, v);
    }
}

/// The values of one field joined with `sep`; `None` when there are none.
pub(crate) fn join_values<'a>(
    mut values: impl Iterator<Item = &'a [u8]>,
    sep: &[u8],
) -> Option<Vec<u8>> {
    let mut v = values.next()?.to_vec();
    for x in values {
        v.extend_from_slice(sep);
        v.extend_from_slice(x);
    }
    Some(v)
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    *name == header::CONNECTION
        || *name == header::TE
        || *name == header::TRAILER
        || *name == header::TRANSFER_ENCODING
        || *name == header::UPGRADE
        || HOP_BY_HOP.contains(&name.as_str())
}

fn via_value(v: Version) -> &'static str {
    match v {
        Version::HTTP_2 => "2 strait",
        Version::HTTP_10 => "1.0 strait",
        _ => "1.1 strait",
    }
}

/// A connection's client address with its `x-forwarded-for` form, formatted once per
/// connection: a request without an incoming `x-forwarded-for` shares it (no allocation).
#[derive(Debug, Clone)]
pub struct ClientAddr {
    ip: IpAddr,
    value: Option<HeaderValue>,
}

impl ClientAddr {
    pub fn new(ip: IpAddr) -> Self {
        Self {
            ip,
            value: HeaderValue::from_str(&ip.to_string()).ok(),
        }
    }

    /// The address as `x-forwarded-for` gets it.
    pub fn as_bytes(&self) -> &[u8] {
        self.value.as_ref().map_or(b"", HeaderValue::as_bytes)
    }
}

/// Appends this hop to `via` and the client to `x-forwarded-for`; sets `x-forwarded-proto`.
pub fn add_forwarded(h: &mut HeaderMap, client: &ClientAddr, tls: bool, version: Version) {
    let xff = match h.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) => {
            let mut joined = String::new();
            for v in h
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
            {
                joined.push_str(v);
                joined.push_str(", ");
            }
            if joined.is_empty() {
                joined.push_str(prev);
                joined.push_str(", ");
            }
            joined.push_str(&client.ip.to_string());
            HeaderValue::from_str(&joined).ok()
        }
        // The usual case: the connection's preformatted value, shared.
        None => client.value.clone(),
    };
    if let Some(v) = xff {
        h.insert(X_FORWARDED_FOR.clone(), v);
    }
    h.insert(
        X_FORWARDED_PROTO.clone(),
        HeaderValue::from_static(if tls { "https" } else { "http" }),
    );
    add_via(h, version);
}

/// Appends this hop to `via`.
pub fn add_via(h: &mut HeaderMap, version: Version) {
    h.append(header::VIA, HeaderValue::from_static(via_value(version)));
}

/// Approximate size of a request head as it was on the wire (name, value, separators).
pub fn head_size(h: &HeaderMap) -> usize {
    h.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum()
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn strips_listed_and_standard_hop_by_hop() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret, Host"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers, deflate"),
            ("x-kept", "yes"),
            ("host", "svc"),
        ]);
        strip_hop_by_hop(&mut h, None);
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(h["te"], "trailers");
        assert_eq!(h["x-kept"], "yes");
        // A listing cannot take `host` away: the upstream routes what the filters judged.
        assert_eq!(h["host"], "svc");
    }

    #[test]
    fn keeps_upgrade_pair_for_websocket() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        let up = upgrade_protocol(&h);
        assert_eq!(up.as_ref().map(|v| v.as_bytes()), Some(&b"websocket"[..]));
        strip_hop_by_hop(&mut h, up.as_ref());
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["sec-websocket-key"], "k");
    }

    #[test]
    fn cookie_fields_are_joined_in_order() {
        let mut h = map(&[("cookie", "a=1"), ("x-other", "o"), ("cookie", "b=2; c=3")]);
        join_cookies(&mut h);
        let cookies: Vec<_> = h.get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1; b=2; c=3"]);
        assert_eq!(h["x-other"], "o");
        // An empty field still gets its delimiter, as the RFC concatenates octet strings.
        let mut h = map(&[("cookie", ""), ("cookie", "b=2")]);
        join_cookies(&mut h);
        assert_eq!(h["cookie"], "; b=2");
        // One field or none: left as it is.
        let mut h = map(&[("cookie", "a=1")]);
        join_cookies(&mut h);
        assert_eq!(h["cookie"], "a=1");
        let mut h = map(&[("x-other", "o")]);
        join_cookies(&mut h);
        assert!(h.get("cookie").is_none());
    }

    #[test]
    fn forwarded_headers_append() {
        let mut h = map(&[("x-forwarded-for", "10.0.0.1"), ("via", "1.1 other")]);
        let client = ClientAddr::new("127.0.0.1".parse().expect("ip"));
        add_forwarded(&mut h, &client, false, Version::HTTP_11);
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        let via: Vec<_> = h.get_all("via").iter().collect();
        assert_eq!(via, ["1.1 other", "1.1 strait"]);
        // Without an incoming x-forwarded-for: the connection's value (IPv6 too).
        let client = ClientAddr::new("2001:db8::7".parse().expect("ip"));
        let mut h = HeaderMap::new();
        add_forwarded(&mut h, &client, true, Version::HTTP_2);
        assert_eq!(h["x-forwarded-for"], "2001:db8::7");
        assert_eq!(h["x-forwarded-proto"], "https");
    }
}
