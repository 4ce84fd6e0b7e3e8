//! The `quarry-query` Lambda function: see [`quarry_lambda::query`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    quarry_lambda::serve(|resources, event| async move {
        quarry_lambda::query::handle(&resources, event).await
    })
    .await
}
