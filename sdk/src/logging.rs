//! Logging through the host (`proxy_log`).

use crate::hostcalls;

/// `proxy_log_level_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum Level {
    /// `TRACE` = 0.
    Trace = 0,
    /// `DEBUG` = 1.
    Debug = 1,
    /// `INFO` = 2.
    Info = 2,
    /// `WARN` = 3.
    Warn = 3,
    /// `ERROR` = 4.
    Error = 4,
    /// `CRITICAL` = 5.
    Critical = 5,
}

impl Level {
    /// The level for a raw ABI value, if it is one.
    pub const fn from_raw(raw: u32) -> Option<Level> {
        match raw {
            0 => Some(Level::Trace),
            1 => Some(Level::Debug),
            2 => Some(Level::Info),
            3 => Some(Level::Warn),
            4 => Some(Level::Error),
            5 => Some(Level::Critical),
            _ => None,
        }
    }
}

/// Logs `message` at `level` through the host. The host decides whether and where it appears
/// (and may drop it, e.g. below its configured level); a failing log call is ignored.
pub fn log(level: Level, message: &str) {
    // Nothing sensible can be done if logging itself fails.
    let _ = hostcalls::log(level as u32, message);
}

/// `trace!("format {}", args)`: [`log`] at [`Level::Trace`].
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log($crate::Level::Trace, &::std::format!($($arg)+)) };
}

/// `debug!("format {}", args)`: [`log`] at [`Level::Debug`].
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log($crate::Level::Debug, &::std::format!($($arg)+)) };
}

/// `info!("format {}", args)`: [`log`] at [`Level::Info`].
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log($crate::Level::Info, &::std::format!($($arg)+)) };
}

/// `warn!("format {}", args)`: [`log`] at [`Level::Warn`].
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log($crate::Level::Warn, &::std::format!($($arg)+)) };
}

/// `error!("format {}", args)`: [`log`] at [`Level::Error`].
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log($crate::Level::Error, &::std::format!($($arg)+)) };
}
