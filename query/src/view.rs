//! Views, stored the way Athena stores them so Quarry and Athena read each other's: a Glue table
//! of type `VIRTUAL_VIEW` with `presto_view = true`, `ViewOriginalText = "/* Presto View:
//! <base64 JSON> */"` (Trino's `ConnectorViewDefinition`: the original SQL, its catalog and
//! schema, and the output columns with Trino types) and `ViewExpandedText = "/* Presto View */"`
//! (Athena user guide, "Working with views"; Trino `ViewReaderUtil`).
//!
//! A query reads a view by inlining it: every reference to a view becomes a subquery of the
//! view's SQL (recursively, views over views), so filters on a view reach the base tables'
//! partition pruning and bytes are billed as for the query written out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, Query, Statement as SqlStatement, TableAlias, TableFactor,
    Visit, VisitMut, Visitor, VisitorMut,
};
use quarry_catalog::{Catalog, Column, StorageDescriptor, Table, VIRTUAL_VIEW, ViewText};
use serde::{Deserialize, Serialize};

use crate::error::Error;

const PREFIX: &str = "/* Presto View: ";
const SUFFIX: &str = " */";
/// Glue's `ViewExpandedText` of an Athena view.
pub const EXPANDED_TEXT: &str = "/* Presto View */";
/// How deep views may nest before it is called a cycle.
const MAX_DEPTH: usize = 32;

/// Trino's `ConnectorViewDefinition`, as Athena serialises it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrestoView {
    pub original_sql: String,
    #[serde(default)]
    pub catalog: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    pub columns: Vec<ViewColumn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default)]
    pub run_as_invoker: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

impl PrestoView {
    /// `/* Presto View: <base64 JSON> */`.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a view definition serialises");
        format!("{PREFIX}{}{SUFFIX}", STANDARD.encode(json))
    }

    /// Reads `ViewOriginalText`; the error says what is wrong with it.
    pub fn decode(text: &str) -> Result<Self, String> {
        let body = text
            .trim()
            .strip_prefix(PREFIX)
            .and_then(|t| t.strip_suffix(SUFFIX))
            .ok_or("its text is not an Athena (Presto) view: '/* Presto View: ... */'")?;
        let json = STANDARD
            .decode(body.trim())
            .map_err(|e| format!("its definition is not base64: {e}"))?;
        serde_json::from_slice(&json).map_err(|e| format!("its definition is not valid: {e}"))
    }
}

/// The catalog entry of view `database.name` over `sql`, whose result has `schema`;
/// `session_db` is the database unqualified names in `sql` were read in (Trino's view
/// definition records it, and reads the view in it again).
pub fn view_table(
    database: &str,
    name: &str,
    sql: &str,
    schema: &Schema,
    comment: Option<String>,
    session_db: Option<&str>,
) -> Table {
    let now = Utc::now();
    let definition = PrestoView {
        original_sql: sql.to_string(),
        catalog: Some(crate::provider::DEFAULT_CATALOG.to_string()),
        schema: Some(session_db.unwrap_or(database).to_string()),
        columns: schema
            .fields()
            .iter()
            .map(|f| ViewColumn {
                name: f.name().clone(),
                data_type: trino_type(f.data_type()),
            })
            .collect(),
        comment: comment.clone(),
        owner: None,
        run_as_invoker: false,
    };
    let mut parameters = BTreeMap::new();
    parameters.insert("presto_view".to_string(), "true".to_string());
    parameters.insert("comment".to_string(), "Presto View".to_string());
    Table {
        database: database.to_string(),
        name: name.to_string(),
        description: comment,
        table_type: VIRTUAL_VIEW.to_string(),
        view: Some(ViewText {
            original: definition.encode(),
            expanded: EXPANDED_TEXT.to_string(),
        }),
        storage: StorageDescriptor {
            columns: schema
                .fields()
                .iter()
                .map(|f| Column::new(f.name(), quarry_catalog::types::to_hive(f.data_type())))
                .collect(),
            ..Default::default()
        },
        partition_keys: Vec::new(),
        parameters,
        create_time: now,
        update_time: now,
        version: 0,
    }
}

/// The view's definition, or an error naming the view.
pub fn definition(t: &Table) -> Result<PrestoView, Error> {
    let text = t
        .view
        .as_ref()
        .map(|v| v.original.as_str())
        .ok_or_else(|| {
            Error::user(format!(
                "view {} has no ViewOriginalText; re-create it",
                t.qualified_name()
            ))
        })?;
    PrestoView::decode(text)
        .map_err(|e| Error::user(format!("view {} cannot be read: {e}", t.qualified_name())))
}

/// Trino's name of an Arrow type, as view columns record it.
pub fn trino_type(t: &DataType) -> String {
    match t {
        DataType::Null => "unknown".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 | DataType::UInt8 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "varbinary".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(unit, zone) => {
            let p = match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond => 6,
                TimeUnit::Nanosecond => 9,
            };
            match zone {
                Some(_) => format!("timestamp({p}) with time zone"),
                None => format!("timestamp({p})"),
            }
        }
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _) => format!("array({})", trino_type(f.data_type())),
        DataType::Struct(fields) => format!(
            "row({})",
            fields
                .iter()
                .map(|f| format!("{} {}", f.name(), trino_type(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map({}, {})",
                trino_type(kv[0].data_type()),
                trino_type(kv[1].data_type())
            ),
            other => trino_type(other),
        },
        DataType::Dictionary(_, v) => trino_type(v),
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// Names a statement reads from as relations, and the CTE names it defines.
struct Relations {
    names: Vec<ObjectName>,
    ctes: HashSet<String>,
}

impl Visitor for Relations {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.names.push(relation.clone());
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_ascii_lowercase());
            }
        }
        ControlFlow::Continue(())
    }
}

fn relations<V: Visit>(node: &V) -> Relations {
    let mut r = Relations {
        names: Vec::new(),
        ctes: HashSet::new(),
    };
    let _ = node.visit(&mut r);
    r
}

fn ident_text(part: &ObjectNamePart) -> Option<String> {
    let ident = part.as_ident()?;
    Some(match ident.quote_style {
        None => ident.value.to_ascii_lowercase(),
        Some(_) => ident.value.clone(),
    })
}

/// `(database, table)` a relation names, if it is in Quarry's catalog (`awsdatacatalog`).
fn catalog_name(name: &ObjectName, default_db: Option<&str>) -> Option<(String, String)> {
    let parts: Vec<String> = name.0.iter().map(ident_text).collect::<Option<_>>()?;
    match parts.as_slice() {
        [t] => Some((default_db?.to_string(), t.clone())),
        [d, t] => Some((d.clone(), t.clone())),
        [c, d, t] if c.eq_ignore_ascii_case(crate::provider::DEFAULT_CATALOG) => {
            Some((d.clone(), t.clone()))
        }
        _ => None,
    }
}

/// A view resolved for inlining: its query, parsed and with its own views inlined.
type Resolved = HashMap<(String, String), Query>;

/// Tables (not views) looked up while finding views, `None` for names that are not in the
/// catalog, so planning need not look them up again.
pub type Known = HashMap<(String, String), Option<Table>>;

/// Replaces every view that `statement` reads (a query, EXPLAIN, CTAS, INSERT, UNLOAD or a
/// view's own query) with a subquery of the view's SQL, recursively. Statements that read no
/// view are untouched.
pub async fn inline_views(
    catalog: &Arc<dyn Catalog>,
    statement: &mut crate::statement::Statement,
    default_db: Option<&str>,
    dialect: &str,
    known: &mut Known,
) -> Result<(), Error> {
    use crate::statement::Statement as S;
    match statement {
        S::Query(s) => inline_df(catalog, s, default_db, dialect, known).await,
        S::ExplainCost(inner) => {
            Box::pin(inline_views(catalog, inner, default_db, dialect, known)).await
        }
        S::CreateTableAs(c) => inline(catalog, &mut c.query, default_db, dialect, known).await,
        S::Insert(i) => inline(catalog, &mut i.query, default_db, dialect, known).await,
        S::Unload(u) => inline(catalog, &mut u.query, default_db, dialect, known).await,
        S::CreateView(v) => inline(catalog, v.query.as_mut(), default_db, dialect, known).await,
        _ => Ok(()),
    }
}

async fn inline_df(
    catalog: &Arc<dyn Catalog>,
    statement: &mut DFStatement,
    default_db: Option<&str>,
    dialect: &str,
    known: &mut Known,
) -> Result<(), Error> {
    match statement {
        DFStatement::Statement(inner) => {
            inline(catalog, inner.as_mut(), default_db, dialect, known).await
        }
        DFStatement::Explain(e) => {
            Box::pin(inline_df(
                catalog,
                e.statement.as_mut(),
                default_db,
                dialect,
                known,
            ))
            .await
        }
        _ => Ok(()),
    }
}

async fn inline<V: Visit + VisitMut + Sync>(
    catalog: &Arc<dyn Catalog>,
    node: &mut V,
    default_db: Option<&str>,
    dialect: &str,
    known: &mut Known,
) -> Result<(), Error> {
    let mut resolved = Resolved::new();
    resolve(
        catalog,
        &*node,
        default_db,
        dialect,
        &mut resolved,
        known,
        0,
    )
    .await?;
    if resolved.is_empty() {
        return Ok(());
    }
    let ctes = relations(&*node).ctes;
    replace(node, default_db, &ctes, &resolved);
    Ok(())
}

/// Finds the views `node` reads, parses and resolves each (depth-first, cycles refused).
fn resolve<'a, V: Visit + Sync>(
    catalog: &'a Arc<dyn Catalog>,
    node: &'a V,
    default_db: Option<&'a str>,
    dialect: &'a str,
    resolved: &'a mut Resolved,
    known: &'a mut Known,
    depth: usize,
) -> futures::future::BoxFuture<'a, Result<(), Error>> {
    Box::pin(async move {
        let rels = relations(node);
        let mut seen = HashSet::new();
        for name in rels.names {
            let single = name.0.len() == 1;
            let Some(key) = catalog_name(&name, default_db) else {
                continue;
            };
            if (single && rels.ctes.contains(&key.1)) || resolved.contains_key(&key) {
                continue;
            }
            if !seen.insert(key.clone()) {
                continue;
            }
            if known.contains_key(&key) {
                continue;
            }
            let Some(table) = catalog.get_table(&key.0, &key.1).await? else {
                known.insert(key, None);
                continue;
            };
            if !table.is_view() {
                known.insert(key, Some(table));
                continue;
            }
            if depth >= MAX_DEPTH {
                return Err(Error::user(format!(
                    "view {} nests more than {MAX_DEPTH} views deep; a view that reads itself \
                     is a cycle",
                    table.qualified_name()
                )));
            }
            let def = definition(&table)?;
            let view_db = def.schema.clone().unwrap_or_else(|| key.0.clone());
            let mut query = parse_view_query(&def.original_sql, dialect)
                .map_err(|e| Error::user(format!("view {}: {e}", table.qualified_name())))?;
            resolve(
                catalog,
                &query,
                Some(view_db.as_str()),
                dialect,
                resolved,
                known,
                depth + 1,
            )
            .await?;
            let ctes = relations(&query).ctes;
            replace(&mut query, Some(&view_db), &ctes, resolved);
            resolved.insert(key, query);
        }
        Ok(())
    })
}

/// The query of a view's SQL, through Quarry's statement parser (Athena syntax included).
fn parse_view_query(sql: &str, dialect: &str) -> Result<Query, String> {
    match crate::statement::parse(sql, dialect).map_err(|e| e.to_string())? {
        crate::statement::Statement::Query(DFStatement::Statement(s)) => match *s {
            SqlStatement::Query(q) => Ok(*q),
            other => Err(format!("its SQL is not a query: {other}")),
        },
        _ => Err("its SQL is not a query".into()),
    }
}

/// Turns relations naming resolved views into subqueries; inside a view, names without a
/// database are qualified with the view's (so they do not follow the reader's `-d`).
fn replace<V: VisitMut>(
    node: &mut V,
    default_db: Option<&str>,
    ctes: &HashSet<String>,
    resolved: &Resolved,
) {
    struct Replace<'a> {
        default_db: Option<&'a str>,
        ctes: &'a HashSet<String>,
        resolved: &'a Resolved,
    }
    impl VisitorMut for Replace<'_> {
        type Break = ();

        fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::Table {
                name, alias, args, ..
            } = factor
            else {
                return ControlFlow::Continue(());
            };
            if args.is_some() {
                return ControlFlow::Continue(());
            }
            let single = name.0.len() == 1;
            let Some(key) = catalog_name(name, self.default_db) else {
                return ControlFlow::Continue(());
            };
            if single && self.ctes.contains(&key.1) {
                return ControlFlow::Continue(());
            }
            if let Some(query) = self.resolved.get(&key) {
                let alias = alias.take().unwrap_or_else(|| TableAlias {
                    explicit: true,
                    name: Ident::new(key.1.clone()),
                    columns: Vec::new(),
                    at: None,
                });
                *factor = TableFactor::Derived {
                    lateral: false,
                    subquery: Box::new(query.clone()),
                    alias: Some(alias),
                    sample: None,
                };
            } else if single && let Some(db) = self.default_db {
                name.0.insert(0, ObjectNamePart::Identifier(Ident::new(db)));
            }
            ControlFlow::Continue(())
        }
    }
    let _ = node.visit(&mut Replace {
        default_db,
        ctes,
        resolved,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Fields};

    #[test]
    fn the_presto_view_text_round_trips_and_reads_athenas() {
        let v = PrestoView {
            original_sql: "SELECT a FROM t".into(),
            catalog: Some("awsdatacatalog".into()),
            schema: Some("db".into()),
            columns: vec![ViewColumn {
                name: "a".into(),
                data_type: "varchar".into(),
            }],
            comment: None,
            owner: None,
            run_as_invoker: false,
        };
        let text = v.encode();
        assert!(text.starts_with("/* Presto View: eyJ"), "{text}");
        assert!(text.ends_with(" */"));
        assert_eq!(PrestoView::decode(&text).unwrap(), v);
        // As Athena writes it: other fields, an owner, no comment.
        let athena = serde_json::json!({
            "originalSql": "SELECT * FROM \"db\".\"t\"", "catalog": "awsdatacatalog",
            "schema": "db", "columns": [{"name": "x", "type": "bigint"}],
            "owner": "arn:aws:iam::123456789012:user/u", "runAsInvoker": false,
            "properties": {}
        });
        let text = format!("/* Presto View: {} */", STANDARD.encode(athena.to_string()));
        let read = PrestoView::decode(&text).unwrap();
        assert_eq!(read.original_sql, "SELECT * FROM \"db\".\"t\"");
        assert_eq!(read.columns[0].data_type, "bigint");
        assert!(
            PrestoView::decode("SELECT 1")
                .unwrap_err()
                .contains("Presto View")
        );
        assert!(
            PrestoView::decode("/* Presto View: !!! */")
                .unwrap_err()
                .contains("base64")
        );
    }

    #[test]
    fn trino_type_names() {
        let row = DataType::Struct(Fields::from(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        assert_eq!(trino_type(&row), "row(a integer, b varchar)");
        let list = DataType::List(Arc::new(Field::new("item", DataType::Float64, true)));
        assert_eq!(trino_type(&list), "array(double)");
        assert_eq!(
            trino_type(&DataType::Timestamp(TimeUnit::Millisecond, None)),
            "timestamp(3)"
        );
        assert_eq!(trino_type(&DataType::Decimal128(10, 2)), "decimal(10,2)");
    }
}
