//! The classes of failure that decide exit codes; each layer's error type says which class it is
//! (`main` walks an error chain to find it).

use std::fmt;

/// The class of a failure, which decides the process exit code (documented in README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitClass {
    /// A bug or an unexpected local I/O problem.
    Internal,
    /// Bad flags, bad configuration, a location URL that cannot be used.
    Usage,
    /// lifeboat refused to act because acting could lose or corrupt data.
    Refused,
    /// An archive, index or manifest is corrupt, truncated, missing or does not match its digests.
    Integrity,
    /// Object storage or the network failed (unreachable, credentials, missing bucket).
    Storage,
    /// Another run holds the cluster's lock in the location.
    LockBusy,
    /// The backup was committed but at least one copy to another location failed.
    CopyFailed,
    /// A location's newest backup is older than the RPO, or a copy lags behind.
    RpoBreach,
    /// A clone applied some objects but not all (the report says which and why).
    Partial,
    /// `doctor`: some checks warn, none fails.
    Warnings,
    /// `doctor`: at least one check fails.
    Failures,
    /// `drill`, `standby refresh`, `failover`: the coordinator did not serve in time, or what it
    /// serves does not match the backup (validation failed). Nothing live was changed by a drill.
    NotServing,
    /// `standby refresh`, `failover`: a step after the stop failed; the previous state was put
    /// back and serves again.
    RolledBack,
    /// `standby refresh`, `failover`: a step after the stop failed and the previous state could
    /// not be put back or does not serve: the standby is down, act now (the message says how).
    StandbyDown,
    /// Stopped by SIGINT/SIGTERM after cleaning up (the shell's 128 + SIGINT).
    Interrupted,
}

impl ExitClass {
    /// The process exit code for this class.
    pub fn code(self) -> u8 {
        match self {
            ExitClass::Internal => 1,
            ExitClass::Usage => 2,
            ExitClass::Refused => 3,
            ExitClass::Integrity => 4,
            ExitClass::Storage => 5,
            ExitClass::LockBusy => 6,
            ExitClass::CopyFailed => 7,
            ExitClass::RpoBreach => 8,
            ExitClass::Partial => 9,
            ExitClass::Warnings => 10,
            ExitClass::Failures => 11,
            ExitClass::NotServing => 12,
            ExitClass::RolledBack => 13,
            ExitClass::StandbyDown => 14,
            ExitClass::Interrupted => 130,
        }
    }
}

impl fmt::Display for ExitClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ExitClass::Internal => "internal",
            ExitClass::Usage => "usage",
            ExitClass::Refused => "refused",
            ExitClass::Integrity => "integrity",
            ExitClass::Storage => "storage",
            ExitClass::LockBusy => "lock-busy",
            ExitClass::CopyFailed => "copy-failed",
            ExitClass::RpoBreach => "rpo-breach",
            ExitClass::Partial => "partial",
            ExitClass::Warnings => "warnings",
            ExitClass::Failures => "failures",
            ExitClass::NotServing => "not-serving",
            ExitClass::RolledBack => "rolled-back",
            ExitClass::StandbyDown => "standby-down",
            ExitClass::Interrupted => "interrupted",
        };
        f.write_str(name)
    }
}

/// Implemented by every layer's error type so that `main` can pick an exit code from an error chain.
pub trait Classify {
    fn exit_class(&self) -> ExitClass;
}

/// An error and its sources in one line, `outer: inner: ...` (reqwest hides the cause, such as a
/// TLS or DNS failure, behind a generic top-level message).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod chain_tests {
    #[derive(Debug, thiserror::Error)]
    #[error("error sending request")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn an_error_is_told_with_its_sources() {
        let outer = Outer(std::io::Error::other("certificate expired"));
        assert_eq!(
            super::chain(&outer),
            "error sending request: certificate expired"
        );
        assert_eq!(super::chain(&std::io::Error::other("refused")), "refused");
    }
}
