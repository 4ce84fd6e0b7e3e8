//! Connectors deployed as Lambda functions: each request is one synchronous `Invoke`.
//!
//! The client is configured like the AWS CLI (region, credential chain, `AWS_ENDPOINT_URL` or
//! `AWS_ENDPOINT_URL_LAMBDA`), so tests and local development point it at the `cargo lambda
//! watch` runtime emulator.

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;

use crate::client::Transport;
use crate::wire::{FunctionError, to_wire};
use crate::{Error, Result};

/// Invokes one connector function.
pub struct LambdaTransport {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaTransport {
    /// A transport for `function` (a name, ARN or `name:alias`), from the standard AWS
    /// environment; `endpoint` overrides the Lambda endpoint (e.g. a local emulator).
    pub async fn from_env(function: &str, endpoint: Option<&str>) -> LambdaTransport {
        let config = crate::aws_config(endpoint).await;
        LambdaTransport {
            client: aws_sdk_lambda::Client::new(&config),
            function: function.to_owned(),
        }
    }
}

#[async_trait]
impl Transport for LambdaTransport {
    fn describe(&self) -> String {
        format!("lambda:{}", self.function)
    }

    async fn invoke(&self, payload: Vec<u8>) -> Result<Vec<u8>> {
        let out = self
            .client
            .invoke()
            .function_name(&self.function)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| Error::Transport {
                function: self.describe(),
                message: aws_sdk_lambda::error::DisplayErrorContext(&e).to_string(),
            })?;
        let bytes = out.payload.map(Blob::into_inner).unwrap_or_default();
        match out.function_error {
            // The payload is the function's error ({"errorMessage", ...}); make sure it reads as one.
            Some(kind) if serde_json::from_slice::<FunctionError>(&bytes).is_err() => {
                to_wire(&FunctionError {
                    error_message: format!("{kind}: {}", String::from_utf8_lossy(&bytes)),
                    error_type: Some(kind),
                    stack_trace: Vec::new(),
                })
            }
            _ => Ok(bytes),
        }
    }
}
