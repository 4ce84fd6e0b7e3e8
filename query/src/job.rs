//! A job run's view of the engine: the objects of its bookmarked input tables that earlier
//! successful runs processed (scans skip them), the objects this run's scans read, and its
//! writes, whose intents and bookmark advance go into the output's catalog commit.
//!
//! Glue's job bookmarks, done exactly: an object is processed when its URL and fingerprint
//! (ETag, or modification time) are in the bookmark; a rewritten object is read again. The
//! bookmark advances in the same catalog transaction as the output of the statement that
//! carries it ([`JobScope::carry_bookmark`]), so a run that dies at any point leaves output and
//! bookmark consistent.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use quarry_catalog::{BookmarkAdvance, BookmarkEntry, CatalogWrite, SqliteCatalog, WriteIntent};

use crate::error::{Error, Result};

/// The bookmark of one input table.
#[derive(Debug, Default)]
struct Source {
    /// URL -> fingerprint of objects earlier runs processed.
    processed: HashMap<String, String>,
    /// URL -> fingerprint of the new objects this run's scans planned to read.
    read: Mutex<BTreeMap<String, String>>,
}

/// One job run's bookmarks and write intents. Shared by the statements of the run.
#[derive(Debug)]
pub struct JobScope {
    job: String,
    run_id: String,
    store: Arc<SqliteCatalog>,
    /// By lower-case `db.table`.
    sources: HashMap<String, Source>,
    /// Whether write intents are recorded (the output's catalog can end them in its commit).
    intents: bool,
    carry: AtomicBool,
    advanced: AtomicBool,
    /// Destination folder of each write statement's intent, by query id.
    roots: Mutex<HashMap<String, String>>,
}

impl JobScope {
    /// A scope for run `run_id` of `job`, whose state lives in `store`. `sources` are the
    /// bookmarked tables (`db.table`) with what earlier runs processed
    /// ([`SqliteCatalog::job_bookmark`]); `intents` records write intents, for a data catalog
    /// that commits job state with its writes (the same embedded file).
    pub fn new(
        job: impl Into<String>,
        run_id: impl Into<String>,
        store: Arc<SqliteCatalog>,
        sources: Vec<(String, HashMap<String, String>)>,
        intents: bool,
    ) -> Self {
        Self {
            job: job.into(),
            run_id: run_id.into(),
            store,
            sources: sources
                .into_iter()
                .map(|(name, processed)| {
                    (
                        name.to_ascii_lowercase(),
                        Source {
                            processed,
                            read: Mutex::default(),
                        },
                    )
                })
                .collect(),
            intents,
            carry: AtomicBool::new(false),
            advanced: AtomicBool::new(false),
            roots: Mutex::default(),
        }
    }

    pub fn job(&self) -> &str {
        &self.job
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Whether `table` (`db.table`) is bookmarked in this run.
    pub fn is_bookmarked(&self, table: &str) -> bool {
        self.sources.contains_key(&table.to_ascii_lowercase())
    }

    /// Whether a scan of `table` reads the object at `url` with `fingerprint`: not when an
    /// earlier run processed it unchanged. Objects read are remembered for the advance.
    pub fn reads(&self, table: &str, url: &str, fingerprint: &str) -> bool {
        let Some(source) = self.sources.get(&table.to_ascii_lowercase()) else {
            return true;
        };
        if source.processed.get(url).map(String::as_str) == Some(fingerprint) {
            return false;
        }
        source
            .read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url.to_string(), fingerprint.to_string());
        true
    }

    /// The next write statement's commit carries the bookmark advance (set for the job's last
    /// write statement).
    pub fn carry_bookmark(&self, carry: bool) {
        self.carry.store(carry, Ordering::SeqCst);
    }

    /// Whether a commit has carried the advance (or [`JobScope::commit_advance`] ran).
    pub fn advanced(&self) -> bool {
        self.advanced.load(Ordering::SeqCst)
    }

    /// New objects this run's scans read, over all bookmarked tables.
    pub fn objects_read(&self) -> u64 {
        self.sources
            .values()
            .map(|s| s.read.lock().unwrap_or_else(|p| p.into_inner()).len() as u64)
            .sum()
    }

    fn advance(&self) -> BookmarkAdvance {
        let mut entries = Vec::new();
        for (name, s) in &self.sources {
            let read = s.read.lock().unwrap_or_else(|p| p.into_inner());
            entries.extend(read.iter().map(|(path, fingerprint)| BookmarkEntry {
                source: name.clone(),
                path: path.clone(),
                fingerprint: fingerprint.clone(),
            }));
        }
        BookmarkAdvance {
            job: self.job.clone(),
            run_id: self.run_id.clone(),
            entries,
        }
    }

    /// Commit the advance on its own: for a run whose last statement wrote nothing to a
    /// catalog that could carry it, or a catalog that cannot (Glue: then right after the
    /// output's commit).
    pub fn commit_advance(&self) -> Result<()> {
        if self.advanced.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let advance = self.advance();
        self.store
            .commit_job_parts(Some(&advance), &[])
            .map_err(|e| {
                self.advanced.store(false, Ordering::SeqCst);
                Error::from(e)
            })
    }

    /// A write statement `id` starts staging under `root`: recorded, so that a run that dies
    /// before its commit has its files removed by the next run.
    pub(crate) fn writing(&self, id: &str, root: &str) -> Result<()> {
        if !self.intents {
            return Ok(());
        }
        self.roots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), root.to_string());
        self.store.record_write_intent(&WriteIntent {
            id: id.to_string(),
            job: self.job.clone(),
            run_id: self.run_id.clone(),
            created_at: Utc::now(),
            root: root.to_string(),
            published: Vec::new(),
        })?;
        Ok(())
    }

    /// The files statement `id` is about to publish.
    pub(crate) fn publishing(&self, id: &str, published: Vec<String>) -> Result<()> {
        if !self.intents {
            return Ok(());
        }
        let root = self
            .roots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .unwrap_or_default();
        self.store.record_write_intent(&WriteIntent {
            id: id.to_string(),
            job: self.job.clone(),
            run_id: self.run_id.clone(),
            created_at: Utc::now(),
            root,
            published,
        })?;
        Ok(())
    }

    /// Add this scope's parts to statement `id`'s commit when the catalog takes them: the
    /// intent's end, and the bookmark advance when this statement carries it. Returns whether
    /// the advance still has to be committed separately after the commit succeeds.
    pub(crate) fn amend(&self, write: &mut CatalogWrite, id: &str, in_commit: bool) -> bool {
        let carry = self.carry.load(Ordering::SeqCst);
        if !in_commit {
            return carry;
        }
        if self.intents {
            write.resolve_intents = vec![id.to_string()];
        }
        if carry {
            write.job_bookmark = Some(self.advance());
        }
        false
    }

    /// The commit that carried the advance succeeded.
    pub(crate) fn committed(&self, carried: bool) {
        if carried && self.carry.load(Ordering::SeqCst) {
            self.advanced.store(true, Ordering::SeqCst);
        }
    }
}
/// The pseudo-job whose intents are those of write statements outside job runs: a CTAS,
/// INSERT or UNLOAD killed after publishing has its files removed by the next write statement,
/// so running it again converges.
pub use quarry_catalog::STATEMENT_JOB;

/// The scope of one write statement outside a job run (intents only, no bookmarks), for a
/// data catalog that commits job state with its writes (the embedded one).
pub fn statement_scope(store: Arc<SqliteCatalog>) -> JobScope {
    JobScope::new(
        STATEMENT_JOB,
        format!("pid:{}", std::process::id()),
        store,
        Vec::new(),
        true,
    )
}

/// Whether the process that recorded `run_id` (`pid:N`) may still be running on this machine.
/// Without `/proc` every process counts as alive, so nothing of a live writer is removed.
fn may_be_running(run_id: &str) -> bool {
    let Some(pid) = run_id
        .strip_prefix("pid:")
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return true;
    };
    if pid == std::process::id() {
        return true;
    }
    let proc = std::path::Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// Removes what write statements of processes that died before their commit published or
/// staged, and their intents. Returns how many writes it undid.
pub async fn recover_dead_statements(
    store: &SqliteCatalog,
    stores: &quarry_lake::ObjectStores,
) -> Result<usize> {
    let mut undone = 0;
    for intent in store.write_intents(STATEMENT_JOB)? {
        if may_be_running(&intent.run_id) {
            continue;
        }
        undo_write(stores, &intent).await?;
        store.remove_write_intent(&intent.id)?;
        undone += 1;
    }
    Ok(undone)
}

/// Deletes the files `intent` published and its staging folders (all of them gone is fine).
pub async fn undo_write(stores: &quarry_lake::ObjectStores, intent: &WriteIntent) -> Result<()> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    for url in &intent.published {
        let (store, path) = stores.resolve(url)?;
        match store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(source) => {
                return Err(Error::Lake(quarry_lake::Error::Object {
                    operation: "removing an uncommitted file",
                    url: url.clone(),
                    source,
                }));
            }
        }
    }
    if intent.root.is_empty() {
        return Ok(());
    }
    let (store, prefix) = stores.resolve(&intent.root)?;
    let listing = match store.list_with_delimiter(Some(&prefix)).await {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => return Ok(()),
        Err(source) => {
            return Err(Error::Lake(quarry_lake::Error::Object {
                operation: "listing",
                url: intent.root.clone(),
                source,
            }));
        }
    };
    let name = format!("{}{}", quarry_lake::writer::STAGING_PREFIX, intent.id);
    for folder in listing.common_prefixes {
        if !folder.filename().is_some_and(|f| f.starts_with(&name)) {
            continue;
        }
        let paths: Vec<object_store::path::Path> = store
            .list(Some(&folder))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .unwrap_or_default();
        for p in paths {
            let _ = store.delete(&p).await;
        }
        if intent.root.starts_with("file://") {
            let _ = tokio::fs::remove_dir_all(format!("/{folder}")).await;
        }
    }
    Ok(())
}
