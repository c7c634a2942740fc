//! Logging through the host's `tracing`.

use lattice::abi::LogLevel;

/// Logs `message` at `level` through the host. Prefer the macros.
pub fn log(level: LogLevel, message: &str) {
    crate::sys::log(level, message);
}

/// Whether the host records lines at `level`. The macros ask before they
/// format, so a disabled `debug!` costs one host call and no formatting.
pub fn log_enabled(level: LogLevel) -> bool {
    crate::sys::log_enabled(level)
}

/// Logs at trace level: `trace!("x = {x}")`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        if $crate::log_enabled($crate::LogLevel::Trace) {
            $crate::log($crate::LogLevel::Trace, &::std::format!($($arg)+))
        }
    };
}

/// Logs at debug level: `debug!("x = {x}")`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        if $crate::log_enabled($crate::LogLevel::Debug) {
            $crate::log($crate::LogLevel::Debug, &::std::format!($($arg)+))
        }
    };
}

/// Logs at info level: `info!("x = {x}")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        if $crate::log_enabled($crate::LogLevel::Info) {
            $crate::log($crate::LogLevel::Info, &::std::format!($($arg)+))
        }
    };
}

/// Logs at warn level: `warn!("x = {x}")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        if $crate::log_enabled($crate::LogLevel::Warn) {
            $crate::log($crate::LogLevel::Warn, &::std::format!($($arg)+))
        }
    };
}

/// Logs at error level: `error!("x = {x}")`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        if $crate::log_enabled($crate::LogLevel::Error) {
            $crate::log($crate::LogLevel::Error, &::std::format!($($arg)+))
        }
    };
}
