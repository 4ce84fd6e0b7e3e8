/// Errors that stop a crawl. Problems with single objects are not errors: they are reported in
/// the [`crate::CrawlReport`] (and fail the crawl only under `strict`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot use crawl target '{target}': {reason}")]
    Target { target: String, reason: String },

    /// A location that cannot be resolved to a store.
    #[error(transparent)]
    Lake(#[from] quarry_lake::Error),

    #[error("listing {url} failed; check the path exists and your credentials can list it")]
    List {
        url: String,
        source: object_store::Error,
    },

    #[error("invalid --exclude pattern '{pattern}'")]
    Exclude {
        pattern: String,
        source: globset::Error,
    },

    #[error("catalog error")]
    Catalog { source: quarry_catalog::Error },

    #[error(
        "strict crawl failed, nothing was written: {count} object(s) could not be read, first: {first}"
    )]
    Strict { count: usize, first: String },

    #[error(
        "schema change policy is 'fail' and table {table} changed: {change}; nothing was written"
    )]
    SchemaChanged { table: String, change: String },

    #[error("the catalog kept changing under this crawl ({attempts} attempts); try again")]
    TooManyConflicts { attempts: usize },
}

impl From<quarry_catalog::Error> for Error {
    fn from(source: quarry_catalog::Error) -> Self {
        Self::Catalog { source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
