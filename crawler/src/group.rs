//! Grouping new files into tables.
//!
//! A folder whose files all share one format, one partition layout and overlapping columns is
//! one table. Otherwise its plain sub-folders are looked at one by one (each may be a table of
//! its own), while `key=value` sub-folders and loose files stay together as one table whose
//! inconsistent files are reported rather than guessed at.

use std::collections::BTreeMap;

use crate::schema::name_overlap;
use quarry_lake::FileFormat;
use quarry_lake::hive::Segment;

/// What grouping needs to know about one file.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Folder names between the crawl root and the file (raw, not decoded).
    pub dirs: Vec<String>,
    pub format: FileFormat,
    pub columns: Vec<String>,
}

/// Files that form one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Table root, relative to the crawl root.
    pub dirs: Vec<String>,
    /// Indexes into the candidate list.
    pub files: Vec<usize>,
    pub decision: String,
}

/// Files left out of a group because they do not fit its layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Misfit {
    pub file: usize,
    pub detail: String,
}

/// Minimum share of column names (intersection over union) for two files to be one table.
pub const MIN_COLUMN_OVERLAP: f64 = 0.5;

pub fn group(candidates: &[Candidate]) -> (Vec<Group>, Vec<Misfit>) {
    group_around(candidates, &[])
}

/// [`group`] on a re-crawl: `tables` are the roots (relative folders) of tables already
/// catalogued under the crawl target. A folder with a table below it is never made a table of
/// its own: new files there are grouped as a first crawl would have, one table per sub-folder.
pub fn group_around(candidates: &[Candidate], tables: &[Vec<String>]) -> (Vec<Group>, Vec<Misfit>) {
    let mut groups = Vec::new();
    let mut misfits = Vec::new();
    let all: Vec<usize> = (0..candidates.len()).collect();
    if !all.is_empty() {
        split(candidates, tables, all, 0, &mut groups, &mut misfits);
    }
    (groups, misfits)
}

fn place(dirs: &[String]) -> String {
    if dirs.is_empty() {
        "the crawl target".to_string()
    } else {
        format!("{}/", dirs.join("/"))
    }
}

/// Why `files` (all under the same `depth` folders) cannot be one table, or `None` if they can.
fn incompatibility(c: &[Candidate], files: &[usize], depth: usize) -> Option<String> {
    let first = &c[files[0]];
    if let Some(&f) = files.iter().find(|&&f| c[f].format != first.format) {
        return Some(format!(
            "formats differ ({} vs {})",
            first.format.describe(),
            c[f].format.describe()
        ));
    }
    let levels = first.dirs.len() - depth;
    if files.iter().any(|&f| c[f].dirs.len() - depth != levels) {
        return Some("files sit at different folder depths".into());
    }
    for level in depth..first.dirs.len() {
        let keys: std::collections::BTreeSet<String> = files
            .iter()
            .map(|&f| Segment::parse(&c[f].dirs[level]).key(level - depth))
            .collect();
        if keys.len() > 1 {
            return Some(format!(
                "folder naming differs at level {}: {}",
                level - depth + 1,
                keys.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let union: Vec<String> = {
        let mut u: Vec<String> = Vec::new();
        for &f in files {
            for col in &c[f].columns {
                if !u.contains(col) {
                    u.push(col.clone());
                }
            }
        }
        u
    };
    if let Some(&f) = files
        .iter()
        .find(|&&f| name_overlap(&c[f].columns, &union) < MIN_COLUMN_OVERLAP)
    {
        return Some(format!(
            "columns differ too much (e.g. {} has {})",
            c[f].dirs.join("/"),
            c[f].columns.join(", ")
        ));
    }
    None
}

fn split(
    c: &[Candidate],
    tables: &[Vec<String>],
    files: Vec<usize>,
    depth: usize,
    groups: &mut Vec<Group>,
    misfits: &mut Vec<Misfit>,
) {
    let dirs = c[files[0]].dirs[..depth].to_vec();
    let below: Vec<String> = tables
        .iter()
        .filter(|t| t.len() > depth && t[..depth] == dirs[..])
        .map(|t| place(t))
        .collect();
    let why = if below.is_empty() {
        incompatibility(c, &files, depth)
    } else {
        Some(format!("folders are already tables ({})", below.join(", ")))
    };
    let Some(why) = why else {
        let first = &c[files[0]];
        let keys: Vec<String> = (depth..first.dirs.len())
            .map(|l| Segment::parse(&first.dirs[l]).key(l - depth))
            .collect();
        let partitioned = if keys.is_empty() {
            String::new()
        } else {
            format!(", partitioned by {}", keys.join(", "))
        };
        groups.push(Group {
            decision: format!(
                "{} file(s) under {} share one format ({}) and compatible columns{}",
                files.len(),
                place(&dirs),
                first.format.describe(),
                partitioned
            ),
            dirs,
            files,
        });
        return;
    };
    // Plain sub-folders may be tables of their own; loose files and `key=value` folders are
    // this folder's own data.
    let mut children: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut own = Vec::new();
    for f in files {
        match c[f].dirs.get(depth) {
            Some(d) if !Segment::parse(d).is_hive() => {
                children.entry(d.clone()).or_default().push(f)
            }
            _ => own.push(f),
        }
    }
    // Why each sub-folder's groups were not kept together here.
    let note = if below.is_empty() {
        format!(
            "a separate table: {} holds datasets whose {why}",
            place(&dirs)
        )
    } else {
        format!("beside tables already catalogued: {}", below.join(", "))
    };
    // A single sub-folder: the table root is deeper (only worth a note beside other tables).
    let single = own.is_empty() && children.len() == 1;
    for (_, child) in children {
        let before = groups.len();
        split(c, tables, child, depth + 1, groups, misfits);
        if !single || !below.is_empty() {
            for g in &mut groups[before..] {
                g.decision = format!("{} ({note})", g.decision);
            }
        }
    }
    if !own.is_empty() {
        resolve(c, own, depth, dirs, why, groups, misfits);
    }
}

/// Make one table of `files` at `dirs` even though they disagree: keep the most common format
/// and partition layout and report the rest as misfits. Columns are merged with widening.
fn resolve(
    c: &[Candidate],
    files: Vec<usize>,
    depth: usize,
    dirs: Vec<String>,
    why: String,
    groups: &mut Vec<Group>,
    misfits: &mut Vec<Misfit>,
) {
    let layout = |f: usize| -> (FileFormat, Vec<String>) {
        let keys = (depth..c[f].dirs.len())
            .map(|l| Segment::parse(&c[f].dirs[l]).key(l - depth))
            .collect();
        (c[f].format, keys)
    };
    let mut votes: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for &f in &files {
        let key = format!("{:?}", layout(f));
        let e = votes.entry(key).or_insert((0, f));
        e.0 += 1;
    }
    let Some((_, &(_, exemplar))) = votes.iter().max_by_key(|(_, (n, _))| *n) else {
        return;
    };
    let (format, keys) = layout(exemplar);
    let mut kept = Vec::new();
    for f in files {
        let (ff, fk) = layout(f);
        if ff == format && fk == keys {
            kept.push(f);
        } else {
            let detail = if ff != format {
                format!(
                    "format {} differs from its table's {}",
                    ff.describe(),
                    format.describe()
                )
            } else {
                format!(
                    "partition folders [{}] differ from its table's [{}]",
                    fk.join("/"),
                    keys.join("/")
                )
            };
            misfits.push(Misfit { file: f, detail });
        }
    }
    let partitioned = if keys.is_empty() {
        String::new()
    } else {
        format!(", partitioned by {}", keys.join(", "))
    };
    groups.push(Group {
        decision: format!(
            "{} file(s) under {} kept as one table ({}{}) although {why}; files that do not fit are skipped",
            kept.len(),
            place(&dirs),
            format.describe(),
            partitioned
        ),
        dirs,
        files: kept,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_lake::CsvDialect;

    fn cand(path: &str, format: FileFormat, cols: &[&str]) -> Candidate {
        let mut dirs: Vec<String> = path.split('/').map(str::to_string).collect();
        dirs.pop();
        Candidate {
            dirs,
            format,
            columns: cols.iter().map(|s| s.to_string()).collect(),
        }
    }

    const CSV: FileFormat = FileFormat::Csv(CsvDialect {
        delimiter: b',',
        quote: b'"',
        header: true,
    });

    #[test]
    fn one_dataset_is_one_table() {
        let c = vec![
            cand("dt=1/a.parquet", FileFormat::Parquet, &["a", "b"]),
            cand("dt=2/a.parquet", FileFormat::Parquet, &["a", "b", "c"]),
        ];
        let (g, m) = group(&c);
        assert_eq!(g.len(), 1);
        assert!(g[0].dirs.is_empty());
        assert!(m.is_empty());
        assert!(
            g[0].decision.contains("partitioned by dt"),
            "{}",
            g[0].decision
        );
    }

    #[test]
    fn incompatible_siblings_become_separate_tables() {
        let c = vec![
            cand("sales/region=eu/a.csv", CSV, &["id", "amount"]),
            cand("sales/region=us/a.csv", CSV, &["id", "amount"]),
            cand("events/dt=1/a.json", FileFormat::Json, &["id", "kind"]),
            cand("logs/2024/01/a.tsv", CSV, &["col0", "col1"]),
        ];
        let (g, m) = group(&c);
        let roots: Vec<String> = g.iter().map(|g| g.dirs.join("/")).collect();
        assert_eq!(roots, ["events", "logs", "sales"]);
        assert!(m.is_empty());
        assert!(
            g[0].decision.contains("formats differ"),
            "{}",
            g[0].decision
        );
    }

    #[test]
    fn same_schema_siblings_are_unnamed_partitions() {
        let c = vec![
            cand("logs/2024-01-01/a.csv", CSV, &["x"]),
            cand("logs/2024-01-02/a.csv", CSV, &["x"]),
        ];
        let (g, _) = group(&c);
        assert_eq!(g.len(), 1);
        assert!(g[0].decision.contains("partition_0"), "{}", g[0].decision);
    }

    #[test]
    fn inconsistent_partition_depth_is_reported_with_paths() {
        let c = vec![
            cand("t/dt=1/a.parquet", FileFormat::Parquet, &["a"]),
            cand("t/dt=2/a.parquet", FileFormat::Parquet, &["a"]),
            cand("t/dt=3/hr=1/a.parquet", FileFormat::Parquet, &["a"]),
            cand("t/dt=4/a.csv", CSV, &["a"]),
        ];
        let (g, m) = group(&c);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].files, vec![0, 1]);
        assert_eq!(m.len(), 2);
        assert!(m[0].detail.contains("[dt/hr]"), "{}", m[0].detail);
        assert!(m[1].detail.contains("format csv"), "{}", m[1].detail);
    }

    #[test]
    fn a_recrawl_groups_new_folders_beside_existing_tables_not_around_them() {
        let c = vec![
            cand(
                "shipments/month=1/a.parquet",
                FileFormat::Parquet,
                &["id", "status"],
            ),
            cand(
                "shipments/month=2/b.parquet",
                FileFormat::Parquet,
                &["id", "status"],
            ),
        ];
        // A first crawl of just these files: one table at the crawl target.
        let (g, _) = group(&c);
        assert_eq!(g[0].dirs, Vec::<String>::new());
        // Beside `sales/` and `events/`, already tables: `shipments/` is a table of its own.
        let tables = vec![vec!["sales".to_string()], vec!["events".to_string()]];
        let (g, m) = group_around(&c, &tables);
        assert!(m.is_empty(), "{m:?}");
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(g[0].dirs, vec!["shipments".to_string()]);
        assert_eq!(g[0].files, vec![0, 1]);
        assert!(
            g[0].decision
                .contains("beside tables already catalogued: sales/, events/"),
            "{}",
            g[0].decision
        );
    }
}
