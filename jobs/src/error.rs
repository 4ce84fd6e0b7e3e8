use std::path::PathBuf;

/// Errors from defining and running jobs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("job file {origin}: {reason}")]
    Spec { origin: String, reason: String },

    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("no job named '{name}' in {dir}; `quarry job list` shows the jobs")]
    UnknownJob { name: String, dir: String },

    #[error(
        "job '{job}' is already running (run {run_id} by {owner}); at most one run of a job runs at a time"
    )]
    AlreadyRunning {
        job: String,
        owner: String,
        run_id: String,
    },

    #[error(transparent)]
    Catalog(#[from] quarry_catalog::Error),

    #[error(transparent)]
    Query(#[from] quarry_query::Error),

    #[error(transparent)]
    Lake(#[from] quarry_lake::Error),

    #[error("compacting {table}: {reason}")]
    Compact { table: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
