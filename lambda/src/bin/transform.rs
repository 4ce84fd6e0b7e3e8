//! The `quarry-transform` Lambda function: see [`quarry_lambda::transform`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    quarry_lambda::serve(|resources, event| async move {
        quarry_lambda::transform::handle(&resources, event).await
    })
    .await
}
