//! The embedded catalog: one SQLite file (WAL mode), every write one `BEGIN IMMEDIATE`
//! transaction, partition values indexed per key so filtered lookups never scan a table's
//! partitions.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::{StoreContext, partition_spec};
use crate::{
    Catalog, CatalogWrite, ColumnStatistics, Database, DatabaseDrop, Error, KeyPredicate,
    Partition, PartitionDrop, PartitionFilter, Result, SeenObject, Table, TableDrop, ValueOrder,
};

/// How many of a non-empty database's tables an error names.
const TABLES_NAMED: usize = 5;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS databases (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tables (
    id       INTEGER PRIMARY KEY,
    database TEXT NOT NULL REFERENCES databases(name),
    name     TEXT NOT NULL,
    version  INTEGER NOT NULL,
    body     TEXT NOT NULL,
    UNIQUE (database, name)
);
CREATE TABLE IF NOT EXISTS partitions (
    id         INTEGER PRIMARY KEY,
    table_id   INTEGER NOT NULL REFERENCES tables(id) ON DELETE CASCADE,
    values_key TEXT NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT NOT NULL,
    UNIQUE (table_id, values_key)
);
CREATE TABLE IF NOT EXISTS partition_values (
    partition_id INTEGER NOT NULL REFERENCES partitions(id) ON DELETE CASCADE,
    table_id     INTEGER NOT NULL,
    key_index    INTEGER NOT NULL,
    text_value   TEXT,
    num_value    NUMERIC,
    PRIMARY KEY (partition_id, key_index)
);
CREATE INDEX IF NOT EXISTS partition_values_text ON partition_values (table_id, key_index, text_value);
CREATE INDEX IF NOT EXISTS partition_values_num ON partition_values (table_id, key_index, num_value);
CREATE TABLE IF NOT EXISTS crawl_objects (
    target      TEXT NOT NULL,
    path        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    tbl         TEXT,
    rows        INTEGER,
    footer      BLOB,
    PRIMARY KEY (target, path)
);
CREATE INDEX IF NOT EXISTS crawl_objects_by_path ON crawl_objects (path);
-- Dropping a table forgets its bookmarks without scanning every crawled object.
CREATE INDEX IF NOT EXISTS crawl_objects_by_table ON crawl_objects (tbl);
-- Column statistics (ANALYZE), Glue's model as JSON; they go with their table.
CREATE TABLE IF NOT EXISTS column_statistics (
    table_id INTEGER NOT NULL REFERENCES tables(id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    body     TEXT NOT NULL,
    PRIMARY KEY (table_id, name)
);
"#;

/// The embedded catalog store. Safe to share between tasks and between processes: SQLite's
/// file locking serialises writers, and optimistic versions stop lost updates.
#[derive(Debug)]
pub struct SqliteCatalog {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

impl SqliteCatalog {
    /// Open (creating if needed) the catalog file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let open_err = |source| Error::Open {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                open_err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                    Some(e.to_string()),
                ))
            })?;
        }
        let conn = Connection::open(&path).map_err(open_err)?;
        Self::init(conn, Some(path.clone())).map_err(|e| match e {
            Error::Store { source, .. } => open_err(source),
            other => other,
        })
    }

    /// A private in-memory catalog, for tests.
    pub fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().ctx("opening an in-memory catalog")?;
        Self::init(conn, None)
    }

    fn init(conn: Connection, path: Option<PathBuf>) -> Result<Self> {
        conn.busy_timeout(Duration::from_secs(60))
            .ctx("setting the busy timeout")?;
        // WAL lets readers run beside a writer; FULL sync makes a committed crawl durable.
        conn.pragma_update(None, "journal_mode", "WAL")
            .ctx("enabling WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")
            .ctx("setting synchronous")?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .ctx("enabling foreign keys")?;
        conn.execute_batch(SCHEMA)
            .ctx("creating the catalog schema")?;
        // Catalogs written before Parquet footers were kept lack the column.
        let has_footer: bool = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('crawl_objects') WHERE name = 'footer'",
                [],
                |r| r.get::<_, i64>(0).map(|n| n > 0),
            )
            .ctx("checking the catalog schema")?;
        if !has_footer {
            conn.execute("ALTER TABLE crawl_objects ADD COLUMN footer BLOB", [])
                .ctx("adding crawl_objects.footer")?;
        }
        conn.execute_batch(crate::history::HISTORY_SCHEMA)
            .ctx("creating the query history")?;
        conn.execute_batch(crate::jobs::JOBS_SCHEMA)
            .ctx("creating the job tables")?;
        conn.execute_batch(crate::records::RECORDS_SCHEMA)
            .ctx("creating the execution tables")?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub(crate) fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        // A poisoned lock only means another task panicked mid-call; SQLite's own
        // transactions keep the data consistent, so carry on with the connection.
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(what: &str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|source| Error::Corrupt {
        what: what.to_string(),
        source,
    })
}

pub(crate) fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|source| Error::Corrupt {
        what: what.to_string(),
        source,
    })
}

fn table_row(conn: &Connection, database: &str, table: &str) -> Result<Option<(i64, Table)>> {
    let row: Option<(i64, String, i64)> = conn
        .query_row(
            "SELECT id, body, version FROM tables WHERE database = ?1 AND name = ?2",
            params![database, table],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .ctx("reading a table")?;
    row.map(|(id, body, version)| {
        let mut t: Table = from_json(&format!("table {database}.{table}"), &body)?;
        t.version = version as u64;
        Ok((id, t))
    })
    .transpose()
}

fn numeric(value: &str) -> Option<Value> {
    if let Ok(i) = value.parse::<i64>() {
        return Some(Value::Integer(i));
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Value::Real)
}

/// The key columns used to index and compare one partition value.
fn index_value(order: ValueOrder, value: Option<&str>) -> (Value, Value) {
    match value {
        None => (Value::Null, Value::Null),
        Some(v) => {
            let num = match order {
                ValueOrder::Numeric => numeric(v).unwrap_or(Value::Null),
                ValueOrder::Text => Value::Null,
            };
            (Value::Text(v.to_string()), num)
        }
    }
}

fn index_partition(
    conn: &Connection,
    table_id: i64,
    partition_id: i64,
    table: &Table,
    partition: &Partition,
) -> Result<()> {
    conn.execute(
        "DELETE FROM partition_values WHERE partition_id = ?1",
        params![partition_id],
    )
    .ctx("re-indexing a partition")?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO partition_values (partition_id, table_id, key_index, text_value, num_value)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .ctx("indexing a partition")?;
    for (i, (key, value)) in table
        .partition_keys
        .iter()
        .zip(&partition.values)
        .enumerate()
    {
        let (text, num) = index_value(ValueOrder::for_hive_type(&key.data_type), value.as_deref());
        stmt.execute(params![partition_id, table_id, i as i64, text, num])
            .ctx("indexing a partition")?;
    }
    Ok(())
}

fn database_exists(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM databases WHERE name = ?1",
            params![name],
            |_| Ok(()),
        )
        .optional()
        .ctx("reading a database")?
        .is_some())
}

/// Delete a table's rows and its partitions' (their index entries included).
fn delete_table_rows(conn: &Connection, table_id: i64) -> Result<()> {
    conn.execute(
        "DELETE FROM partition_values WHERE table_id = ?1",
        params![table_id],
    )
    .ctx("dropping a table's partition index")?;
    conn.execute(
        "DELETE FROM partitions WHERE table_id = ?1",
        params![table_id],
    )
    .ctx("dropping a table's partitions")?;
    conn.execute("DELETE FROM tables WHERE id = ?1", params![table_id])
        .ctx("dropping a table")?;
    Ok(())
}

/// A partition looked up by its table and values.
struct PartitionRow {
    table_id: i64,
    table: Table,
    values_key: String,
    /// The partition's id and version, if it exists.
    current: Option<(i64, i64)>,
}

/// A table's row (which must exist), the key of `values` (which must fit its keys), and the
/// id and version of that partition if it exists.
fn partition_row(
    conn: &Connection,
    database: &str,
    table: &str,
    values: &[Option<String>],
) -> Result<PartitionRow> {
    let (table_id, t) = table_row(conn, database, table)?.ok_or_else(|| Error::TableNotFound {
        database: database.to_string(),
        table: table.to_string(),
    })?;
    if values.len() != t.partition_keys.len() {
        return Err(Error::PartitionArity {
            table: t.qualified_name(),
            expected: t.partition_keys.len(),
            found: values.len(),
        });
    }
    let values_key = to_json("partition values", &values)?;
    let current: Option<(i64, i64)> = conn
        .query_row(
            "SELECT id, version FROM partitions WHERE table_id = ?1 AND values_key = ?2",
            params![table_id, values_key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .ctx("reading a partition")?;
    Ok(PartitionRow {
        table_id,
        table: t,
        values_key,
        current,
    })
}

fn drop_partition(conn: &Connection, d: &PartitionDrop) -> Result<()> {
    let PartitionRow { table, current, .. } =
        partition_row(conn, &d.database, &d.table, &d.values)?;
    let spec = partition_spec(&table.partition_keys, &d.values);
    let Some((id, found)) = current else {
        return Err(Error::PartitionNotFound {
            table: table.qualified_name(),
            partition: spec,
        });
    };
    if let Some(expected) = d.expected_version
        && expected != found as u64
    {
        return Err(Error::Conflict {
            what: format!("partition {spec} of {}", table.qualified_name()),
            expected: Some(expected),
            found: Some(found as u64),
        });
    }
    conn.execute(
        "DELETE FROM partition_values WHERE partition_id = ?1",
        params![id],
    )
    .ctx("dropping a partition's index")?;
    conn.execute("DELETE FROM partitions WHERE id = ?1", params![id])
        .ctx("dropping a partition")?;
    Ok(())
}

fn drop_table(conn: &Connection, d: &TableDrop) -> Result<()> {
    let (id, table) =
        table_row(conn, &d.database, &d.table)?.ok_or_else(|| Error::TableNotFound {
            database: d.database.clone(),
            table: d.table.clone(),
        })?;
    if let Some(expected) = d.expected_version
        && expected != table.version
    {
        return Err(Error::Conflict {
            what: format!("table {}", table.qualified_name()),
            expected: Some(expected),
            found: Some(table.version),
        });
    }
    delete_table_rows(conn, id)?;
    // Otherwise a re-crawl would skip the table's objects as seen and never re-create it.
    conn.execute(
        "DELETE FROM crawl_objects WHERE tbl = ?1",
        params![table.qualified_name()],
    )
    .ctx("forgetting a dropped table's crawl bookmarks")?;
    Ok(())
}

fn drop_database(conn: &Connection, d: &DatabaseDrop) -> Result<()> {
    if !database_exists(conn, &d.name)? {
        return Err(Error::DatabaseNotFound {
            database: d.name.clone(),
        });
    }
    let tables: Vec<(i64, String)> = {
        let mut stmt = conn
            .prepare("SELECT id, name FROM tables WHERE database = ?1 ORDER BY name")
            .ctx("listing a database's tables")?;
        stmt.query_map(params![d.name], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("listing a database's tables")?
            .collect::<rusqlite::Result<_>>()
            .ctx("listing a database's tables")?
    };
    if !tables.is_empty() && !d.cascade {
        return Err(Error::DatabaseNotEmpty {
            database: d.name.clone(),
            tables: tables
                .iter()
                .take(TABLES_NAMED)
                .map(|(_, n)| n.clone())
                .collect(),
            count: tables.len(),
        });
    }
    for (id, _) in &tables {
        delete_table_rows(conn, *id)?;
    }
    // Bookmarks of every `db.*` table: '/' sorts right after '.', so this is a prefix range
    // over crawl_objects_by_table.
    conn.execute(
        "DELETE FROM crawl_objects WHERE tbl >= ?1 AND tbl < ?2",
        params![format!("{}.", d.name), format!("{}/", d.name)],
    )
    .ctx("forgetting a dropped database's crawl bookmarks")?;
    conn.execute("DELETE FROM databases WHERE name = ?1", params![d.name])
        .ctx("dropping a database")?;
    Ok(())
}

fn update_database(conn: &Connection, db: &Database) -> Result<()> {
    let body: Option<String> = conn
        .query_row(
            "SELECT body FROM databases WHERE name = ?1",
            params![db.name],
            |r| r.get(0),
        )
        .optional()
        .ctx("reading a database")?;
    let Some(body) = body else {
        return Err(Error::DatabaseNotFound {
            database: db.name.clone(),
        });
    };
    let current: Database = from_json(&format!("database {}", db.name), &body)?;
    let stored = Database {
        create_time: current.create_time,
        ..db.clone()
    };
    conn.execute(
        "UPDATE databases SET body = ?1 WHERE name = ?2",
        params![to_json("database", &stored)?, db.name],
    )
    .ctx("updating a database")?;
    Ok(())
}

fn apply(conn: &mut Connection, write: CatalogWrite) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("starting a catalog transaction")?;
    for d in &write.drop_partitions {
        drop_partition(&tx, d)?;
    }
    for d in &write.drop_tables {
        drop_table(&tx, d)?;
    }
    for d in &write.drop_databases {
        drop_database(&tx, d)?;
    }
    for db in &write.databases {
        tx.execute(
            "INSERT INTO databases (name, body) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
            params![db.name, to_json("database", db)?],
        )
        .ctx("creating a database")?;
    }
    for db in &write.update_databases {
        update_database(&tx, db)?;
    }
    for tw in &write.tables {
        let t = &tw.table;
        if !database_exists(&tx, &t.database)? {
            return Err(Error::DatabaseNotFound {
                database: t.database.clone(),
            });
        }
        let current = table_row(&tx, &t.database, &t.name)?;
        let found = current.as_ref().map(|(_, t)| t.version);
        if found != tw.expected_version {
            return Err(Error::Conflict {
                what: format!("table {}", t.qualified_name()),
                expected: tw.expected_version,
                found,
            });
        }
        let mut stored = t.clone();
        stored.version = found.unwrap_or(0) + 1;
        let body = to_json("table", &stored)?;
        match current {
            None => {
                tx.execute(
                    "INSERT INTO tables (database, name, version, body) VALUES (?1, ?2, ?3, ?4)",
                    params![t.database, t.name, stored.version as i64, body],
                )
                .ctx("creating a table")?;
            }
            Some((id, old)) => {
                tx.execute(
                    "UPDATE tables SET version = ?1, body = ?2 WHERE id = ?3",
                    params![stored.version as i64, body, id],
                )
                .ctx("updating a table")?;
                if old.partition_keys != t.partition_keys {
                    reindex_table(&tx, id, &stored)?;
                }
            }
        }
    }
    for pw in &write.partitions {
        let p = &pw.partition;
        let PartitionRow {
            table_id,
            table,
            values_key,
            current,
        } = partition_row(&tx, &pw.database, &pw.table, &p.values)?;
        let found = current.map(|(_, v)| v as u64);
        if found != pw.expected_version {
            return Err(Error::Conflict {
                what: format!("partition {values_key} of {}", table.qualified_name()),
                expected: pw.expected_version,
                found,
            });
        }
        let mut stored = p.clone();
        stored.version = found.unwrap_or(0) + 1;
        let body = to_json("partition", &stored)?;
        let pid = match current {
            Some((id, _)) => {
                tx.execute(
                    "UPDATE partitions SET version = ?1, body = ?2 WHERE id = ?3",
                    params![stored.version as i64, body, id],
                )
                .ctx("updating a partition")?;
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO partitions (table_id, values_key, version, body) VALUES (?1, ?2, ?3, ?4)",
                    params![table_id, values_key, stored.version as i64, body],
                )
                .ctx("adding a partition")?;
                tx.last_insert_rowid()
            }
        };
        index_partition(&tx, table_id, pid, &table, &stored)?;
    }
    if let Some(target) = &write.crawl_target {
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO crawl_objects (target, path, size, fingerprint, tbl, rows, footer)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(target, path) DO UPDATE SET size = excluded.size,
                     fingerprint = excluded.fingerprint, tbl = excluded.tbl, rows = excluded.rows,
                     footer = excluded.footer",
            )
            .ctx("recording crawled objects")?;
        for o in &write.seen {
            upsert
                .execute(params![
                    target,
                    o.path,
                    o.size as i64,
                    o.fingerprint,
                    o.table,
                    o.rows.map(|r| r as i64),
                    o.footer
                ])
                .ctx("recording crawled objects")?;
        }
        let mut delete = tx
            .prepare_cached("DELETE FROM crawl_objects WHERE target = ?1 AND path = ?2")
            .ctx("forgetting removed objects")?;
        for path in &write.unseen {
            delete
                .execute(params![target, path])
                .ctx("forgetting removed objects")?;
        }
    }
    for path in &write.forget_objects {
        tx.execute("DELETE FROM crawl_objects WHERE path = ?1", params![path])
            .ctx("forgetting replaced objects")?;
    }
    crate::jobs::apply_job_parts(&tx, write.job_bookmark.as_ref(), &write.resolve_intents)?;
    tx.commit().ctx("committing the catalog transaction")
}

fn reindex_table(conn: &Connection, table_id: i64, table: &Table) -> Result<()> {
    let rows: Vec<(i64, String)> = {
        let mut stmt = conn
            .prepare("SELECT id, body FROM partitions WHERE table_id = ?1")
            .ctx("re-indexing partitions")?;
        stmt.query_map(params![table_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("re-indexing partitions")?
            .collect::<rusqlite::Result<_>>()
            .ctx("re-indexing partitions")?
    };
    for (id, body) in rows {
        let p: Partition = from_json("partition", &body)?;
        index_partition(conn, table_id, id, table, &p)?;
    }
    Ok(())
}

/// SQL for one key predicate over `partition_values`, with its parameters appended to `args`.
fn predicate_sql(
    table: &Table,
    key_index: usize,
    predicate: &KeyPredicate,
    args: &mut Vec<Value>,
) -> Result<String> {
    let key = &table.partition_keys[key_index];
    let order = ValueOrder::for_hive_type(&key.data_type);
    let column = match order {
        ValueOrder::Numeric => "num_value",
        ValueOrder::Text => "text_value",
    };
    let bind = |v: &str, args: &mut Vec<Value>| -> Result<String> {
        let value = match order {
            ValueOrder::Numeric => numeric(v).ok_or_else(|| Error::BadPartitionValue {
                table: table.qualified_name(),
                key: key.name.clone(),
                value: v.to_string(),
            })?,
            ValueOrder::Text => Value::Text(v.to_string()),
        };
        args.push(value);
        Ok(format!("?{}", args.len()))
    };
    let cond = match predicate {
        KeyPredicate::Eq(v) => format!("{column} = {}", bind(v, args)?),
        KeyPredicate::In(vs) if vs.is_empty() => "0".to_string(),
        KeyPredicate::In(vs) => {
            let slots = vs
                .iter()
                .map(|v| bind(v, args))
                .collect::<Result<Vec<_>>>()?;
            format!("{column} IN ({})", slots.join(", "))
        }
        KeyPredicate::Range { low, high } => {
            let mut parts = vec![format!("{column} IS NOT NULL")];
            match low {
                Bound::Included(v) => parts.push(format!("{column} >= {}", bind(v, args)?)),
                Bound::Excluded(v) => parts.push(format!("{column} > {}", bind(v, args)?)),
                Bound::Unbounded => {}
            }
            match high {
                Bound::Included(v) => parts.push(format!("{column} <= {}", bind(v, args)?)),
                Bound::Excluded(v) => parts.push(format!("{column} < {}", bind(v, args)?)),
                Bound::Unbounded => {}
            }
            parts.join(" AND ")
        }
        KeyPredicate::IsNull => "text_value IS NULL".to_string(),
        KeyPredicate::IsNotNull => "text_value IS NOT NULL".to_string(),
    };
    Ok(format!(
        "p.id IN (SELECT partition_id FROM partition_values WHERE table_id = ?1 AND key_index = {key_index} AND {cond})"
    ))
}

/// A `crawl_objects` row (path, size, fingerprint, tbl, rows[, footer]) as a bookmark.
fn seen_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SeenObject> {
    Ok(SeenObject {
        path: r.get(0)?,
        size: r.get::<_, i64>(1)? as u64,
        fingerprint: r.get(2)?,
        table: r.get(3)?,
        rows: r.get::<_, Option<i64>>(4)?.map(|n| n as u64),
        footer: match r.as_ref().column_count() {
            6 => r.get(5)?,
            _ => None,
        },
    })
}

impl SqliteCatalog {
    /// Bookmarks by object URL (the `crawl_objects_by_path` index), with footers if asked.
    fn bookmarks(&self, urls: &[String], footers: bool) -> Result<Vec<SeenObject>> {
        let extra = if footers { ", footer" } else { "" };
        self.with_conn(|conn| {
            let mut out = Vec::new();
            for chunk in urls.chunks(500) {
                let slots = vec!["?"; chunk.len()].join(", ");
                let mut stmt = conn
                    .prepare(&format!(
                        "SELECT path, size, fingerprint, tbl, rows{extra} FROM crawl_objects WHERE path IN ({slots})"
                    ))
                    .ctx("reading crawl bookmarks")?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(chunk), seen_row)
                    .ctx("reading crawl bookmarks")?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .ctx("reading crawl bookmarks")?;
                out.extend(rows);
            }
            Ok(out)
        })
    }
}

#[async_trait::async_trait]
impl Catalog for SqliteCatalog {
    fn commits_job_state(&self) -> bool {
        true
    }

    fn keeps_footers(&self) -> bool {
        true
    }

    async fn list_databases(&self) -> Result<Vec<Database>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare("SELECT body FROM databases ORDER BY name")
                .ctx("listing databases")?;
            let bodies = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .ctx("listing databases")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx("listing databases")?;
            bodies.iter().map(|b| from_json("database", b)).collect()
        })
    }

    async fn get_database(&self, name: &str) -> Result<Option<Database>> {
        self.with_conn(|conn| {
            let body: Option<String> = conn
                .query_row(
                    "SELECT body FROM databases WHERE name = ?1",
                    params![name],
                    |r| r.get(0),
                )
                .optional()
                .ctx("reading a database")?;
            body.map(|b| from_json("database", &b)).transpose()
        })
    }

    async fn list_tables(&self, database: &str) -> Result<Vec<Table>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare("SELECT body, version FROM tables WHERE database = ?1 ORDER BY name")
                .ctx("listing tables")?;
            let rows = stmt
                .query_map(params![database], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .ctx("listing tables")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx("listing tables")?;
            rows.iter()
                .map(|(b, v)| {
                    let mut t: Table = from_json("table", b)?;
                    t.version = *v as u64;
                    Ok(t)
                })
                .collect()
        })
    }

    async fn get_table(&self, database: &str, table: &str) -> Result<Option<Table>> {
        self.with_conn(|conn| Ok(table_row(conn, database, table)?.map(|(_, t)| t)))
    }

    async fn get_partitions(
        &self,
        database: &str,
        table: &str,
        filter: &PartitionFilter,
    ) -> Result<Vec<Partition>> {
        self.with_conn(|conn| {
            let (table_id, t) =
                table_row(conn, database, table)?.ok_or_else(|| Error::TableNotFound {
                    database: database.to_string(),
                    table: table.to_string(),
                })?;
            let mut args = vec![Value::Integer(table_id)];
            let mut sql =
                "SELECT p.body, p.version FROM partitions p WHERE p.table_id = ?1".to_string();
            for f in &filter.filters {
                let idx = t.partition_key_index(&f.key)?;
                sql.push_str(" AND ");
                sql.push_str(&predicate_sql(&t, idx, &f.predicate, &mut args)?);
            }
            sql.push_str(" ORDER BY p.values_key");
            let mut stmt = conn.prepare(&sql).ctx("looking up partitions")?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .ctx("looking up partitions")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx("looking up partitions")?;
            rows.iter()
                .map(|(b, v)| {
                    let mut p: Partition = from_json("partition", b)?;
                    p.version = *v as u64;
                    Ok(p)
                })
                .collect()
        })
    }

    async fn count_partitions(&self, database: &str, table: &str) -> Result<u64> {
        self.with_conn(|conn| {
            let (table_id, _) =
                table_row(conn, database, table)?.ok_or_else(|| Error::TableNotFound {
                    database: database.to_string(),
                    table: table.to_string(),
                })?;
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM partitions WHERE table_id = ?1",
                    params![table_id],
                    |r| r.get(0),
                )
                .ctx("counting partitions")?;
            Ok(n as u64)
        })
    }

    async fn seen_objects(&self, target: &str) -> Result<Vec<SeenObject>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT path, size, fingerprint, tbl, rows FROM crawl_objects WHERE target = ?1",
                )
                .ctx("reading crawl bookmarks")?;
            let rows = stmt
                .query_map(params![target], seen_row)
                .ctx("reading crawl bookmarks")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx("reading crawl bookmarks")?;
            Ok(rows)
        })
    }

    async fn objects(&self, urls: &[String]) -> Result<Vec<SeenObject>> {
        self.bookmarks(urls, false)
    }

    async fn uncommitted_objects(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .all_write_intents()?
            .into_iter()
            .flat_map(|i| i.published)
            .collect())
    }

    async fn objects_with_footers(&self, urls: &[String]) -> Result<Vec<SeenObject>> {
        self.bookmarks(urls, true)
    }

    async fn commit(&self, write: CatalogWrite) -> Result<()> {
        if write.is_empty() {
            return Ok(());
        }
        self.with_conn(|conn| apply(conn, write))
    }

    async fn column_statistics(
        &self,
        database: &str,
        table: &str,
        columns: &[String],
    ) -> Result<Vec<ColumnStatistics>> {
        self.with_conn(|conn| {
            let Some((id, _)) = table_row(conn, database, table)? else {
                return Err(Error::TableNotFound {
                    database: database.into(),
                    table: table.into(),
                });
            };
            let mut statement = conn
                .prepare_cached(
                    "SELECT body FROM column_statistics WHERE table_id = ?1 AND name = ?2",
                )
                .ctx("reading column statistics")?;
            let mut out = Vec::new();
            for column in columns {
                let body: Option<String> = statement
                    .query_row(params![id, column], |r| r.get(0))
                    .optional()
                    .ctx("reading column statistics")?;
                if let Some(body) = body {
                    out.push(from_json(
                        &format!("statistics of {database}.{table}.{column}"),
                        &body,
                    )?);
                }
            }
            Ok(out)
        })
    }

    async fn update_column_statistics(
        &self,
        database: &str,
        table: &str,
        statistics: &[ColumnStatistics],
    ) -> Result<()> {
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .ctx("starting a catalog transaction")?;
            let Some((id, _)) = table_row(&tx, database, table)? else {
                return Err(Error::TableNotFound {
                    database: database.into(),
                    table: table.into(),
                });
            };
            for s in statistics {
                tx.execute(
                    "INSERT INTO column_statistics (table_id, name, body) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (table_id, name) DO UPDATE SET body = excluded.body",
                    params![id, s.column, to_json("column statistics", s)?],
                )
                .ctx("storing column statistics")?;
            }
            tx.commit().ctx("committing column statistics")
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::{Column, PartitionWrite, StorageDescriptor, TableWrite};

    fn bookmark(path: &str, table: Option<&str>) -> SeenObject {
        SeenObject {
            path: format!("s3://b/{path}"),
            size: 10,
            fingerprint: "e1".into(),
            table: table.map(str::to_string),
            rows: Some(3),
            footer: Some(vec![1, 2, 3]),
        }
    }

    /// `seeded()`, plus a second table `db.u`, a table in another database `dbx.t` (whose
    /// name starts like `db.`'s tables) and crawl bookmarks for all of them and for a skipped
    /// object.
    async fn seeded_with_bookmarks() -> SqliteCatalog {
        let c = seeded().await;
        let mut other = table("t", &[]);
        other.database = "dbx".into();
        c.commit(CatalogWrite {
            databases: vec![Database::new("dbx")],
            tables: vec![
                TableWrite {
                    table: table("u", &[]),
                    expected_version: None,
                },
                TableWrite {
                    table: other,
                    expected_version: None,
                },
            ],
            crawl_target: Some("s3://b/".into()),
            seen: vec![
                bookmark("t/a.parquet", Some("db.t")),
                bookmark("t/b.parquet", Some("db.t")),
                bookmark("u/a.parquet", Some("db.u")),
                bookmark("x/a.parquet", Some("dbx.t")),
                bookmark("skipped.txt", None),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
        c
    }

    /// The bookmarks left under `s3://b/`, as `path -> table`, and how many rows of each
    /// kind the store holds (tables, partitions, partition index entries).
    async fn state(c: &SqliteCatalog) -> (Vec<(String, Option<String>)>, [i64; 3]) {
        let mut seen: Vec<_> = c
            .seen_objects("s3://b/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| (o.path.trim_start_matches("s3://b/").to_string(), o.table))
            .collect();
        seen.sort();
        let counts = c
            .with_conn(|conn| {
                let n = |t: &str| {
                    conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                        .unwrap()
                };
                Ok([n("tables"), n("partitions"), n("partition_values")])
            })
            .unwrap();
        (seen, counts)
    }

    fn drop_table(name: &str, expected_version: Option<u64>) -> TableDrop {
        TableDrop {
            database: "db".into(),
            table: name.into(),
            expected_version,
        }
    }

    fn drop_partition(values: &[Option<&str>], expected_version: Option<u64>) -> PartitionDrop {
        PartitionDrop {
            database: "db".into(),
            table: "t".into(),
            values: values.iter().map(|v| v.map(str::to_string)).collect(),
            expected_version,
        }
    }

    fn table(name: &str, keys: &[(&str, &str)]) -> Table {
        Table {
            database: "db".into(),
            name: name.into(),
            description: None,
            table_type: "EXTERNAL_TABLE".into(),
            view: None,
            storage: StorageDescriptor {
                location: format!("file:///lake/{name}/"),
                columns: vec![Column::new("x", "bigint")],
                ..Default::default()
            },
            partition_keys: keys.iter().map(|(n, t)| Column::new(*n, *t)).collect(),
            parameters: Default::default(),
            create_time: Utc::now(),
            update_time: Utc::now(),
            version: 0,
        }
    }

    fn partition(values: &[Option<&str>]) -> Partition {
        Partition {
            values: values.iter().map(|v| v.map(str::to_string)).collect(),
            location: "file:///lake/t/".into(),
            parameters: Default::default(),
            create_time: Utc::now(),
            update_time: Utc::now(),
            version: 0,
        }
    }

    async fn seeded() -> SqliteCatalog {
        let c = SqliteCatalog::open_in_memory().unwrap();
        let mut w = CatalogWrite {
            databases: vec![Database::new("db")],
            tables: vec![TableWrite {
                table: table("t", &[("dt", "date"), ("hr", "int"), ("region", "string")]),
                expected_version: None,
            }],
            ..Default::default()
        };
        for day in 1..=3 {
            for hr in [1, 2, 10] {
                for region in [Some("eu"), Some("us"), None] {
                    let dt = format!("2024-01-0{day}");
                    let hr = hr.to_string();
                    w.partitions.push(PartitionWrite {
                        database: "db".into(),
                        table: "t".into(),
                        partition: partition(&[Some(&dt), Some(&hr), region]),
                        expected_version: None,
                    });
                }
            }
        }
        c.commit(w).await.unwrap();
        c
    }

    #[tokio::test]
    async fn filters_by_eq_in_range_and_null() {
        let c = seeded().await;
        let n = |f: PartitionFilter| {
            let c = &c;
            async move { c.get_partitions("db", "t", &f).await.unwrap().len() }
        };
        assert_eq!(n(PartitionFilter::all()).await, 27);
        assert_eq!(n(PartitionFilter::all().eq("dt", "2024-01-02")).await, 9);
        // numeric, not text, order: 2 < hr <= 10 keeps only 10 (text order would put "10" < "2")
        let range = KeyPredicate::Range {
            low: Bound::Excluded("2".into()),
            high: Bound::Included("10".into()),
        };
        assert_eq!(n(PartitionFilter::all().and("hr", range)).await, 9);
        let f = PartitionFilter::all()
            .and("region", KeyPredicate::In(vec!["eu".into(), "us".into()]))
            .eq("hr", "1");
        assert_eq!(n(f).await, 6);
        assert_eq!(
            n(PartitionFilter::all().and("region", KeyPredicate::IsNull)).await,
            9
        );
        let err = c
            .get_partitions("db", "t", &PartitionFilter::all().eq("nope", "1"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("dt, hr, region"), "{err}");
        let err = c
            .get_partitions("db", "t", &PartitionFilter::all().eq("hr", "x"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::BadPartitionValue { .. }));
    }

    #[tokio::test]
    async fn lookups_use_the_index() {
        let c = seeded().await;
        c.with_conn(|conn| {
            let plan: Vec<String> = conn
                .prepare("EXPLAIN QUERY PLAN SELECT partition_id FROM partition_values WHERE table_id = 1 AND key_index = 1 AND num_value > 3")
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(plan.iter().any(|l| l.contains("USING INDEX partition_values_num")), "{plan:?}");
            Ok(())
        })
        .unwrap();
    }

    #[tokio::test]
    async fn failed_write_leaves_previous_state() {
        let c = seeded().await;
        let before = c.get_table("db", "t").await.unwrap().unwrap();
        let mut changed = before.clone();
        changed.storage.columns.push(Column::new("y", "string"));
        let w = CatalogWrite {
            tables: vec![TableWrite {
                table: changed,
                expected_version: Some(before.version),
            }],
            partitions: vec![PartitionWrite {
                database: "db".into(),
                table: "t".into(),
                partition: partition(&[Some("2024-02-01")]), // wrong arity: whole write fails
                expected_version: None,
            }],
            ..Default::default()
        };
        assert!(matches!(
            c.commit(w).await,
            Err(Error::PartitionArity { .. })
        ));
        assert_eq!(c.get_table("db", "t").await.unwrap().unwrap(), before);
        assert_eq!(c.count_partitions("db", "t").await.unwrap(), 27);
    }

    #[tokio::test]
    async fn stale_version_is_a_conflict() {
        let c = seeded().await;
        let t = c.get_table("db", "t").await.unwrap().unwrap();
        let write = |t: Table, v| CatalogWrite {
            tables: vec![TableWrite {
                table: t,
                expected_version: Some(v),
            }],
            ..Default::default()
        };
        c.commit(write(t.clone(), t.version)).await.unwrap();
        let err = c.commit(write(t.clone(), t.version)).await.unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err}");
    }

    #[tokio::test]
    async fn footers_are_kept_returned_on_request_and_added_to_older_catalogs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        {
            // A bookmark table as catalogs written before footers were kept have it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE crawl_objects (target TEXT NOT NULL, path TEXT NOT NULL,
                     size INTEGER NOT NULL, fingerprint TEXT NOT NULL, tbl TEXT, rows INTEGER,
                     PRIMARY KEY (target, path));
                 INSERT INTO crawl_objects VALUES ('s3://b/t', 's3://b/t/old.parquet', 10, 'e0', 'db.t', 3);",
            )
            .unwrap();
        }
        let c = SqliteCatalog::open(&path).unwrap();
        let object = |name: &str, footer: Option<Vec<u8>>| SeenObject {
            path: format!("s3://b/t/{name}"),
            size: 10,
            fingerprint: "e1".into(),
            table: Some("db.t".into()),
            rows: Some(3),
            footer,
        };
        c.commit(CatalogWrite {
            crawl_target: Some("s3://b/t".into()),
            seen: vec![
                object("a.parquet", Some(vec![1, 2, 3])),
                object("b.csv", None),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
        let urls: Vec<String> = ["old.parquet", "a.parquet", "b.csv"]
            .iter()
            .map(|n| format!("s3://b/t/{n}"))
            .collect();
        let mut with = c.objects_with_footers(&urls).await.unwrap();
        with.sort_by(|a, b| a.path.cmp(&b.path));
        let footers: Vec<_> = with.iter().map(|o| o.footer.clone()).collect();
        assert_eq!(footers, vec![Some(vec![1, 2, 3]), None, None]);
        assert_eq!(with[2].rows, Some(3), "the old bookmark survives");
        let without = c.objects(&urls).await.unwrap();
        assert_eq!(without.len(), 3);
        assert!(without.iter().all(|o| o.footer.is_none()));
        let seen = c.seen_objects("s3://b/t").await.unwrap();
        assert!(
            seen.iter().all(|o| o.footer.is_none()),
            "re-crawls skip the blobs"
        );
    }

    #[tokio::test]
    async fn concurrent_writers_on_one_file_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let setup = SqliteCatalog::open(&path).unwrap();
        setup
            .commit(CatalogWrite {
                databases: vec![Database::new("db")],
                tables: vec![TableWrite {
                    table: table("t", &[("k", "int")]),
                    expected_version: None,
                }],
                ..Default::default()
            })
            .await
            .unwrap();
        // Two independent connections (as two crawler processes would have) each add
        // partitions and a parameter to the table, retrying on conflict.
        let mut handles = Vec::new();
        for writer in 0..2 {
            let c = Arc::new(SqliteCatalog::open(&path).unwrap());
            handles.push(std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    for i in 0..20 {
                        loop {
                            let mut t = c.get_table("db", "t").await.unwrap().unwrap();
                            let v = t.version;
                            t.parameters.insert(format!("w{writer}_{i}"), "1".into());
                            let w = CatalogWrite {
                                tables: vec![TableWrite {
                                    table: t,
                                    expected_version: Some(v),
                                }],
                                partitions: vec![PartitionWrite {
                                    database: "db".into(),
                                    table: "t".into(),
                                    partition: partition(&[Some(&(writer * 100 + i).to_string())]),
                                    expected_version: None,
                                }],
                                ..Default::default()
                            };
                            match c.commit(w).await {
                                Ok(()) => break,
                                Err(Error::Conflict { .. }) => continue,
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                })
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        let t = setup.get_table("db", "t").await.unwrap().unwrap();
        assert_eq!(t.parameters.len(), 40);
        assert_eq!(setup.count_partitions("db", "t").await.unwrap(), 40);
    }

    #[tokio::test]
    async fn dropping_a_table_takes_its_partitions_and_bookmarks() {
        let c = seeded_with_bookmarks().await;
        let (_, [tables, partitions, values]) = state(&c).await;
        assert_eq!((tables, partitions, values), (3, 27, 81));
        let t = c.get_table("db", "t").await.unwrap().unwrap();
        c.commit(CatalogWrite {
            drop_tables: vec![drop_table("t", Some(t.version))],
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(c.get_table("db", "t").await.unwrap(), None);
        assert!(matches!(
            c.count_partitions("db", "t").await,
            Err(Error::TableNotFound { .. })
        ));
        let (seen, counts) = state(&c).await;
        assert_eq!(counts, [2, 0, 0]);
        // A re-crawl inspects t's objects again (and creates the table again).
        let tables: Vec<_> = seen
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_deref()))
            .collect();
        assert_eq!(
            tables,
            [
                ("skipped.txt", None),
                ("u/a.parquet", Some("db.u")),
                ("x/a.parquet", Some("dbx.t"))
            ]
        );
        let footers = c
            .objects_with_footers(&["s3://b/t/a.parquet".to_string()])
            .await
            .unwrap();
        assert!(footers.is_empty(), "{footers:?}");

        let again = c
            .commit(CatalogWrite {
                drop_tables: vec![drop_table("t", None)],
                ..Default::default()
            })
            .await;
        assert!(
            matches!(again, Err(Error::TableNotFound { .. })),
            "{again:?}"
        );
    }

    #[tokio::test]
    async fn dropping_a_partition_checks_its_version_and_that_it_exists() {
        let c = seeded().await;
        let null_region = [Some("2024-01-02"), Some("10"), None];
        let eu = PartitionFilter::all().eq("dt", "2024-01-02").eq("hr", "10");
        let before = c.get_partitions("db", "t", &eu).await.unwrap();
        assert_eq!(before.len(), 3);
        let stale = c
            .commit(CatalogWrite {
                drop_partitions: vec![drop_partition(&null_region, Some(before[0].version + 1))],
                ..Default::default()
            })
            .await;
        assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
        c.commit(CatalogWrite {
            drop_partitions: vec![drop_partition(&null_region, Some(before[0].version))],
            ..Default::default()
        })
        .await
        .unwrap();
        let after = c.get_partitions("db", "t", &eu).await.unwrap();
        let regions: Vec<_> = after.iter().map(|p| p.values[2].as_deref()).collect();
        assert_eq!(regions, [Some("eu"), Some("us")]);
        assert_eq!(c.count_partitions("db", "t").await.unwrap(), 26);
        let nulls = PartitionFilter::all().and("region", KeyPredicate::IsNull);
        assert_eq!(c.get_partitions("db", "t", &nulls).await.unwrap().len(), 8);

        let err = c
            .commit(CatalogWrite {
                drop_partitions: vec![drop_partition(&null_region, None)],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PartitionNotFound { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "partition (dt='2024-01-02', hr='10', region=NULL) of table 'db.t' does not exist; \
             list them with SHOW PARTITIONS db.t"
        );
        let short = c
            .commit(CatalogWrite {
                drop_partitions: vec![drop_partition(&[Some("2024-01-01")], None)],
                ..Default::default()
            })
            .await;
        assert!(
            matches!(short, Err(Error::PartitionArity { .. })),
            "{short:?}"
        );
    }

    #[tokio::test]
    async fn a_database_with_tables_is_dropped_only_with_cascade() {
        let c = seeded_with_bookmarks().await;
        let drop_db = |cascade| CatalogWrite {
            drop_databases: vec![DatabaseDrop {
                name: "db".into(),
                cascade,
            }],
            ..Default::default()
        };
        let err = c.commit(drop_db(false)).await.unwrap_err();
        assert!(matches!(err, Error::DatabaseNotEmpty { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "database 'db' is not empty: it holds 2 tables (t, u); drop those tables first or use \
             DROP DATABASE db CASCADE"
        );
        assert!(c.get_database("db").await.unwrap().is_some());
        assert_eq!(state(&c).await.1, [3, 27, 81]);

        c.commit(drop_db(true)).await.unwrap();
        assert_eq!(c.get_database("db").await.unwrap(), None);
        assert!(c.list_tables("db").await.unwrap().is_empty());
        let (seen, counts) = state(&c).await;
        assert_eq!(counts, [1, 0, 0], "dbx.t stays");
        let paths: Vec<_> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["skipped.txt", "x/a.parquet"]);

        let missing = c.commit(drop_db(true)).await;
        assert!(
            matches!(missing, Err(Error::DatabaseNotFound { .. })),
            "{missing:?}"
        );
        // Dropping its tables first, in the same write, empties it.
        c.commit(CatalogWrite {
            drop_tables: vec![TableDrop {
                database: "dbx".into(),
                table: "t".into(),
                expected_version: None,
            }],
            drop_databases: vec![DatabaseDrop {
                name: "dbx".into(),
                cascade: false,
            }],
            ..Default::default()
        })
        .await
        .unwrap();
        assert!(c.list_databases().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_non_empty_database_error_names_a_few_tables() {
        let c = SqliteCatalog::open_in_memory().unwrap();
        c.commit(CatalogWrite {
            databases: vec![Database::new("db")],
            tables: (0..7)
                .map(|i| TableWrite {
                    table: table(&format!("t{i}"), &[]),
                    expected_version: None,
                })
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap();
        let err = c
            .commit(CatalogWrite {
                drop_databases: vec![DatabaseDrop {
                    name: "db".into(),
                    cascade: false,
                }],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("it holds 7 tables (t0, t1, t2, t3, t4, ...)"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_write_with_one_bad_drop_applies_nothing() {
        let c = seeded_with_bookmarks().await;
        let before = state(&c).await;
        let t = c.get_table("db", "t").await.unwrap().unwrap();
        let bad = [
            // the table was changed since it was read
            drop_table("u", Some(t.version + 1)),
            // it does not exist
            drop_table("nope", None),
        ];
        for bad in bad {
            let write = CatalogWrite {
                drop_partitions: vec![drop_partition(
                    &[Some("2024-01-01"), Some("1"), Some("eu")],
                    None,
                )],
                drop_tables: vec![drop_table("t", Some(t.version)), bad],
                databases: vec![Database::new("db2")],
                ..Default::default()
            };
            assert!(c.commit(write).await.is_err());
            assert_eq!(state(&c).await, before);
            assert_eq!(c.get_table("db", "t").await.unwrap().unwrap(), t);
            assert_eq!(c.get_database("db2").await.unwrap(), None);
        }
        // A table created in a database this write drops.
        let write = CatalogWrite {
            drop_databases: vec![DatabaseDrop {
                name: "db".into(),
                cascade: true,
            }],
            tables: vec![TableWrite {
                table: table("v", &[]),
                expected_version: None,
            }],
            ..Default::default()
        };
        let err = c.commit(write).await;
        assert!(
            matches!(err, Err(Error::DatabaseNotFound { .. })),
            "{err:?}"
        );
        assert_eq!(state(&c).await, before);
    }

    #[tokio::test]
    async fn one_write_drops_and_recreates_a_table() {
        let c = seeded_with_bookmarks().await;
        let old = c.get_table("db", "t").await.unwrap().unwrap();
        let new = table("t", &[("year", "int")]);
        c.commit(CatalogWrite {
            drop_tables: vec![drop_table("t", Some(old.version))],
            tables: vec![TableWrite {
                table: new.clone(),
                expected_version: None,
            }],
            partitions: vec![PartitionWrite {
                database: "db".into(),
                table: "t".into(),
                partition: partition(&[Some("2024")]),
                expected_version: None,
            }],
            crawl_target: Some("s3://b/".into()),
            seen: vec![bookmark("t/year=2024/c.csv", Some("db.t"))],
            ..Default::default()
        })
        .await
        .unwrap();
        let t = c.get_table("db", "t").await.unwrap().unwrap();
        assert_eq!(t.partition_keys, new.partition_keys);
        assert_eq!(t.version, 1);
        let parts = c
            .get_partitions("db", "t", &PartitionFilter::all().eq("year", "2024"))
            .await
            .unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(c.count_partitions("db", "t").await.unwrap(), 1);
        let (seen, counts) = state(&c).await;
        assert_eq!(counts, [3, 1, 1]);
        let of_t: Vec<_> = seen
            .iter()
            .filter(|(_, t)| t.as_deref() == Some("db.t"))
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(
            of_t,
            ["t/year=2024/c.csv"],
            "old bookmarks go, new ones stay"
        );
    }

    #[tokio::test]
    async fn databases_are_created_when_missing_and_updated_on_request() {
        let c = seeded().await;
        let created = c.get_database("db").await.unwrap().unwrap();
        let mut changed = Database::new("db");
        changed.description = Some("sales".into());
        changed.location = Some("s3://b/db/".into());
        c.commit(CatalogWrite {
            databases: vec![changed.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(c.get_database("db").await.unwrap().unwrap(), created);
        c.commit(CatalogWrite {
            update_databases: vec![changed.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
        let updated = c.get_database("db").await.unwrap().unwrap();
        assert_eq!(updated.description.as_deref(), Some("sales"));
        assert_eq!(updated.location.as_deref(), Some("s3://b/db/"));
        assert_eq!(updated.create_time, created.create_time);
        let missing = c
            .commit(CatalogWrite {
                update_databases: vec![Database::new("nope")],
                ..Default::default()
            })
            .await;
        assert!(
            matches!(missing, Err(Error::DatabaseNotFound { .. })),
            "{missing:?}"
        );
    }
}
