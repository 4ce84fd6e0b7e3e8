//! Job definitions: one TOML file per job in a jobs folder (`--jobs DIR` / `QUARRY_JOBS`).
//!
//! ```toml
//! name = "sales_to_parquet"
//! kind = "sql"
//! schedule = "cron(0 * * * ? *)"
//! database = "raw"
//! bookmark = ["raw.sales"]
//! sql = "INSERT INTO curated.sales SELECT order_id, amount, region FROM raw.sales"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schedule::{Schedule, parse_time_zone};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// SQL statements: INSERT INTO / CTAS / UNLOAD / DDL / MSCK.
    Sql,
    /// A crawl of `targets` into `database`.
    Crawl,
    /// Rewrite a table's small files into files of the target size.
    Compact,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sql => "sql",
            Self::Crawl => "crawl",
            Self::Compact => "compact",
        }
    }
}

/// What the scheduler does with fire times that passed while it was not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MissedPolicy {
    /// Run once for all of them (the default: with bookmarks, one run catches up).
    #[default]
    RunOnce,
    /// Skip them; wait for the next fire time.
    Skip,
}

/// How `after` combines its jobs, as a Glue conditional trigger's `Logical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterLogic {
    /// Every job in `after` succeeded since this job last ran for them.
    #[default]
    All,
    /// Any of them did.
    Any,
}

/// A job file as written. Unknown keys are refused (a typo must not silently disable a
/// setting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub name: String,
    pub kind: JobKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `cron(..)` or `rate(..)` in AWS's syntax; absent: on demand (or `after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The time zone `cron(..)` is read in (IANA name); UTC by default, as EventBridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Run when these jobs succeed (a conditional trigger).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub after_logic: AfterLogic,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub missed: MissedPolicy,
    /// Attempts after the first when a run fails (not when it times out or is stopped).
    #[serde(default, skip_serializing_if = "is_default")]
    pub max_retries: u32,
    /// Wait before the first retry (`30s`, `5m`); doubled for each further retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<String>,
    /// Stop a run that takes longer (`45m`, `2h`); recorded as TIMEOUT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,

    // sql
    /// The default database of the statements; for `crawl`, the database crawled into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// One or more statements separated by `;`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Where CTAS puts tables without `external_location`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<String>,
    /// Refuse statements that would scan more (`10GB`, or bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes_scanned: Option<ByteSize>,
    /// Input tables (`db.table`) read through the job's bookmark: each run sees only the
    /// objects no earlier successful run processed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bookmark: Vec<String>,

    // crawl
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// `update` (default), `log` or `fail`, as `quarry crawl --schema-change`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_change: Option<String>,

    // compact
    /// The table to compact (`db.table`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Only partitions with these values (`{ dt = "2024-01-01" }`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partition: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_file_size: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort: Vec<String>,
    /// Compact CSV / JSON tables into Parquet (the table becomes a Parquet table).
    #[serde(default, skip_serializing_if = "is_default")]
    pub convert: bool,
    /// Compact a partition only when it has at least this many small files (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_files: Option<usize>,
    /// Keep replaced files this long for queries still reading them (default `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<String>,

    /// The file it was read from.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A size in bytes, written as a number or with a unit (`512MB`, `1 GiB`, `10KB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SizeText", into = "u64")]
pub struct ByteSize(pub u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeText {
    Number(u64),
    Text(String),
}

impl TryFrom<SizeText> for ByteSize {
    type Error = String;
    fn try_from(v: SizeText) -> std::result::Result<Self, String> {
        match v {
            SizeText::Number(n) => Ok(ByteSize(n)),
            SizeText::Text(t) => parse_size(&t).map(ByteSize),
        }
    }
}

impl From<ByteSize> for u64 {
    fn from(b: ByteSize) -> u64 {
        b.0
    }
}

/// `128MB`, `1GiB`, `10 kb`, `4096`: decimal and binary units are both read as binary
/// (1 MB = 1,048,576 bytes), as `quarry sql --target-file-size`.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size; write e.g. 128MB, 1GB or 4096"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let scale: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "'{text}': unknown unit '{unit}'; use KB, MB, GB or TB"
            ));
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// `30s`, `5m`, `2h`, `1d`, `500ms`, or a combination (`1h30m`).
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration; write e.g. 30s, 5m, 2h or 1h30m");
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        // Ten years at most: later arithmetic on times must not overflow.
        if n > 10 * 366 * 86_400 * 1000 {
            return Err(format!("'{text}' is too long"));
        }
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let d = match unit.trim() {
            "ms" => Duration::from_millis(n),
            "s" | "sec" | "secs" => Duration::from_secs(n),
            "m" | "min" | "mins" => Duration::from_secs(n * 60),
            "h" | "hr" | "hrs" => Duration::from_secs(n * 3600),
            "d" | "day" | "days" => Duration::from_secs(n * 86400),
            _ => return Err(bad()),
        };
        total = total
            .checked_add(d)
            .ok_or_else(|| format!("'{text}' is too long"))?;
    }
    if total > Duration::from_secs(10 * 366 * 86_400) {
        return Err(format!("'{text}' is too long (at most 10 years)"));
    }
    Ok(total)
}

/// A job ready to run: its spec, checked, with the schedule parsed.
#[derive(Debug, Clone)]
pub struct Job {
    pub spec: JobSpec,
    pub schedule: Option<Schedule>,
    pub timezone: Tz,
    pub retry_delay: Duration,
    pub timeout: Option<Duration>,
    pub grace: Duration,
}

impl Job {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Check `spec` and parse what it names. `origin` names the file in errors.
    pub fn from_spec(spec: JobSpec, origin: &str) -> Result<Self> {
        let bad = |reason: String| Error::Spec {
            origin: origin.to_string(),
            reason,
        };
        if !valid_name(&spec.name) {
            return Err(bad(format!(
                "name '{}' must be 1-255 letters, digits, '_', '-' or '.'",
                spec.name
            )));
        }
        let schedule = spec
            .schedule
            .as_deref()
            .map(Schedule::parse)
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        let timezone = match &spec.timezone {
            None => Tz::UTC,
            Some(z) => parse_time_zone(z).map_err(|e| bad(e.to_string()))?,
        };
        let duration = |key: &str, v: &Option<String>, default: Duration| -> Result<Duration> {
            match v {
                None => Ok(default),
                Some(t) => parse_duration(t).map_err(|e| bad(format!("{key}: {e}"))),
            }
        };
        let retry_delay = duration("retry_delay", &spec.retry_delay, Duration::from_secs(30))?;
        let timeout = match &spec.timeout {
            None => None,
            Some(_) => Some(duration("timeout", &spec.timeout, Duration::ZERO)?),
        };
        let grace = duration("grace", &spec.grace, Duration::from_secs(3600))?;
        let only = |keys: &[(&str, bool)], kind: &str| -> Result<()> {
            for (key, set) in keys {
                if *set {
                    return Err(bad(format!(
                        "'{key}' does not apply to a {kind} job; remove it"
                    )));
                }
            }
            Ok(())
        };
        match spec.kind {
            JobKind::Sql => {
                let sql = spec.sql.as_deref().unwrap_or("").trim();
                if sql.is_empty() {
                    return Err(bad("a sql job needs `sql = \"INSERT INTO ...\"`".into()));
                }
                only(
                    &[
                        ("targets", !spec.targets.is_empty()),
                        ("table", spec.table.is_some()),
                        ("convert", spec.convert),
                    ],
                    "sql",
                )?;
                let statements =
                    quarry_query::split_statements(sql).map_err(|e| bad(format!("sql: {e}")))?;
                let writes = statements
                    .iter()
                    .filter(|s| {
                        use quarry_query::statement::Statement as S;
                        matches!(
                            quarry_query::statement::parse(s, "generic"),
                            Ok(S::Insert(_) | S::CreateTableAs(_) | S::Unload(_))
                        )
                    })
                    .count();
                // The bookmark advances in one write's commit: with two, a failure between
                // them would leave the first committed and the bookmark behind, and the
                // retry would write the first one's rows again.
                if !spec.bookmark.is_empty() && writes > 1 {
                    return Err(bad(format!(
                        "a bookmarked job may hold one INSERT / CTAS / UNLOAD (this one has {writes}); split it into jobs chained with `after`"
                    )));
                }
            }
            JobKind::Crawl => {
                if spec.targets.is_empty() || spec.database.is_none() {
                    return Err(bad(
                        "a crawl job needs `targets = [\"s3://bucket/prefix/\"]` and `database`"
                            .into(),
                    ));
                }
                only(
                    &[
                        ("sql", spec.sql.is_some()),
                        ("bookmark", !spec.bookmark.is_empty()),
                        ("table", spec.table.is_some()),
                    ],
                    "crawl",
                )?;
                if let Some(p) = &spec.schema_change
                    && !["update", "log", "fail"].contains(&p.as_str())
                {
                    return Err(bad(format!("schema_change '{p}': use update, log or fail")));
                }
            }
            JobKind::Compact => {
                match &spec.table {
                    Some(t) if t.split('.').count() == 2 => {}
                    _ => {
                        return Err(bad("a compact job needs `table = \"db.table\"`".into()));
                    }
                }
                only(
                    &[
                        ("sql", spec.sql.is_some()),
                        ("bookmark", !spec.bookmark.is_empty()),
                        ("targets", !spec.targets.is_empty()),
                    ],
                    "compact",
                )?;
            }
        }
        for b in &spec.bookmark {
            if b.split('.').count() != 2 {
                return Err(bad(format!(
                    "bookmark '{b}': name the table as database.table"
                )));
            }
        }
        if spec.after.iter().any(|a| a == &spec.name) {
            return Err(bad("a job cannot run after itself".into()));
        }
        Ok(Self {
            spec,
            schedule,
            timezone,
            retry_delay,
            timeout,
            grace,
        })
    }

    /// Read one job file.
    pub fn load(path: &Path) -> Result<Self> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut spec: JobSpec = toml::from_str(&text).map_err(|e| Error::Spec {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        spec.path = Some(path.to_path_buf());
        Self::from_spec(spec, &origin)
    }

    /// The job as TOML (what `quarry job create` writes).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(&self.spec).map_err(|e| Error::Spec {
            origin: self.spec.name.clone(),
            reason: e.to_string(),
        })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Every `*.toml` job in `dir`, by name. Any bad file fails the load, naming it: a scheduler
/// must not quietly drop a job.
pub fn load_dir(dir: &Path) -> Result<BTreeMap<String, Job>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut jobs = BTreeMap::new();
    for p in paths {
        let job = Job::load(&p)?;
        if let Some(other) = jobs.get(job.name()).map(|j: &Job| j.spec.path.clone()) {
            return Err(Error::Spec {
                origin: p.display().to_string(),
                reason: format!(
                    "job name '{}' is also used by {}",
                    job.name(),
                    other.map(|p| p.display().to_string()).unwrap_or_default()
                ),
            });
        }
        jobs.insert(job.name().to_string(), job);
    }
    for job in jobs.values() {
        for a in &job.spec.after {
            if !jobs.contains_key(a) {
                return Err(Error::Spec {
                    origin: job
                        .spec
                        .path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    reason: format!("after: no job named '{a}' in {}", dir.display()),
                });
            }
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_loads_as_written() {
        let spec: JobSpec = toml::from_str(
            r#"
name = "sales_to_parquet"
kind = "sql"
schedule = "cron(0 * * * ? *)"
database = "raw"
bookmark = ["raw.sales"]
sql = "INSERT INTO curated.sales SELECT order_id, amount, region FROM raw.sales"
"#,
        )
        .unwrap();
        let job = Job::from_spec(spec, "sales.toml").unwrap();
        assert_eq!(job.spec.kind, JobKind::Sql);
        assert_eq!(job.spec.bookmark, vec!["raw.sales"]);
        assert!(job.schedule.is_some());
        assert_eq!(job.spec.missed, MissedPolicy::RunOnce);
        assert_eq!(job.timezone, Tz::UTC);
        let again: JobSpec = toml::from_str(&job.to_toml().unwrap()).unwrap();
        assert_eq!(again.name, job.spec.name);
        assert_eq!(again.sql, job.spec.sql);
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text: &str| -> String {
            match toml::from_str::<JobSpec>(text) {
                Err(e) => e.to_string(),
                Ok(spec) => Job::from_spec(spec, "j.toml").unwrap_err().to_string(),
            }
        };
        assert!(err("name = \"a\"\nkind = \"sql\"\nsqll = \"x\"").contains("sqll"));
        assert!(err("name = \"a\"\nkind = \"sql\"").contains("needs `sql"));
        assert!(err("name = \"a\"\nkind = \"bake\"\nsql = \"x\"").contains("bake"));
        assert!(err("name = \"a b\"\nkind = \"sql\"\nsql = \"x\"").contains("letters, digits"));
        assert!(
            err("name = \"a\"\nkind = \"sql\"\nsql = \"x\"\ntimeout = \"soon\"")
                .contains("timeout: 'soon' is not a duration")
        );
        assert!(err("name = \"a\"\nkind = \"compact\"\ntable = \"t\"").contains("db.table"));
        assert!(
            err("name = \"a\"\nkind = \"sql\"\nsql = \"x\"\nbookmark = [\"t\"]")
                .contains("database.table")
        );
        assert!(
            err("name = \"a\"\nkind = \"sql\"\nsql = \"x\"\nmax_bytes_scanned = \"10 parsecs\"")
                .contains("unknown unit")
        );
        assert!(
            err("name = \"a\"\nkind = \"sql\"\nsql = \"x\"\nschedule = \"cron(0 12 * * * *)\"")
                .contains("j.toml")
        );
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("128MB"), Ok(128 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("MB").is_err());
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5 fortnights").is_err());
        assert!(parse_duration("99999999999999999d").is_err());
        assert!(parse_duration("4000d").unwrap_err().contains("too long"));
    }

    #[test]
    fn a_folder_with_a_duplicate_or_a_dangling_after_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let write = |f: &str, text: &str| std::fs::write(dir.path().join(f), text).unwrap();
        write("a.toml", "name = \"a\"\nkind = \"sql\"\nsql = \"SELECT 1\"");
        write(
            "b.toml",
            "name = \"b\"\nkind = \"sql\"\nsql = \"SELECT 1\"\nafter = [\"a\"]",
        );
        write("notes.txt", "not a job");
        let jobs = load_dir(dir.path()).unwrap();
        assert_eq!(jobs.keys().collect::<Vec<_>>(), vec!["a", "b"]);
        write(
            "c.toml",
            "name = \"c\"\nkind = \"sql\"\nsql = \"SELECT 1\"\nafter = [\"z\"]",
        );
        let e = load_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("c.toml") && e.contains("'z'"), "{e}");
        std::fs::remove_file(dir.path().join("c.toml")).unwrap();
        write(
            "a2.toml",
            "name = \"a\"\nkind = \"sql\"\nsql = \"SELECT 1\"",
        );
        let e = load_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("also used by"), "{e}");
    }
}
