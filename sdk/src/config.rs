//! Helpers for reading a filter's configuration.

use crate::errors::ConfigError;

/// Parses the configuration as JSON into `T` (strait hands a YAML mapping under the filter's
/// `config:` over as JSON). An empty (or all-whitespace) configuration parses as `{}`, so a
/// struct whose fields all have defaults accepts "no config".
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Cfg {
///     #[serde(default)]
///     allowed: Vec<String>,
/// }
/// let cfg: Cfg = strait_sdk::config::from_json(br#"{"allowed":["a"]}"#).unwrap();
/// assert_eq!(cfg.allowed, ["a"]);
/// let empty: Cfg = strait_sdk::config::from_json(b"").unwrap();
/// assert!(empty.allowed.is_empty());
/// assert!(strait_sdk::config::from_json::<Cfg>(b"{").is_err());
/// ```
#[cfg(feature = "json")]
pub fn from_json<T: serde::de::DeserializeOwned>(config: &[u8]) -> Result<T, ConfigError> {
    if config.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_slice(b"{}").map_err(ConfigError::from);
    }
    serde_json::from_slice(config).map_err(ConfigError::from)
}

/// The configuration as UTF-8 text (for filters with a non-JSON format).
pub fn as_str(config: &[u8]) -> Result<&str, ConfigError> {
    std::str::from_utf8(config)
        .map_err(|e| ConfigError::new(format!("configuration is not UTF-8: {e}")))
}
