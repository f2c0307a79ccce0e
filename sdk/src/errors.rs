//! Error types.

use std::fmt;

use crate::abi::Status;

/// A host call that did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostError {
    /// The host returned a status other than the ones the call expects.
    Status {
        /// The ABI function, e.g. `proxy_define_metric`.
        call: &'static str,
        /// What it returned.
        status: Status,
    },
    /// The host returned data the SDK could not decode (e.g. a malformed header map).
    Malformed {
        /// The ABI function.
        call: &'static str,
    },
}

impl HostError {
    /// The status the host returned, if that was the problem.
    pub fn status(&self) -> Option<Status> {
        match self {
            HostError::Status { status, .. } => Some(*status),
            HostError::Malformed { .. } => None,
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Status { call, status } => write!(f, "{call} returned {status}"),
            HostError::Malformed { call } => write!(f, "{call} returned malformed data"),
        }
    }
}

impl std::error::Error for HostError {}

/// Why a filter refused its configuration ([`crate::Filter::configure`]).
///
/// The SDK logs it at [`crate::Level::Error`] and makes `proxy_on_configure` return false, so
/// the host rejects the filter (and, at start-up, the whole configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    /// A configuration error with this explanation.
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
        }
    }

    /// The explanation.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl From<HostError> for ConfigError {
    fn from(err: HostError) -> Self {
        ConfigError::new(err.to_string())
    }
}

impl From<String> for ConfigError {
    fn from(message: String) -> Self {
        ConfigError::new(message)
    }
}

impl From<&str> for ConfigError {
    fn from(message: &str) -> Self {
        ConfigError::new(message)
    }
}

#[cfg(feature = "json")]
impl From<serde_json::Error> for ConfigError {
    fn from(err: serde_json::Error) -> Self {
        ConfigError::new(format!("invalid configuration: {err}"))
    }
}
