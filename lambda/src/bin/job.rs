//! The `quarry-job` Lambda function: see [`quarry_lambda::job`].

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let jobs = Arc::new(quarry_lambda::job::JobHandler::default());
    quarry_lambda::serve_with_context(move |resources, event, context| {
        let jobs = Arc::clone(&jobs);
        async move { jobs.handle(&resources, event, &context).await }
    })
    .await
}
