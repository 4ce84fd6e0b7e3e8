//! AWS Lambda functions for Quarry: **query** (SQL over the catalog, direct or over HTTP),
//! **crawl** (a target on demand or on a schedule, or only the folders S3 events name),
//! **transform** (raw CSV / JSON objects to partitioned Parquet on S3 events, and the Kinesis
//! Data Firehose record-transformation contract), **job** (one job of a jobs folder, on an
//! EventBridge schedule) and **connector** (a federation connector answering the Athena Query
//! Federation protocol; see [`connector`] for its settings).
//!
//! Handlers are plain async functions over [`Resources`], which a function builds once per
//! cold start (object-store clients, the catalog client, the engine and its footer cache);
//! everything per invocation (the billing meter, the query id) is fresh. The `bin/` mains only
//! connect them to `lambda_runtime`.
//!
//! Configuration is by environment variable, as a SAM or CloudFormation template sets it:
//!
//! | variable | meaning |
//! |---|---|
//! | `QUARRY_CATALOG` | `glue` (default) or the path of an embedded SQLite catalog |
//! | `QUARRY_STATE_LOCATION` | where crawl bookmarks live with Glue, e.g. `s3://bucket/quarry-state/` |
//! | `QUARRY_RESULTS_LOCATION` | default result location of the query function |
//! | `QUARRY_MAX_BYTES_SCANNED` | default per-query scan limit, in bytes |
//! | `QUARRY_INLINE_ROWS` | rows returned inline by the query function (default 100) |
//! | `QUARRY_CRAWL_TARGETS` | JSON list of `{"target", "database", "exclude"?}` for scheduled and S3-event crawls |
//! | `QUARRY_TRANSFORM` | JSON [`transform::TransformConfig`] |
//! | `QUARRY_FIREHOSE` | JSON [`firehose::FirehoseConfig`] |
//! | `QUARRY_JOBS` | the job function's jobs folder (default `/var/task/jobs`) |
//! | `QUARRY_JOB_STORE` | with Glue, the SQLite file of job runs, bookmarks and leases (default `/tmp/quarry-jobs.db`, lost on cold starts: see [`job`]) |
//! | `QUARRY_ALLOW_EPHEMERAL_BOOKMARKS` | `true`: run bookmarked jobs even though the job store is under `/tmp` |
//!
//! plus the standard AWS variables (region, credentials, `AWS_ENDPOINT_URL`).

pub mod connector;
pub mod crawl;
pub mod firehose;
pub mod job;
pub mod query;
pub mod transform;

use std::sync::Arc;

use lambda_runtime::Diagnostic;
use quarry_catalog::{Catalog, GlueCatalog, JobRunState, SqliteCatalog};
use quarry_lake::Location;
use quarry_query::{Engine, EngineConfig, ObjectStores};
use serde::de::DeserializeOwned;

/// An invocation failure. [`FunctionError::retryable`] tells a caller (and the Lambda error
/// type, `Quarry.Retryable.*` or `Quarry.Fatal.*`) whether trying the same event again can help.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("the event is not one this function handles: {0}")]
    BadEvent(String),
    #[error("configuration error: {0}")]
    Config(String),
    #[error("{}", chain(.0))]
    Catalog(#[from] quarry_catalog::Error),
    #[error("{}", chain(.0))]
    Crawl(#[from] quarry_crawler::Error),
    #[error("{object}: {reason}")]
    Object {
        object: String,
        reason: String,
        retryable: bool,
    },
    #[error("{}", chain(.0))]
    Job(#[from] quarry_jobs::Error),
    #[error("no job named '{job}' in {dir} (QUARRY_JOBS); {known}")]
    UnknownJob {
        job: String,
        dir: String,
        /// What the folder holds, for the message.
        known: String,
    },
    /// A federation connector failed (its source refused, or a value did not convert).
    #[error("{0}")]
    Connector(String),
    /// A run that ended but did not succeed (its own retries, if any, are spent).
    #[error("job '{job}' run {run_id} ended {}: {error}", .state.as_str())]
    JobRun {
        job: String,
        run_id: String,
        state: JobRunState,
        error: String,
    },
}

impl FunctionError {
    pub fn retryable(&self) -> bool {
        match self {
            Self::BadEvent(_) | Self::Config(_) => false,
            Self::Catalog(e) => catalog_retryable(e),
            Self::Crawl(e) => matches!(
                e,
                quarry_crawler::Error::List { .. }
                    | quarry_crawler::Error::TooManyConflicts { .. }
                    | quarry_crawler::Error::Catalog {
                        source: quarry_catalog::Error::Remote { .. }
                    }
            ),
            Self::Object { retryable, .. } => *retryable,
            Self::Job(e) => match e {
                // Another run holds the job's lease: once it ends (or its lease runs out), the
                // same event runs.
                quarry_jobs::Error::AlreadyRunning { .. } => true,
                quarry_jobs::Error::Catalog(e) => catalog_retryable(e),
                _ => false,
            },
            Self::UnknownJob { .. } => false,
            // A source that is down or busy may answer the next attempt.
            Self::Connector(_) => true,
            // The run already made the attempts its job file allows (`max_retries`); a run
            // stopped at the Lambda deadline would take as long again.
            Self::JobRun { .. } => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadEvent(_) => "BadEvent",
            Self::Config(_) => "Configuration",
            Self::Catalog(_) => "Catalog",
            Self::Crawl(_) => "Crawl",
            Self::Object { .. } => "Object",
            Self::Job(quarry_jobs::Error::AlreadyRunning { .. }) => "JobAlreadyRunning",
            Self::Job(_) => "Job",
            Self::UnknownJob { .. } => "UnknownJob",
            Self::Connector(_) => "Connector",
            Self::JobRun { state, .. } => match state {
                JobRunState::Timeout => "JobTimeout",
                JobRunState::Stopped => "JobStopped",
                _ => "JobFailed",
            },
        }
    }
}

fn catalog_retryable(e: &quarry_catalog::Error) -> bool {
    matches!(
        e,
        quarry_catalog::Error::Remote { .. }
            | quarry_catalog::Error::Conflict { .. }
            | quarry_catalog::Error::Store { .. }
    )
}

impl From<FunctionError> for Diagnostic {
    fn from(e: FunctionError) -> Self {
        let class = if e.retryable() { "Retryable" } else { "Fatal" };
        Diagnostic {
            error_type: format!("Quarry.{class}.{}", e.kind()),
            error_message: e.to_string(),
        }
    }
}

/// An error with its causes, `outer: inner: innermost`.
pub use quarry_federation::client::error_chain as chain;

/// Settings read from the environment at cold start.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub results_location: Option<String>,
    pub max_bytes_scanned: Option<u64>,
    pub inline_rows: usize,
    pub crawl_targets: Vec<crawl::CrawlTarget>,
    pub transform: Option<transform::TransformConfig>,
    pub firehose: Option<firehose::FirehoseConfig>,
    pub jobs: job::JobConfig,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_json<T: DeserializeOwned>(name: &str) -> Result<Option<T>, FunctionError> {
    env(name)
        .map(|v| {
            serde_json::from_str(&v)
                .map_err(|e| FunctionError::Config(format!("{name} is not valid: {e}")))
        })
        .transpose()
}

impl Settings {
    pub fn from_env() -> Result<Self, FunctionError> {
        let number = |name: &str| -> Result<Option<u64>, FunctionError> {
            env(name)
                .map(|v| {
                    v.trim().parse().map_err(|_| {
                        FunctionError::Config(format!("{name}={v} is not a whole number"))
                    })
                })
                .transpose()
        };
        Ok(Self {
            results_location: env("QUARRY_RESULTS_LOCATION"),
            max_bytes_scanned: number("QUARRY_MAX_BYTES_SCANNED")?,
            inline_rows: number("QUARRY_INLINE_ROWS")?.map_or(100, |n| n as usize),
            crawl_targets: env_json("QUARRY_CRAWL_TARGETS")?.unwrap_or_default(),
            transform: env_json("QUARRY_TRANSFORM")?,
            firehose: env_json("QUARRY_FIREHOSE")?,
            jobs: job::JobConfig::from_env()?,
        })
    }
}

/// What a function sets up once per cold start and shares across invocations.
#[derive(Clone)]
pub struct Resources {
    pub catalog: Arc<dyn Catalog>,
    /// `catalog` itself when it is the embedded one: the job function keeps runs, bookmarks
    /// and leases in the same file, so that a job's bookmark commits with its output.
    pub embedded: Option<Arc<SqliteCatalog>>,
    pub stores: Arc<ObjectStores>,
    pub engine: Engine,
    pub settings: Settings,
}

impl Resources {
    pub fn new(catalog: Arc<dyn Catalog>, stores: Arc<ObjectStores>, settings: Settings) -> Self {
        let config = EngineConfig {
            max_bytes_scanned: settings.max_bytes_scanned,
            // A warm function serves many callers.
            session_settings: false,
            ..Default::default()
        };
        let engine = Engine::new(Arc::clone(&catalog), Arc::clone(&stores), config);
        Self {
            catalog,
            embedded: None,
            stores,
            engine,
            settings,
        }
    }

    /// Resources over the embedded catalog (see [`Resources::embedded`]).
    pub fn new_embedded(
        catalog: Arc<SqliteCatalog>,
        stores: Arc<ObjectStores>,
        settings: Settings,
    ) -> Self {
        let mut res = Self::new(Arc::clone(&catalog) as Arc<dyn Catalog>, stores, settings);
        res.embedded = Some(catalog);
        res
    }

    /// The catalog, stores and settings the environment describes.
    pub async fn from_env() -> Result<Self, FunctionError> {
        let settings = Settings::from_env()?;
        let stores = Arc::new(ObjectStores::new());
        match env("QUARRY_CATALOG").as_deref() {
            None | Some("glue") => {
                let mut glue = GlueCatalog::from_env().await;
                if let Some(state) = env("QUARRY_STATE_LOCATION") {
                    let loc = Location::parse(&state).map_err(|e| {
                        FunctionError::Config(format!("QUARRY_STATE_LOCATION: {e}"))
                    })?;
                    glue = glue.with_bookmarks(loc.store, loc.prefix);
                }
                Ok(Self::new(Arc::new(glue), stores, settings))
            }
            Some(path) => Ok(Self::new_embedded(
                Arc::new(SqliteCatalog::open(path)?),
                stores,
                settings,
            )),
        }
    }
}

/// The `s3://bucket/key` URL of the object an S3 notification record names (`None` for a record
/// without one). Keys arrive URL-encoded, with `+` for spaces.
pub(crate) fn object_url(record: &aws_lambda_events::event::s3::S3EventRecord) -> Option<String> {
    let bucket = record.s3.bucket.name.as_deref()?;
    let key = record.s3.object.key.as_deref()?;
    Some(format!("s3://{bucket}/{}", decode_s3_key(key)))
}

fn decode_s3_key(key: &str) -> String {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Start the Lambda runtime loop for `handler`, with resources built once (cold start).
pub async fn serve<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Arc<Resources>, serde_json::Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<serde_json::Value, FunctionError>> + Send,
{
    serve_with_context(move |resources, event, _context| handler(resources, event)).await
}

/// [`serve`] for a handler that also needs the invocation's context (its deadline).
pub async fn serve_with_context<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Arc<Resources>, serde_json::Value, lambda_runtime::Context) -> Fut
        + Send
        + Sync
        + 'static,
    Fut: Future<Output = Result<serde_json::Value, FunctionError>> + Send,
{
    let started = std::time::Instant::now();
    lambda_runtime::tracing::init_default_subscriber();
    let resources = Arc::new(Resources::from_env().await?);
    lambda_runtime::tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        "resources ready"
    );
    let handler = Arc::new(handler);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let resources = Arc::clone(&resources);
            let handler = Arc::clone(&handler);
            // Errors are logged by the runtime, with their `Quarry.Retryable|Fatal.*` type.
            async move { handler(resources, event.payload, event.context).await }
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_event_keys_are_decoded() {
        assert_eq!(
            decode_s3_key("sales/region%3Deu+west/a%2Bb.csv"),
            "sales/region=eu west/a+b.csv"
        );
    }

    #[test]
    fn errors_say_whether_a_retry_can_help() {
        let d: Diagnostic = FunctionError::BadEvent("x".into()).into();
        assert_eq!(d.error_type, "Quarry.Fatal.BadEvent");
        let d: Diagnostic = FunctionError::Object {
            object: "s3://b/k".into(),
            reason: "timeout".into(),
            retryable: true,
        }
        .into();
        assert_eq!(d.error_type, "Quarry.Retryable.Object");
        assert!(d.error_message.contains("s3://b/k"));
    }
}
