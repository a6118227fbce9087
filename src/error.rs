//! Error types. Io errors keep the operation and the path they failed on; every error that
//! can reach a client maps to one Kafka error code.

use std::path::{Path, PathBuf};

pub use kafka_protocol::error::ResponseError as KafkaCode;

/// Why a request frame could not be answered; each ends its connection, as Kafka closes a
/// connection whose request it cannot parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame of {0} bytes has no request header")]
    NoHeader(usize),
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("{api:?} v{version} is not supported (served: v{min}..=v{max})")]
    UnsupportedVersion {
        api: kafka_protocol::messages::ApiKey,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("{api:?} v{version}: bad request header: {reason}")]
    BadHeader {
        api: kafka_protocol::messages::ApiKey,
        version: i16,
        reason: String,
    },
    #[error("{api:?} v{version}: malformed body: {reason}")]
    Malformed {
        api: kafka_protocol::messages::ApiKey,
        version: i16,
        reason: String,
    },
    /// A decoded request no registered handler takes (the registry test rules it out).
    #[error("no handler for {0}")]
    Unhandled(String),
    /// A response that cannot be encoded: a broker bug, never the client's doing.
    #[error("encoding a response: {0}")]
    Encode(String),
    /// What a SASL session may not do (anything before it authenticates, a failed login in
    /// the unframed flow).
    #[error("SASL: {0}")]
    Sasl(String),
}

/// A failure of the storage layer, with what was being done and to which file.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt log {path} at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("metadata file {path}: {reason}")]
    Metadata { path: PathBuf, reason: String },
}

impl StorageError {
    pub fn io(op: &'static str, path: &Path, source: impl Into<std::io::Error>) -> Self {
        StorageError::Io {
            op,
            path: path.to_path_buf(),
            source: source.into(),
        }
    }

    /// The same failure, for another append that shared the write (the I/O error itself
    /// cannot be cloned: its kind and message are kept).
    pub fn for_another_waiter(&self) -> StorageError {
        match self {
            StorageError::Io { op, path, source } => StorageError::Io {
                op,
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            StorageError::Corrupt { path, position, reason } => StorageError::Corrupt {
                path: path.clone(),
                position: *position,
                reason: reason.clone(),
            },
            StorageError::Metadata { path, reason } => StorageError::Metadata {
                path: path.clone(),
                reason: reason.clone(),
            },
        }
    }

    /// The code a producer or consumer of the affected partition is answered with.
    pub fn kafka_code(&self) -> KafkaCode {
        KafkaCode::KafkaStorageError
    }
}

/// Turns a glommio result into a storage result that names the operation and file.
pub trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, StorageError>;
}

impl<T, E: Into<std::io::Error>> IoContext<T> for Result<T, E> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, StorageError> {
        self.map_err(|source| StorageError::io(op, path, source))
    }
}

/// A configuration that cannot be used, with the key and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("config {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}
