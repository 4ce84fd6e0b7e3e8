//! The `quarry-crawl` Lambda function: see [`quarry_lambda::crawl`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    quarry_lambda::serve(|resources, event| async move {
        quarry_lambda::crawl::handle(&resources, event).await
    })
    .await
}
