//! Counts requests per path prefix: one counter `requests_<name>` per configured route, plus
//! `requests_other` for requests no route matches. The longest matching prefix wins; the query
//! string is ignored. Every request is let through.
//!
//! ```json
//! {"routes": [{"prefix": "/api/", "name": "api"}, {"prefix": "/static/", "name": "static"}]}
//! ```

use serde::Deserialize;
use strait_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    routes: Vec<RouteConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteConfig {
    prefix: String,
    name: String,
}

struct Route {
    prefix: String,
    counter: Counter,
}

/// The filter.
pub struct PathCounter {
    /// Longest prefix first.
    routes: Vec<Route>,
    other: Counter,
}

/// The counter name for a route name.
pub fn metric_name(route: &str) -> String {
    format!("requests_{route}")
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Filter for PathCounter {
    fn configure(config: &[u8]) -> Result<Self, ConfigError> {
        let cfg: Config = strait_sdk::config::from_json(config)?;
        let mut names = std::collections::HashSet::new();
        let mut routes = Vec::with_capacity(cfg.routes.len());
        for (i, route) in cfg.routes.into_iter().enumerate() {
            if !valid_name(&route.name) {
                return Err(ConfigError::new(format!(
                    "routes[{i}].name `{}`: use lower-case letters, digits and `_`",
                    route.name
                )));
            }
            if route.name == "other" {
                return Err(ConfigError::new(format!(
                    "routes[{i}].name `other` is reserved for unmatched requests"
                )));
            }
            if !names.insert(route.name.clone()) {
                return Err(ConfigError::new(format!(
                    "routes[{i}].name `{}` is used twice",
                    route.name
                )));
            }
            if !route.prefix.starts_with('/') {
                return Err(ConfigError::new(format!(
                    "routes[{i}].prefix `{}` must start with `/`",
                    route.prefix
                )));
            }
            routes.push(Route {
                counter: Counter::define(&metric_name(&route.name))?,
                prefix: route.prefix,
            });
        }
        // Longest prefix first, so the first match is the most specific one.
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Ok(PathCounter {
            routes,
            other: Counter::define(&metric_name("other"))?,
        })
    }

    fn on_request(&self, req: &mut Request<'_>) -> Decision {
        let path = req.path_without_query();
        let counter = self
            .routes
            .iter()
            .find(|r| path.starts_with(&r.prefix))
            .map_or(&self.other, |r| &r.counter);
        counter.increment(1);
        Decision::Allow
    }
}

strait_sdk::export_filter!(PathCounter, requests_only);

#[cfg(test)]
mod tests {
    use strait_sdk::testing::{Harness, TestRequest};

    use super::PathCounter;

    const CONFIG: &str = r#"{"routes":[
        {"prefix":"/api/","name":"api"},
        {"prefix":"/api/admin/","name":"api_admin"},
        {"prefix":"/static/","name":"static"}
    ]}"#;

    #[test]
    fn counts_per_prefix_and_other() {
        let mut h = Harness::<PathCounter>::new(CONFIG).expect("valid config");
        assert_eq!(
            h.metric_names(),
            [
                "requests_api",
                "requests_api_admin",
                "requests_static",
                "requests_other"
            ]
        );
        for path in [
            "/api/users",
            "/api/?q=/static/",
            "/api/admin/x",
            "/static/app.js",
            "/",
            "/apix",
            "/static?x",
        ] {
            assert!(h.request(TestRequest::get(path)).allowed(), "{path}");
        }
        assert_eq!(h.metric("requests_api"), Some(2));
        assert_eq!(
            h.metric("requests_api_admin"),
            Some(1),
            "longest prefix wins"
        );
        assert_eq!(h.metric("requests_static"), Some(1));
        assert_eq!(h.metric("requests_other"), Some(3));
    }

    #[test]
    fn counters_start_at_zero_and_survive_reconfiguration() {
        let mut h = Harness::<PathCounter>::new(CONFIG).expect("valid config");
        assert_eq!(h.metric("requests_api"), Some(0));
        h.request(TestRequest::get("/api/a"));
        h.reconfigure(r#"{"routes":[{"prefix":"/api/","name":"api"}]}"#)
            .expect("valid config");
        h.request(TestRequest::get("/api/b"));
        h.request(TestRequest::get("/static/x"));
        assert_eq!(h.metric("requests_api"), Some(2));
        assert_eq!(h.metric("requests_static"), Some(0), "no longer counted");
        assert_eq!(h.metric("requests_other"), Some(1));
    }

    #[test]
    fn no_routes_counts_everything_as_other() {
        let mut h = Harness::<PathCounter>::new(r#"{"routes":[]}"#).expect("valid config");
        h.request(TestRequest::get("/a"));
        assert_eq!(h.metric("requests_other"), Some(1));
    }

    #[test]
    fn bad_configs_are_rejected() {
        for (config, why) in [
            ("", "missing field `routes`"),
            (
                r#"{"routes":[{"prefix":"/a","name":"Api"}]}"#,
                "use lower-case letters",
            ),
            (r#"{"routes":[{"prefix":"/a","name":"other"}]}"#, "reserved"),
            (
                r#"{"routes":[{"prefix":"/a","name":"a"},{"prefix":"/b","name":"a"}]}"#,
                "used twice",
            ),
            (
                r#"{"routes":[{"prefix":"a","name":"a"}]}"#,
                "must start with `/`",
            ),
        ] {
            let err = Harness::<PathCounter>::new(config).err().expect(config);
            assert!(err.message().contains(why), "{config}: {}", err.message());
        }
    }
}
