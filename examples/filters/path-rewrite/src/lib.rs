//! Prefix rewriting of the request path (`:path`): the first rule whose `prefix` starts the
//! path replaces that prefix with `replace`; the rest of the path and the query string stay.
//!
//! ```json
//! {"rules": [{"prefix": "/old/", "replace": "/new/"}], "original_path_header": "x-original-path"}
//! ```
//!
//! `original_path_header` is optional: when set, a rewritten request carries its original path
//! in that header.

use serde::Deserialize;
use strait_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    rules: Vec<Rule>,
    #[serde(default)]
    original_path_header: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    prefix: String,
    replace: String,
}

/// The filter.
pub struct PathRewrite {
    rules: Vec<Rule>,
    original_path_header: Option<String>,
}

impl PathRewrite {
    /// The rewritten path, if a rule applies.
    fn rewrite(&self, path: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| {
            let rest = path.strip_prefix(rule.prefix.as_str())?;
            Some(format!("{}{rest}", rule.replace))
        })
    }
}

impl Filter for PathRewrite {
    fn configure(config: &[u8]) -> Result<Self, ConfigError> {
        let cfg: Config = strait_sdk::config::from_json(config)?;
        if cfg.rules.is_empty() {
            return Err(ConfigError::new("`rules` must not be empty"));
        }
        for (i, rule) in cfg.rules.iter().enumerate() {
            if !rule.prefix.starts_with('/') || !rule.replace.starts_with('/') {
                return Err(ConfigError::new(format!(
                    "rules[{i}]: `prefix` and `replace` must start with `/`"
                )));
            }
        }
        if cfg.original_path_header.as_deref() == Some("") {
            return Err(ConfigError::new("`original_path_header` must not be empty"));
        }
        Ok(PathRewrite {
            rules: cfg.rules,
            original_path_header: cfg.original_path_header,
        })
    }

    fn on_request(&self, req: &mut Request<'_>) -> Decision {
        let path = req.path();
        if let Some(new_path) = self.rewrite(&path) {
            if let Some(header) = &self.original_path_header {
                req.set_header(header, &path);
            }
            strait_sdk::debug!("rewrite {path} -> {new_path}");
            req.set_path(&new_path);
        }
        Decision::Allow
    }
}

strait_sdk::export_filter!(PathRewrite, requests_only);

#[cfg(test)]
mod tests {
    use strait_sdk::testing::{Harness, TestRequest};

    use super::PathRewrite;

    fn harness(config: &str) -> Harness<PathRewrite> {
        Harness::new(config).expect("valid config")
    }

    #[test]
    fn matching_prefix_is_replaced_and_the_rest_kept() {
        let mut h = harness(r#"{"rules":[{"prefix":"/old/","replace":"/new/"}]}"#);
        let out = h.request(TestRequest::get("/old/a/b?x=1&y=/old/"));
        assert!(out.allowed());
        assert_eq!(out.request_header(":path"), Some("/new/a/b?x=1&y=/old/"));
        assert_eq!(out.request_header("x-original-path"), None);
    }

    #[test]
    fn other_paths_are_untouched() {
        let mut h = harness(r#"{"rules":[{"prefix":"/old/","replace":"/new/"}]}"#);
        for path in ["/", "/old", "/older/x", "/x/old/"] {
            let out = h.request(TestRequest::get(path));
            assert!(out.allowed());
            assert_eq!(out.request_header(":path"), Some(path));
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let mut h = harness(
            r#"{"rules":[
                {"prefix":"/api/v1/","replace":"/v1/"},
                {"prefix":"/api/","replace":"/"}
            ]}"#,
        );
        let out = h.request(TestRequest::get("/api/v1/users"));
        assert_eq!(out.request_header(":path"), Some("/v1/users"));
        let out = h.request(TestRequest::get("/api/health"));
        assert_eq!(out.request_header(":path"), Some("/health"));
    }

    #[test]
    fn original_path_header() {
        let mut h = harness(
            r#"{"rules":[{"prefix":"/old/","replace":"/"}],"original_path_header":"x-original-path"}"#,
        );
        let out = h.request(TestRequest::get("/old/x?q"));
        assert_eq!(out.request_header(":path"), Some("/x?q"));
        assert_eq!(out.request_header("x-original-path"), Some("/old/x?q"));
        let out = h.request(TestRequest::get("/kept"));
        assert_eq!(out.request_header("x-original-path"), None);
    }

    #[test]
    fn bad_configs_are_rejected() {
        for (config, why) in [
            ("", "missing field `rules`"),
            (r#"{"rules":[]}"#, "`rules` must not be empty"),
            (
                r#"{"rules":[{"prefix":"old","replace":"/new/"}]}"#,
                "rules[0]: `prefix` and `replace` must start with `/`",
            ),
            (r#"{"rules":[{"prefix":"/a"}]}"#, "missing field `replace`"),
        ] {
            let err = Harness::<PathRewrite>::new(config).err().expect(config);
            assert!(err.message().contains(why), "{config}: {}", err.message());
        }
    }
}
