//! [`CliError`]: what ends a command early, and its exit code (2 for a usage mistake, 1 for everything else).

use std::fmt;
use std::process::ExitCode;

use switchboard_runtime::client::{ConnectError, RequestError};

/// A command that could not do its job.
#[derive(Debug)]
pub enum CliError {
    /// The command line asks for something impossible (exit code 2).
    Usage(String),
    /// The command failed while running (exit code 1).
    Failed(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            CliError::Failed(_) => ExitCode::from(1),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(why) | CliError::Failed(why) => f.write_str(why),
        }
    }
}

impl From<ConnectError> for CliError {
    fn from(e: ConnectError) -> Self {
        CliError::Usage(e.to_string())
    }
}

impl From<RequestError> for CliError {
    fn from(e: RequestError) -> Self {
        match e {
            // Bad arguments the server never saw (a channel name, a null event).
            RequestError::Refused(refusal) => CliError::Usage(refusal.to_string()),
            other => CliError::Failed(other.to_string()),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Failed(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_mistakes_exit_2_failures_1() {
        let usage = CliError::from(ConnectError::Unsupported { what: "wss".into() });
        assert_eq!(usage.exit_code(), ExitCode::from(2));
        let failed = CliError::from(RequestError::TimedOut);
        assert_eq!(failed.exit_code(), ExitCode::from(1));
        assert_eq!(failed.to_string(), "the request timed out");
    }
}
