//! Errors from lake I/O: each names the location or object involved.

/// Errors resolving locations and reading or writing lake objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot use location '{target}': {reason}")]
    Target { target: String, reason: String },

    #[error(
        "cannot build an object store for '{target}'; check AWS_REGION, credentials and AWS_ENDPOINT_URL"
    )]
    Store {
        target: String,
        source: object_store::Error,
    },

    #[error("'{location}' is not a location URL: {reason}")]
    BadLocation { location: String, reason: String },

    #[error("{operation} {url} failed")]
    Object {
        operation: &'static str,
        url: String,
        source: object_store::Error,
    },

    #[error("writing {url} failed: {reason}")]
    Write { url: String, reason: String },

    /// What was asked cannot be written as asked (a user's mistake, not a store failure).
    #[error("cannot write {url}: {reason}")]
    Invalid { url: String, reason: String },

    #[error("{url}: {reason}")]
    Data {
        url: String,
        source: Box<dyn std::error::Error + Send + Sync>,
        reason: String,
    },

    #[error("cancelled")]
    Cancelled,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
