//! What a crawl did, for people (`Display`) and scripts (`serde`).

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Name starts with `_` or `.`, or is a `$folder$` marker.
    Hidden,
    /// Matched an `--exclude` pattern.
    Excluded,
    /// Zero bytes, or no data after decompression.
    Empty,
    /// Damaged or in no format Quarry reads.
    Unreadable,
    /// Readable, but does not fit the layout of the table it sits in.
    Inconsistent,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hidden => "hidden",
            Self::Excluded => "excluded",
            Self::Empty => "empty",
            Self::Unreadable => "unreadable",
            Self::Inconsistent => "inconsistent",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub url: String,
    pub reason: SkipReason,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// An object that was catalogued, with something its readers should know (text that is not
/// UTF-8, read as U+FFFD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub url: String,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableAction {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WidenedColumn {
    pub column: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableReport {
    pub table: String,
    pub action: TableAction,
    pub location: String,
    pub format: String,
    /// Why these files form this table (one line).
    pub decision: String,
    pub files_added: usize,
    pub partitions_added: Vec<String>,
    pub partitions_updated: usize,
    pub columns_added: Vec<String>,
    pub columns_widened: Vec<WidenedColumn>,
    /// Schema changes seen but not applied (policy `log`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes_not_applied: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CrawlReport {
    pub target: String,
    pub database: String,
    pub objects_listed: usize,
    /// New or changed objects that were read this crawl.
    pub objects_inspected: usize,
    pub objects_unchanged: usize,
    pub tables: Vec<TableReport>,
    pub skipped: Vec<Skipped>,
    /// Objects catalogued with a warning.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// Objects catalogued by an earlier crawl that are gone now.
    pub removed: Vec<String>,
    /// Whether the catalog was written (false for a crawl that found nothing new).
    pub catalog_written: bool,
    pub elapsed_ms: u64,
}

impl CrawlReport {
    pub fn tables_with(&self, action: TableAction) -> usize {
        self.tables.iter().filter(|t| t.action == action).count()
    }

    pub fn partitions_added(&self) -> usize {
        self.tables.iter().map(|t| t.partitions_added.len()).sum()
    }

    pub fn skipped_for(&self, reason: SkipReason) -> usize {
        self.skipped.iter().filter(|s| s.reason == reason).count()
    }
}

impl fmt::Display for CrawlReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Crawled {} into database '{}' in {:.2} s: {} objects listed, {} inspected, {} unchanged.",
            self.target,
            self.database,
            self.elapsed_ms as f64 / 1000.0,
            self.objects_listed,
            self.objects_inspected,
            self.objects_unchanged
        )?;
        writeln!(
            f,
            "Tables: {} created, {} updated, {} unchanged; {} partitions added.",
            self.tables_with(TableAction::Created),
            self.tables_with(TableAction::Updated),
            self.tables_with(TableAction::Unchanged),
            self.partitions_added()
        )?;
        for t in &self.tables {
            let verb = match t.action {
                TableAction::Created => "created",
                TableAction::Updated => "updated",
                TableAction::Unchanged => "unchanged",
            };
            writeln!(f, "  {} {} ({}) at {}", verb, t.table, t.format, t.location)?;
            writeln!(f, "    why: {}", t.decision)?;
            if t.files_added > 0 {
                writeln!(
                    f,
                    "    {} file(s) added; {} partition(s) added, {} updated",
                    t.files_added,
                    t.partitions_added.len(),
                    t.partitions_updated
                )?;
            }
            if !t.partitions_added.is_empty() && t.partitions_added.len() <= 10 {
                writeln!(f, "    new partitions: {}", t.partitions_added.join("  "))?;
            }
            if !t.columns_added.is_empty() {
                writeln!(f, "    columns added: {}", t.columns_added.join(", "))?;
            }
            for w in &t.columns_widened {
                writeln!(f, "    column widened: {} {} -> {}", w.column, w.from, w.to)?;
            }
            for c in &t.changes_not_applied {
                writeln!(f, "    schema change logged, not applied: {c}")?;
            }
        }
        if !self.removed.is_empty() {
            writeln!(
                f,
                "Removed since the last crawl ({}): {}",
                self.removed.len(),
                self.removed.join(", ")
            )?;
        }
        if !self.skipped.is_empty() {
            writeln!(f, "Skipped {} object(s):", self.skipped.len())?;
            for s in &self.skipped {
                if s.detail.is_empty() {
                    writeln!(f, "  {:<12} {}", s.reason, s.url)?;
                } else {
                    writeln!(f, "  {:<12} {}: {}", s.reason, s.url, s.detail)?;
                }
            }
        }
        if !self.warnings.is_empty() {
            writeln!(f, "Warnings for {} object(s):", self.warnings.len())?;
            for w in &self.warnings {
                writeln!(f, "  {}: {}", w.url, w.detail)?;
            }
        }
        if !self.catalog_written {
            writeln!(f, "Nothing changed; the catalog was not written.")?;
        }
        Ok(())
    }
}
