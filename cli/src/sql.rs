//! `quarry sql`: one-shot statements (`-c`, `-f`, stdin) and the interactive REPL.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quarry_catalog::{Catalog, QueryState};
use quarry_query::billing::human_bytes;
use quarry_query::results::write_result;
use quarry_query::{
    Engine, ObjectStores, OutputFormat, QueryOutput, QueryRequest, StatementKind, render,
    split_statements,
};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};

use crate::emit;

/// Options shared by one-shot runs and the REPL.
pub struct SqlOptions {
    pub database: Option<String>,
    pub format: OutputFormat,
    pub output: Option<String>,
    pub max_bytes_scanned: Option<u64>,
    pub dry_run: bool,
    pub stats_json: bool,
}

/// `10MB`, `1.5GB`, `1048576`: binary units, like Athena's byte figures.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size; use e.g. 500MB, 2GB or 1048576"))?;
    let mult: u64 = match unit.trim().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{s}'; use KB, MB, GB or TB"
            ));
        }
    };
    Ok((n * mult as f64) as u64)
}

/// `3 rows · 0.08 s · scanned 4.2 MB · $0.00005 (billed 10 MB)`
pub fn footer(out: &QueryOutput, timing: bool) -> String {
    let r = &out.record;
    let rows = if r.rows == 1 {
        "1 row".to_string()
    } else {
        format!("{} rows", r.rows)
    };
    let mut parts = vec![];
    match r.state {
        QueryState::Succeeded => parts.push(rows),
        other => parts.push(other.as_str().to_string()),
    }
    if timing {
        parts.push(format!("{:.2} s", out.elapsed_ms() as f64 / 1000.0));
    }
    if let Some(w) = &out.written {
        parts.push(format!(
            "wrote {} file{} ({})",
            w.files,
            if w.files == 1 { "" } else { "s" },
            human_bytes(w.bytes)
        ));
    }
    if let Some(b) = out.dry_run_bytes {
        parts.push(format!("dry run: would scan at most {}", human_bytes(b)));
    } else if out.kind == StatementKind::Metadata {
        parts.push("no data scanned".into());
    } else {
        parts.push(format!("scanned {}", human_bytes(r.bytes_scanned)));
        parts.push(format!(
            "${:.5} (billed {})",
            r.cost_usd,
            human_bytes(r.billed_bytes)
        ));
    }
    parts.join(" · ")
}

struct Runner {
    engine: Engine,
    stores: Arc<ObjectStores>,
    options: SqlOptions,
    timing: bool,
}

impl Runner {
    /// Run one statement and print its result; false if it did not succeed.
    async fn statement(&self, sql: &str) -> Result<bool> {
        let request = QueryRequest {
            sql: sql.to_string(),
            database: self.options.database.clone(),
            max_bytes_scanned: self.options.max_bytes_scanned,
            dry_run: self.options.dry_run,
            query_id: None,
            ..Default::default()
        };
        let meter = self.engine.meter_for(&request);
        let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if std::io::stderr().is_terminal() {
            spinner.set_style(
                ProgressStyle::with_template("{spinner} running {elapsed} · {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            let (bar, m) = (spinner.clone(), meter.clone());
            tokio::spawn(async move {
                // Only show progress for queries that take a while.
                tokio::time::sleep(Duration::from_millis(500)).await;
                while !bar.is_finished() {
                    bar.set_message(format!("scanned {}", human_bytes(m.bytes())));
                    bar.tick();
                    tokio::time::sleep(Duration::from_millis(120)).await;
                }
            });
        }
        // Ctrl-C cancels the statement (a write deletes what it staged) rather than killing
        // the process half-way through; in a script the run then stops, as on any failure.
        let cancel = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let out = self.engine.run_with(request, meter, cancel).await;
        spinner.finish_and_clear();
        if out.succeeded() {
            emit(
                render(&out.schema, &out.batches, self.options.format)
                    .context("formatting the result")?
                    .trim_end(),
            )?;
            if let Some(location) = &self.options.output {
                let files = write_result(&self.stores, location, &out).await?;
                eprintln!("result written to {} and {}", files.csv, files.metadata);
            }
        } else {
            eprintln!(
                "error: {}",
                out.record.error.as_deref().unwrap_or("query failed")
            );
        }
        if self.options.format == OutputFormat::Table || !out.succeeded() {
            eprintln!("{}", footer(&out, self.timing));
        }
        if self.options.stats_json {
            eprintln!("{}", out.stats_json());
        }
        Ok(out.succeeded())
    }
}

/// Run `quarry sql`: `-c`/`-f`/stdin statements, or the REPL on a terminal.
pub async fn run(
    engine: Engine,
    stores: Arc<ObjectStores>,
    options: SqlOptions,
    command: Option<String>,
    file: Option<PathBuf>,
    history_path: PathBuf,
) -> Result<bool> {
    let script = match (command, file) {
        (Some(c), _) => Some(c),
        (None, Some(f)) => {
            Some(std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?)
        }
        (None, None) if !std::io::stdin().is_terminal() => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            Some(s)
        }
        (None, None) => None,
    };
    let mut runner = Runner {
        engine,
        stores,
        options,
        timing: true,
    };
    match script {
        Some(script) => {
            let statements = split_statements(&script).context("parsing the SQL")?;
            if statements.is_empty() {
                bail!("no SQL statement given");
            }
            for s in statements {
                if !runner.statement(&s).await? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        None => repl(&mut runner, history_path).await,
    }
}

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "LIMIT",
    "HAVING",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "OUTER",
    "FULL",
    "ON",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "BETWEEN",
    "LIKE",
    "DISTINCT",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "UNION",
    "ALL",
    "WITH",
    "EXPLAIN",
    "ANALYZE",
    "SHOW",
    "TABLES",
    "DATABASES",
    "PARTITIONS",
    "DESCRIBE",
    "CAST",
    "DESC",
    "ASC",
    "VALUES",
];

/// Completion of keywords, databases, tables and columns; statements end with `;`.
struct SqlHelper {
    names: Arc<RwLock<Vec<String>>>,
}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((start, Vec::new()));
        }
        let lower = word.to_ascii_lowercase();
        let mut out: Vec<Pair> = Vec::new();
        let names = self.names.read().unwrap_or_else(|p| p.into_inner());
        for n in names.iter() {
            if n.starts_with(&lower) && !out.iter().any(|p| &p.replacement == n) {
                out.push(Pair {
                    display: n.clone(),
                    replacement: n.clone(),
                });
            }
        }
        let upper = word.to_ascii_uppercase();
        for k in KEYWORDS {
            if k.starts_with(&upper) {
                // Keep the user's case for keywords.
                let r = if word.chars().all(|c| c.is_lowercase()) {
                    k.to_ascii_lowercase()
                } else {
                    (*k).to_string()
                };
                out.push(Pair {
                    display: r.clone(),
                    replacement: r,
                });
            }
        }
        Ok((start, out))
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}

impl Highlighter for SqlHelper {}

impl Validator for SqlHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input().trim();
        if input.is_empty() || input.starts_with('\\') || input.ends_with(';') {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Helper for SqlHelper {}

async fn load_names(catalog: &dyn Catalog) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(dbs) = catalog.list_databases().await {
        for db in dbs {
            if let Ok(tables) = catalog.list_tables(&db.name).await {
                for t in tables {
                    names.push(t.name.clone());
                    names.extend(t.storage.columns.iter().map(|c| c.name.clone()));
                    names.extend(t.partition_keys.iter().map(|c| c.name.clone()));
                }
            }
            names.push(db.name);
        }
    }
    names.sort();
    names.dedup();
    names
}

const REPL_HELP: &str = "\
Statements end with ';' and may span lines. Tab completes keywords, databases, tables, columns.
  \\l              list databases            \\c DB         use database DB
  \\dt [DB]        list tables               \\d TABLE      describe a table
  \\timing         toggle timing              \\q            quit (or Ctrl-D)
  \\?              this help
Ctrl-C cancels a running query (you pay for what it read) or clears the line.";

async fn repl(runner: &mut Runner, history_path: PathBuf) -> Result<bool> {
    let names = Arc::new(RwLock::new(
        load_names(runner.engine.catalog().as_ref()).await,
    ));
    let mut editor: Editor<SqlHelper, DefaultHistory> =
        Editor::new().context("starting the line editor")?;
    editor.set_helper(Some(SqlHelper {
        names: Arc::clone(&names),
    }));
    if let Some(parent) = history_path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = editor.load_history(&history_path);
    eprintln!("Quarry SQL. End statements with ';'. \\? for help, \\q to quit.");
    loop {
        let prompt = format!(
            "{}> ",
            runner.options.database.as_deref().unwrap_or("quarry")
        );
        let line = match editor.readline(&prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let input = line.trim();
        if input.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(input);
        let _ = editor.save_history(&history_path);
        if let Some(meta) = input.strip_prefix('\\') {
            let mut words = meta.split_whitespace();
            let sql = match (words.next(), words.next()) {
                (Some("q"), _) => break,
                (Some("?"), _) => {
                    eprintln!("{REPL_HELP}");
                    continue;
                }
                (Some("timing"), _) => {
                    runner.timing = !runner.timing;
                    eprintln!("Timing is {}.", if runner.timing { "on" } else { "off" });
                    continue;
                }
                (Some("c"), Some(db)) => {
                    runner.options.database = Some(db.to_string());
                    eprintln!("Using database {db}.");
                    continue;
                }
                (Some("l"), _) => "SHOW DATABASES".to_string(),
                (Some("dt"), Some(db)) => format!("SHOW TABLES IN {db}"),
                (Some("dt"), None) => "SHOW TABLES".to_string(),
                (Some("d"), Some(t)) => format!("DESCRIBE {t}"),
                _ => {
                    eprintln!("unknown command '\\{meta}'; \\? lists commands");
                    continue;
                }
            };
            runner.statement(&sql).await?;
            continue;
        }
        match split_statements(input) {
            Ok(statements) => {
                for s in statements {
                    if !runner.statement(&s).await? {
                        break;
                    }
                }
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("10MB"), Ok(10 << 20));
        assert_eq!(parse_bytes("1.5 GiB"), Ok(3 << 29));
        assert!(parse_bytes("ten").is_err());
        assert!(parse_bytes("5PB").is_err());
    }
}
