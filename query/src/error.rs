//! The engine's error type, in Athena's categories: the user's mistake, an internal failure, a
//! throttled or conflicting call worth retrying, a limit exceeded, or a cancellation.

use datafusion::common::DataFusionError;

use crate::meter::LimitExceeded;

/// What kind of failure an error is, as Athena reports it (`ErrorCategory`, `ErrorType`):
/// front ends map it to exit codes, HTTP statuses and retry decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    /// Bad SQL, a missing table, bad data: fix the statement or the data.
    User,
    /// A failure inside Quarry or its storage that is not the user's doing.
    Internal,
    /// Throttled, or another writer changed the catalog first: retrying may succeed.
    Retryable,
    /// `--max-bytes-scanned` (or another limit) stopped the statement.
    LimitExceeded,
    /// The user cancelled the statement.
    Cancelled,
}

impl ErrorCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Internal => "INTERNAL",
            Self::Retryable => "RETRYABLE",
            Self::LimitExceeded => "LIMIT_EXCEEDED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

/// Errors of a statement.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The statement cannot run as written; the message says what to change.
    #[error("{message}")]
    User { message: String },

    #[error("{message}")]
    Internal { message: String },

    #[error(transparent)]
    Catalog(#[from] quarry_catalog::Error),

    #[error(transparent)]
    Lake(#[from] quarry_lake::Error),

    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn user(message: impl Into<String>) -> Self {
        Self::User {
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal {
            message: message.into(),
        }
    }

    /// Athena's category of this error.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Self::User { .. } => ErrorCategory::User,
            Self::Internal { .. } => ErrorCategory::Internal,
            Self::Catalog(e) => catalog_category(e),
            Self::Lake(e) => lake_category(e),
            Self::DataFusion(e) => datafusion_category(e),
        }
    }
}

fn catalog_category(e: &quarry_catalog::Error) -> ErrorCategory {
    use quarry_catalog::Error as C;
    match e {
        C::Conflict { .. } | C::Remote { .. } => ErrorCategory::Retryable,
        C::Open { .. } | C::Store { .. } | C::Corrupt { .. } => ErrorCategory::Internal,
        _ => ErrorCategory::User,
    }
}

fn lake_category(e: &quarry_lake::Error) -> ErrorCategory {
    use quarry_lake::Error as L;
    match e {
        L::Cancelled => ErrorCategory::Cancelled,
        L::Object { .. } | L::Write { .. } => ErrorCategory::Retryable,
        _ => ErrorCategory::User,
    }
}

fn datafusion_category(e: &DataFusionError) -> ErrorCategory {
    // A limit or a cancellation anywhere in the chain decides, whatever wraps it.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.downcast_ref::<LimitExceeded>().is_some() {
            return ErrorCategory::LimitExceeded;
        }
        if err.downcast_ref::<crate::engine::Cancelled>().is_some() {
            return ErrorCategory::Cancelled;
        }
        source = err.source();
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        // Out of memory under `--memory-limit`: the statement needs more than the user allowed
        // (Athena's "exhausted resources" is the user's to fix, too).
        if let Some(DataFusionError::ResourcesExhausted(_)) = err.downcast_ref::<DataFusionError>()
        {
            return ErrorCategory::User;
        }
        if let Some(c) = err.downcast_ref::<quarry_catalog::Error>() {
            return catalog_category(c);
        }
        if let Some(l) = err.downcast_ref::<quarry_lake::Error>() {
            return lake_category(l);
        }
        if let Some(DataFusionError::ObjectStore(_) | DataFusionError::IoError(_)) =
            err.downcast_ref::<DataFusionError>()
        {
            return ErrorCategory::Retryable;
        }
        source = err.source();
    }
    // DataFusion sometimes flattens errors from streams into text.
    if e.to_string().contains("--max-bytes-scanned limit") {
        return ErrorCategory::LimitExceeded;
    }
    match e {
        DataFusionError::Internal(_) => ErrorCategory::Internal,
        _ => ErrorCategory::User,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_cause() {
        let limit = DataFusionError::External(Box::new(LimitExceeded { read: 2, limit: 1 }));
        assert_eq!(Error::from(limit).category(), ErrorCategory::LimitExceeded);
        // As the metered store reports it: inside an object store error.
        let store = object_store::Error::Generic {
            store: "metered",
            source: Box::new(LimitExceeded { read: 2, limit: 1 }),
        };
        let wrapped = DataFusionError::ObjectStore(Box::new(store));
        assert_eq!(
            Error::from(wrapped).category(),
            ErrorCategory::LimitExceeded
        );
        let conflict = quarry_catalog::Error::Conflict {
            what: "t".into(),
            expected: Some(1),
            found: Some(2),
        };
        assert_eq!(Error::from(conflict).category(), ErrorCategory::Retryable);
        // Out of memory under --memory-limit, however DataFusion wraps it: the user's to fix.
        let memory = DataFusionError::Context(
            "sorting".into(),
            Box::new(DataFusionError::ResourcesExhausted("pool".into())),
        );
        assert_eq!(Error::from(memory).category(), ErrorCategory::User);
        let plan = DataFusionError::Plan("table x not found".into());
        assert_eq!(Error::from(plan).category(), ErrorCategory::User);
        assert_eq!(Error::user("bad").category(), ErrorCategory::User);
    }
}
