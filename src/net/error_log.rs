//! Logging of per-connection errors that a client can cause at will: rate-limited, so a
//! flood of bad requests costs a few lines a second, and escaped, so control bytes a client
//! put in a string never reach the log raw. Every error is still counted in the shard's
//! metrics (`sluice_connection_errors_total`); only the log lines are thinned.
//!
//! Owned by one shard, touched only by its thread (plain `Cell`s).

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::constants::CONNECTION_ERROR_LOG_LINES_PER_SECOND_MAX;
use crate::text::escape;

/// How long one window of the rate limit lasts.
const WINDOW: Duration = Duration::from_secs(1);

/// A shard's rate limit on connection-error log lines.
pub struct ErrorLog {
    window_started: Cell<Instant>,
    lines_in_window: Cell<u32>,
    /// Errors not logged since the last line that was.
    suppressed: Cell<u64>,
}

impl Default for ErrorLog {
    fn default() -> ErrorLog {
        ErrorLog {
            window_started: Cell::new(Instant::now()),
            lines_in_window: Cell::new(0),
            suppressed: Cell::new(0),
        }
    }
}

impl ErrorLog {
    /// Logs `message` at INFO unless this window's lines are spent; a logged line says how
    /// many were left out before it.
    pub fn info(&self, message: &str) {
        let now = Instant::now();
        if now.duration_since(self.window_started.get()) >= WINDOW {
            self.window_started.set(now);
            self.lines_in_window.set(0);
        }
        if self.lines_in_window.get() >= CONNECTION_ERROR_LOG_LINES_PER_SECOND_MAX {
            self.suppressed.set(self.suppressed.get() + 1);
            return;
        }
        self.lines_in_window.set(self.lines_in_window.get() + 1);
        let message = escape(message);
        match self.suppressed.replace(0) {
            0 => tracing::info!("{message}"),
            left_out => tracing::info!("{message} ({left_out} similar connection errors not logged)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_limit_are_counted_not_logged() {
        let log = ErrorLog::default();
        for _ in 0..CONNECTION_ERROR_LOG_LINES_PER_SECOND_MAX + 7 {
            log.info("bad frame");
        }
        assert_eq!(log.lines_in_window.get(), CONNECTION_ERROR_LOG_LINES_PER_SECOND_MAX);
        assert_eq!(log.suppressed.get(), 7);
        // A new window logs again and reports what it left out.
        log.window_started.set(Instant::now() - WINDOW);
        log.info("bad frame");
        assert_eq!(log.suppressed.get(), 0);
        assert_eq!(log.lines_in_window.get(), 1);
    }
}
