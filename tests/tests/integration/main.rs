//! Cross-crate integration tests. Every crawler test runs twice: on a local folder and on a
//! real S3 endpoint (moto_server) through object_store's AmazonS3.

mod crawl;
mod faults;
mod federation;
mod glue;
mod hostile;
mod jobs;
mod properties;
mod query;
mod write;
