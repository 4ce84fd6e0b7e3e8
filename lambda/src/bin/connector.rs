//! The `quarry-connector` Lambda function: see [`quarry_lambda::connector`].

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let handler = Arc::new(quarry_lambda::connector::from_env().await?);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let handler = Arc::clone(&handler);
            async move { quarry_lambda::connector::handle(&handler, event.payload).await }
        },
    ))
    .await
}
