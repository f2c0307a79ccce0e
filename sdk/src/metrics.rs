//! Metrics kept by the host (`proxy_define_metric`, `proxy_increment_metric`, …) and exported
//! by strait on its admin `/metrics`.
//!
//! Define metrics in [`Filter::configure`](crate::Filter::configure) and keep the handles in the
//! filter. Defining the same name again returns the same metric. Use Prometheus-friendly names
//! (`[a-zA-Z_][a-zA-Z0-9_]*`), e.g. `requests_api`.

use crate::abi::metric;
use crate::errors::HostError;
use crate::hostcalls;
use crate::logging::{log, Level};

fn report(err: HostError) {
    // Metrics must never break a request; a failing update means a broken host, worth a line.
    log(
        Level::Warn,
        &format!("strait-sdk: metric update failed: {err}"),
    );
}

/// A monotonically increasing counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    id: u32,
}

impl Counter {
    /// Defines (or finds) the counter `name`.
    pub fn define(name: &str) -> Result<Counter, HostError> {
        hostcalls::define_metric(metric::COUNTER, name).map(|id| Counter { id })
    }

    /// Adds `delta`.
    pub fn increment(&self, delta: u64) {
        let delta = i64::try_from(delta).unwrap_or(i64::MAX);
        if let Err(err) = hostcalls::increment_metric(self.id, delta) {
            report(err);
        }
    }

    /// The current value, as the host reports it.
    pub fn value(&self) -> Result<u64, HostError> {
        hostcalls::get_metric(self.id)
    }

    /// The host's id for this metric.
    pub fn id(&self) -> u32 {
        self.id
    }
}

/// A value that goes up and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gauge {
    id: u32,
}

impl Gauge {
    /// Defines (or finds) the gauge `name`.
    pub fn define(name: &str) -> Result<Gauge, HostError> {
        hostcalls::define_metric(metric::GAUGE, name).map(|id| Gauge { id })
    }

    /// Sets the value (`proxy_record_metric`; the ABI carries it as a `u64`, so a negative value
    /// travels as its two's complement).
    pub fn set(&self, value: i64) {
        if let Err(err) = hostcalls::record_metric(self.id, value as u64) {
            report(err);
        }
    }

    /// Adds `delta` (may be negative).
    pub fn add(&self, delta: i64) {
        if let Err(err) = hostcalls::increment_metric(self.id, delta) {
            report(err);
        }
    }

    /// The current value, as the host reports it.
    pub fn value(&self) -> Result<i64, HostError> {
        hostcalls::get_metric(self.id).map(|v| v as i64)
    }

    /// The host's id for this metric.
    pub fn id(&self) -> u32 {
        self.id
    }
}

/// A distribution of observed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Histogram {
    id: u32,
}

impl Histogram {
    /// Defines (or finds) the histogram `name`.
    pub fn define(name: &str) -> Result<Histogram, HostError> {
        hostcalls::define_metric(metric::HISTOGRAM, name).map(|id| Histogram { id })
    }

    /// Records one observation.
    pub fn record(&self, value: u64) {
        if let Err(err) = hostcalls::record_metric(self.id, value) {
            report(err);
        }
    }

    /// The host's id for this metric.
    pub fn id(&self) -> u32 {
        self.id
    }
}
