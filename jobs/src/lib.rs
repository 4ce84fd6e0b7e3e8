//! Quarry jobs: declared `sql`, `crawl` and `compact` jobs, their AWS cron / rate schedules,
//! Glue-style job bookmarks committed atomically with the job's output, runs kept in the
//! catalog store, the scheduler, and compaction.

pub mod compact;
mod error;
pub mod run;
pub mod schedule;
pub mod scheduler;
pub mod spec;

pub use error::{Error, Result};
pub use run::{JobRuntime, RunOptions};
pub use spec::{Job, JobKind, JobSpec, load_dir};
