//! Header-based allow list: a request passes only if header `header` has one of the `allowed`
//! values. Others get `deny_status` (403 by default) with a body naming the reason; gRPC calls
//! get `grpc-status: 7` (PERMISSION_DENIED) instead.
//!
//! ```json
//! {"header": "x-user", "allowed": ["alice", "bob"], "deny_status": 403}
//! ```

use std::collections::HashSet;

use serde::Deserialize;
use strait_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The header carrying the caller's name.
    header: String,
    /// The values that may pass (exact, case-sensitive match).
    allowed: Vec<String>,
    /// HTTP status for denied requests.
    #[serde(default = "default_deny_status")]
    deny_status: u16,
}

fn default_deny_status() -> u16 {
    403
}

/// The filter.
pub struct AllowList {
    header: String,
    allowed: HashSet<Vec<u8>>,
    deny_status: u16,
}

impl Filter for AllowList {
    fn configure(config: &[u8]) -> Result<Self, ConfigError> {
        let cfg: Config = strait_sdk::config::from_json(config)?;
        if cfg.header.is_empty() {
            return Err(ConfigError::new("`header` must not be empty"));
        }
        if !(400..=599).contains(&cfg.deny_status) {
            return Err(ConfigError::new(format!(
                "`deny_status` must be 400..=599, not {}",
                cfg.deny_status
            )));
        }
        Ok(AllowList {
            // HTTP/2 header names are lower case; strait matches names case-insensitively.
            header: cfg.header.to_ascii_lowercase(),
            allowed: cfg.allowed.into_iter().map(String::into_bytes).collect(),
            deny_status: cfg.deny_status,
        })
    }

    fn on_request(&self, req: &mut Request<'_>) -> Decision {
        let reason = match req.header_bytes(&self.header) {
            Some(value) if self.allowed.contains(&value) => return Decision::Allow,
            // The value itself is not echoed back: it is the caller's input.
            Some(_) => format!("{} is not in the allow list", self.header),
            None => format!("missing header {}", self.header),
        };
        if req.is_grpc() {
            Decision::deny_grpc(grpc::PERMISSION_DENIED, format!("denied: {reason}"))
        } else {
            Decision::deny_with(self.deny_status, format!("denied: {reason}\n"))
        }
    }
}

strait_sdk::export_filter!(AllowList, requests_only);

#[cfg(test)]
mod tests {
    use strait_sdk::testing::{Harness, TestRequest};

    use super::AllowList;

    const CONFIG: &str = r#"{"header":"x-user","allowed":["alice","bob"],"deny_status":403}"#;

    fn harness() -> Harness<AllowList> {
        Harness::new(CONFIG).expect("valid config")
    }

    #[test]
    fn listed_users_pass() {
        let mut h = harness();
        for user in ["alice", "bob"] {
            let out = h.request(TestRequest::get("/").header("x-user", user));
            assert!(out.allowed(), "{user}");
            assert_eq!(out.status(), None);
        }
    }

    #[test]
    fn others_are_denied_with_the_reason() {
        let mut h = harness();
        let out = h.request(TestRequest::get("/").header("x-user", "mallory"));
        assert_eq!(out.status(), Some(403));
        assert_eq!(out.body_text(), "denied: x-user is not in the allow list\n");
        assert!(!out.reached_upstream());

        let out = h.request(TestRequest::post("/"));
        assert_eq!(out.status(), Some(403));
        assert_eq!(out.body_text(), "denied: missing header x-user\n");
    }

    #[test]
    fn matching_is_exact() {
        let mut h = harness();
        for user in ["Alice", "alice ", "", "alicebob"] {
            let out = h.request(TestRequest::get("/").header("x-user", user));
            assert_eq!(out.status(), Some(403), "{user:?}");
        }
        // Non-UTF-8 bytes neither panic nor match.
        let out = h.request(TestRequest::get("/").header("x-user", [b'a', 0xff]));
        assert_eq!(out.status(), Some(403));
    }

    #[test]
    fn the_header_name_is_case_insensitive() {
        let mut h = Harness::<AllowList>::new(r#"{"header":"X-User","allowed":["bob"]}"#)
            .expect("valid config");
        assert!(h
            .request(TestRequest::get("/").header("x-user", "bob"))
            .allowed());
    }

    #[test]
    fn grpc_calls_get_permission_denied() {
        let mut h = harness();
        let out = h.request(TestRequest::grpc("pkg.Greeter", "Hello").header("x-user", "eve"));
        assert_eq!(out.status(), Some(200));
        assert_eq!(out.grpc_status(), Some(7));
        assert_eq!(out.body_text(), "denied: x-user is not in the allow list");

        let out = h.request(TestRequest::grpc("pkg.Greeter", "Hello").header("x-user", "bob"));
        assert!(out.allowed());
    }

    #[test]
    fn deny_status_is_configurable() {
        let mut h =
            Harness::<AllowList>::new(r#"{"header":"x-user","allowed":[],"deny_status":401}"#)
                .expect("valid config");
        assert_eq!(
            h.request(TestRequest::get("/").header("x-user", "bob"))
                .status(),
            Some(401)
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        for (config, why) in [
            ("", "missing field `header`"),
            (r#"{"header":"x-user"}"#, "missing field `allowed`"),
            (
                r#"{"header":"","allowed":[]}"#,
                "`header` must not be empty",
            ),
            (
                r#"{"header":"x","allowed":[],"deny_status":200}"#,
                "`deny_status` must be 400..=599",
            ),
            (
                r#"{"header":"x","allowed":[],"extra":1}"#,
                "unknown field `extra`",
            ),
        ] {
            let err = Harness::<AllowList>::new(config).err().expect(config);
            assert!(err.message().contains(why), "{config}: {}", err.message());
        }
    }
}
