//! Records a front end keeps in the catalog file: Athena API executions (by id, newest first)
//! and named objects (workgroups, prepared statements), each a JSON body the front end owns.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use crate::error::StoreContext;
use crate::{Result, SqliteCatalog};

pub(crate) const RECORDS_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS executions (
    id           TEXT PRIMARY KEY,
    scope        TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_by_scope ON executions (scope, submitted_at);
CREATE TABLE IF NOT EXISTS named_objects (
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
"#;

impl SqliteCatalog {
    /// Insert or replace execution `id` (in `scope`, e.g. its workgroup).
    pub fn put_execution(
        &self,
        id: &str,
        scope: &str,
        submitted_at: DateTime<Utc>,
        body: &str,
    ) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO executions (id, scope, submitted_at, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET body = excluded.body, scope = excluded.scope",
                params![id, scope, submitted_at.to_rfc3339(), body],
            )
            .ctx("recording an execution")?;
            Ok(())
        })
    }

    pub fn execution(&self, id: &str) -> Result<Option<String>> {
        self.with_conn(|conn| {
            conn.query_row(
                "SELECT body FROM executions WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .ctx("reading an execution")
        })
    }

    /// Ids of `scope`'s executions, newest first, at most `limit`, after execution `after` (the
    /// last id of the previous page): executions submitted meanwhile do not shift the pages.
    pub fn execution_ids(
        &self,
        scope: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT id FROM executions WHERE scope = ?1
                       AND (?2 IS NULL OR (submitted_at, rowid) <
                            (SELECT submitted_at, rowid FROM executions WHERE id = ?2))
                     ORDER BY submitted_at DESC, rowid DESC LIMIT ?3",
                )
                .ctx("listing executions")?;
            stmt.query_map(params![scope, after, limit as i64], |r| r.get(0))
                .ctx("listing executions")?
                .collect::<rusqlite::Result<Vec<String>>>()
                .ctx("listing executions")
        })
    }

    /// Bodies of executions whose body contains `needle` (a cheap pre-filter, e.g. for
    /// executions left unfinished by a restart).
    pub fn executions_containing(&self, needle: &str) -> Result<Vec<String>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare("SELECT body FROM executions WHERE instr(body, ?1) > 0")
                .ctx("reading executions")?;
            stmt.query_map(params![needle], |r| r.get(0))
                .ctx("reading executions")?
                .collect::<rusqlite::Result<Vec<String>>>()
                .ctx("reading executions")
        })
    }

    /// Delete executions submitted before `before` (and the named objects of `token_kind`
    /// that pointed at them); returns the deleted ids, for their result files.
    pub fn prune_executions(&self, before: DateTime<Utc>, token_kind: &str) -> Result<Vec<String>> {
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .ctx("starting a catalog transaction")?;
            let ids: Vec<String> = {
                let mut stmt = tx
                    .prepare("SELECT id FROM executions WHERE submitted_at < ?1")
                    .ctx("pruning executions")?;
                stmt.query_map(params![before.to_rfc3339()], |r| r.get(0))
                    .ctx("pruning executions")?
                    .collect::<rusqlite::Result<Vec<String>>>()
                    .ctx("pruning executions")?
            };
            tx.execute(
                "DELETE FROM executions WHERE submitted_at < ?1",
                params![before.to_rfc3339()],
            )
            .ctx("pruning executions")?;
            tx.execute(
                "DELETE FROM named_objects WHERE kind = ?1 AND body NOT IN (SELECT id FROM executions)",
                params![token_kind],
            )
            .ctx("pruning executions")?;
            tx.commit().ctx("pruning executions")?;
            Ok(ids)
        })
    }

    /// Insert or replace a named object of `kind`.
    pub fn put_named(&self, kind: &str, name: &str, body: &str) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO named_objects (kind, name, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT(kind, name) DO UPDATE SET body = excluded.body",
                params![kind, name, body],
            )
            .ctx("recording a named object")?;
            Ok(())
        })
    }

    /// Create a named object unless one exists; false when it does.
    pub fn create_named(&self, kind: &str, name: &str, body: &str) -> Result<bool> {
        self.with_conn(|conn| {
            let n = conn
                .execute(
                    "INSERT INTO named_objects (kind, name, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT(kind, name) DO NOTHING",
                    params![kind, name, body],
                )
                .ctx("creating a named object")?;
            Ok(n == 1)
        })
    }

    pub fn named(&self, kind: &str, name: &str) -> Result<Option<String>> {
        self.with_conn(|conn| {
            conn.query_row(
                "SELECT body FROM named_objects WHERE kind = ?1 AND name = ?2",
                params![kind, name],
                |r| r.get(0),
            )
            .optional()
            .ctx("reading a named object")
        })
    }

    /// All objects of `kind`, by name.
    pub fn list_named(&self, kind: &str) -> Result<Vec<(String, String)>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare("SELECT name, body FROM named_objects WHERE kind = ?1 ORDER BY name")
                .ctx("listing named objects")?;
            stmt.query_map(params![kind], |r| Ok((r.get(0)?, r.get(1)?)))
                .ctx("listing named objects")?
                .collect::<rusqlite::Result<Vec<(String, String)>>>()
                .ctx("listing named objects")
        })
    }

    /// Delete a named object; false when there was none.
    pub fn delete_named(&self, kind: &str, name: &str) -> Result<bool> {
        self.with_conn(|conn| {
            let n = conn
                .execute(
                    "DELETE FROM named_objects WHERE kind = ?1 AND name = ?2",
                    params![kind, name],
                )
                .ctx("deleting a named object")?;
            Ok(n == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_page_newest_first_and_named_objects_are_unique() {
        let c = SqliteCatalog::open_in_memory().unwrap();
        let t = Utc::now();
        for i in 0..5 {
            c.put_execution(
                &format!("q{i}"),
                "primary",
                t + chrono::Duration::seconds(i),
                "{}",
            )
            .unwrap();
        }
        c.put_execution("other", "wg2", t, "{\"state\":\"RUNNING\"}")
            .unwrap();
        assert_eq!(c.execution_ids("primary", None, 2).unwrap(), ["q4", "q3"]);
        assert_eq!(
            c.execution_ids("primary", Some("q3"), 2).unwrap(),
            ["q2", "q1"]
        );
        c.put_execution("q5", "primary", t + chrono::Duration::seconds(9), "{}")
            .unwrap();
        assert_eq!(
            c.execution_ids("primary", Some("q1"), 2).unwrap(),
            ["q0"],
            "a new execution does not shift later pages"
        );
        assert_eq!(c.executions_containing("RUNNING").unwrap().len(), 1);
        c.put_named("tok", "t1", "q0").unwrap();
        c.put_named("tok", "t2", "q4").unwrap();
        let pruned = c
            .prune_executions(t + chrono::Duration::milliseconds(1500), "tok")
            .unwrap();
        assert_eq!(pruned.len(), 3, "{pruned:?}");
        assert!(c.execution("q0").unwrap().is_none());
        assert!(c.named("tok", "t1").unwrap().is_none());
        assert_eq!(c.named("tok", "t2").unwrap().as_deref(), Some("q4"));
        assert!(c.create_named("wg", "a", "1").unwrap());
        assert!(!c.create_named("wg", "a", "2").unwrap());
        assert_eq!(c.named("wg", "a").unwrap().as_deref(), Some("1"));
        c.put_named("wg", "a", "3").unwrap();
        assert_eq!(
            c.list_named("wg").unwrap(),
            [("a".to_string(), "3".to_string())]
        );
        assert!(c.delete_named("wg", "a").unwrap());
        assert!(!c.delete_named("wg", "a").unwrap());
    }
}
