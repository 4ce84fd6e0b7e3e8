//! API errors in Athena's shapes: `{"__type": "InvalidRequestException", "Message": ..,
//! "AthenaErrorCode": ..}` with the HTTP status clients expect.

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    /// `InvalidRequestException`, `InternalServerException`, `ResourceNotFoundException`, ...
    pub kind: &'static str,
    pub message: String,
    /// `AthenaErrorCode` of an `InvalidRequestException`.
    pub code: Option<&'static str>,
    pub status: u16,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: "InvalidRequestException",
            message: message.into(),
            code: Some("INVALID_INPUT"),
            status: 400,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            kind: "ResourceNotFoundException",
            message: message.into(),
            code: None,
            status: 400,
        }
    }

    pub fn metadata(message: impl Into<String>) -> Self {
        Self {
            kind: "MetadataException",
            message: message.into(),
            code: None,
            status: 400,
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            kind: "InternalServerException",
            message: message.into(),
            code: None,
            status: 500,
        }
    }

    pub fn auth(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            code: None,
            status: 400,
        }
    }

    pub fn body(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "__type": self.kind, "Message": self.message });
        if let Some(c) = self.code {
            v["AthenaErrorCode"] = c.into();
        }
        v
    }
}

impl From<quarry_catalog::Error> for ApiError {
    fn from(e: quarry_catalog::Error) -> Self {
        match e {
            quarry_catalog::Error::DatabaseNotFound { .. }
            | quarry_catalog::Error::TableNotFound { .. } => Self::metadata(e.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}
