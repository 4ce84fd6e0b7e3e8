//! Prepared statements, as Athena has them: named objects of a workgroup kept in the catalog
//! store (so one `quarry sql` run prepares and a later one executes, and `quarry serve`'s
//! PreparedStatement calls see the same ones), with `?` parameters that are bound as values.
//!
//! Binding never touches SQL text: each value is parsed on its own into one expression, checked
//! to be a constant (no column, no subquery), and put in place of its `?` in the parsed
//! statement, in the order the `?`s appear in the text.

use std::ops::ControlFlow;

use chrono::Utc;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    Expr, Query, Value, ValueWithSpan, Visit, VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::dialect_from_str;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Location;
use quarry_catalog::SqliteCatalog;

use crate::error::Error;
use crate::statement::Statement;

/// The named-object kind prepared statements are stored under.
pub const KIND: &str = "prepared_statement";
/// The workgroup of statements that name none.
pub const DEFAULT_WORKGROUP: &str = "primary";

/// The store key of `name` in workgroup `wg`.
pub fn key(wg: &str, name: &str) -> String {
    format!("{wg}/{name}")
}

/// The stored body, as the Athena API returns it from GetPreparedStatement.
pub fn body(wg: &str, name: &str, sql: &str, description: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "StatementName": name,
        "WorkGroupName": wg,
        "QueryStatement": sql,
        "Description": description,
        "LastModifiedTime": Utc::now().timestamp_millis() as f64 / 1000.0,
    })
}

/// Stores (or replaces) a prepared statement.
pub fn put(store: &SqliteCatalog, wg: &str, name: &str, sql: &str) -> Result<(), Error> {
    store.put_named(KIND, &key(wg, name), &body(wg, name, sql, None).to_string())?;
    Ok(())
}

/// The SQL of a prepared statement, or an error that says how to make one.
pub fn load(store: &SqliteCatalog, wg: &str, name: &str) -> Result<String, Error> {
    let body = store.named(KIND, &key(wg, name))?.ok_or_else(|| {
        Error::user(format!(
            "prepared statement {name} does not exist in workgroup {wg}; create it with \
             PREPARE {name} FROM <statement>"
        ))
    })?;
    let v: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| Error::internal(format!("prepared statement {name} is damaged: {e}")))?;
    v["QueryStatement"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::internal(format!("prepared statement {name} has no statement")))
}

/// Deletes a prepared statement; an error if there is none.
pub fn delete(store: &SqliteCatalog, wg: &str, name: &str) -> Result<(), Error> {
    if store.delete_named(KIND, &key(wg, name))? {
        Ok(())
    } else {
        Err(Error::user(format!(
            "prepared statement {name} does not exist in workgroup {wg}"
        )))
    }
}

/// Parses parameter values given as text (Athena's `ExecutionParameters`), each one expression.
pub fn parse_values(texts: &[String], dialect: &str) -> Result<Vec<Expr>, Error> {
    let d = dialect_from_str(dialect)
        .ok_or_else(|| Error::user(format!("unsupported SQL dialect '{dialect}'")))?;
    texts
        .iter()
        .map(|t| {
            let mut p = Parser::new(d.as_ref())
                .try_with_sql(t)
                .map_err(|e| Error::user(format!("parameter {t}: {e}")))?;
            let e = p
                .parse_expr()
                .map_err(|e| Error::user(format!("parameter {t}: {e}")))?;
            if p.peek_token_ref().token != datafusion::sql::sqlparser::tokenizer::Token::EOF {
                return Err(Error::user(format!(
                    "parameter {t} is more than one value; give each value on its own"
                )));
            }
            Ok(e)
        })
        .collect()
}

/// Refuses values that are not constants: a column or a subquery has no place in a parameter.
fn check_value(e: &Expr) -> Result<(), Error> {
    struct Check(Option<String>);
    impl Visitor for Check {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(_)
                | Expr::CompoundIdentifier(_)
                | Expr::Subquery(_)
                | Expr::Exists { .. }
                | Expr::InSubquery { .. } => {
                    self.0 = Some(e.to_string());
                    ControlFlow::Break(())
                }
                Expr::Value(ValueWithSpan {
                    value: Value::Placeholder(_),
                    ..
                }) => {
                    self.0 = Some(e.to_string());
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    let mut c = Check(None);
    let _ = e.visit(&mut c);
    match c.0 {
        None => Ok(()),
        Some(bad) => Err(Error::user(format!(
            "parameter value {e} is not a constant ({bad}); give literals such as 'text', 42 or \
             DATE '2024-01-01'"
        ))),
    }
}

/// The parts of a statement that may hold `?` parameters.
fn for_each_query(
    statement: &mut Statement,
    f: &mut dyn FnMut(&mut dyn VisitMutDyn),
) -> Result<(), Error> {
    match statement {
        Statement::Query(s) => df_statement(s, f),
        Statement::ExplainCost(inner) => for_each_query(inner, f),
        Statement::CreateTableAs(c) => {
            f(&mut c.query);
            Ok(())
        }
        Statement::Insert(i) => {
            f(&mut i.query);
            Ok(())
        }
        Statement::Unload(u) => {
            f(&mut u.query);
            Ok(())
        }
        _ => Ok(()),
    }
}

fn df_statement(s: &mut DFStatement, f: &mut dyn FnMut(&mut dyn VisitMutDyn)) -> Result<(), Error> {
    match s {
        DFStatement::Statement(inner) => {
            f(inner.as_mut());
            Ok(())
        }
        DFStatement::Explain(e) => df_statement(e.statement.as_mut(), f),
        _ => Ok(()),
    }
}

/// Object-safe visiting of the AST nodes a statement holds.
trait VisitMutDyn {
    fn visit_dyn(&mut self, v: &mut dyn FnMut(&mut Expr));
    fn each_placeholder(&self, v: &mut dyn FnMut(Location));
}

impl<T: Visit + VisitMut> VisitMutDyn for T {
    fn visit_dyn(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        struct V<'a>(&'a mut dyn FnMut(&mut Expr));
        impl VisitorMut for V<'_> {
            type Break = ();
            fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
                (self.0)(e);
                ControlFlow::Continue(())
            }
        }
        let _ = self.visit(&mut V(f));
    }

    fn each_placeholder(&self, f: &mut dyn FnMut(Location)) {
        struct V<'a>(&'a mut dyn FnMut(Location));
        impl Visitor for V<'_> {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
                if let Some(at) = question_mark(e) {
                    (self.0)(at);
                }
                ControlFlow::Continue(())
            }
        }
        let _ = self.visit(&mut V(f));
    }
}

/// Where a `?` parameter stands, if `e` is one.
fn question_mark(e: &Expr) -> Option<Location> {
    match e {
        Expr::Value(ValueWithSpan {
            value: Value::Placeholder(p),
            span,
        }) if p == "?" => Some(span.start),
        _ => None,
    }
}

/// The `?` parameters of a statement, by their place in the text.
fn parameter_places(statement: &mut Statement) -> Result<Vec<Location>, Error> {
    let mut places = Vec::new();
    for_each_query(statement, &mut |node| {
        node.each_placeholder(&mut |at| places.push(at));
    })?;
    places.sort_by_key(|l| (l.line, l.column));
    places.dedup();
    Ok(places)
}

/// Replaces each `?` of `statement`, in text order, by `make(position)`.
fn replace_parameters(
    statement: &mut Statement,
    places: &[Location],
    make: &dyn Fn(usize) -> Expr,
) -> Result<(), Error> {
    for_each_query(statement, &mut |node| {
        node.visit_dyn(&mut |e| {
            if let Some(at) = question_mark(e)
                && let Ok(i) =
                    places.binary_search_by_key(&(at.line, at.column), |l| (l.line, l.column))
            {
                *e = make(i);
            }
        });
    })
}

/// Binds `values` to the `?` parameters of `statement`, in the order they appear in the text.
/// The count must match (Athena's error otherwise).
pub fn bind(statement: &mut Statement, values: &[Expr]) -> Result<(), Error> {
    let places = parameter_places(statement)?;
    if places.len() != values.len() {
        return Err(Error::user(format!(
            "Incorrect number of parameters: expected {} but found {}",
            places.len(),
            values.len()
        )));
    }
    if places.is_empty() {
        return Ok(());
    }
    for v in values {
        check_value(v)?;
    }
    replace_parameters(statement, &places, &|i| {
        Expr::Nested(Box::new(values[i].clone()))
    })
}

/// Turns the `?` parameters into DataFusion's numbered `$1, $2, ..` (for DESCRIBE INPUT, which
/// asks the planner their types); returns how many there are.
pub fn number_parameters(statement: &mut Statement) -> Result<usize, Error> {
    let places = parameter_places(statement)?;
    replace_parameters(statement, &places, &|i| {
        Expr::Value(ValueWithSpan {
            value: Value::Placeholder(format!("${}", i + 1)),
            span: datafusion::sql::sqlparser::tokenizer::Span::empty(),
        })
    })?;
    Ok(places.len())
}

/// The query a statement runs (a query itself, or the query of a CTAS, INSERT or UNLOAD).
pub fn query_of(statement: &Statement) -> Option<Query> {
    use datafusion::sql::sqlparser::ast::Statement as Sql;
    match statement {
        Statement::Query(DFStatement::Statement(s)) => match s.as_ref() {
            Sql::Query(q) => Some(q.as_ref().clone()),
            _ => None,
        },
        Statement::CreateTableAs(c) => Some(c.query.clone()),
        Statement::Insert(i) => Some(i.query.clone()),
        Statement::Unload(u) => Some(u.query.clone()),
        _ => None,
    }
}

/// For each output column of `query`'s top-level SELECT, whether it was given an alias
/// (`*` expands to unaliased columns; other shapes report none).
pub fn aliased_columns(query: &Query) -> Vec<bool> {
    use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr};
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Vec::new();
    };
    if select.projection.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    }) {
        return Vec::new();
    }
    select
        .projection
        .iter()
        .map(|i| matches!(i, SelectItem::ExprWithAlias { .. }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Statement {
        crate::statement::parse(sql, "generic").expect("parses")
    }

    fn text(s: &Statement) -> String {
        match s {
            Statement::Query(q) => q.to_string(),
            Statement::Insert(i) => i.query.to_string(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn values_bind_in_text_order_as_values() {
        let mut s = parse("SELECT ? AS a FROM t WHERE x = ? AND y IN (?, 3) LIMIT 5");
        let values = parse_values(
            &["'it''s'".into(), "-1".into(), "DATE '2024-01-01'".into()],
            "generic",
        )
        .unwrap();
        bind(&mut s, &values).unwrap();
        assert_eq!(
            text(&s),
            "SELECT ('it''s') AS a FROM t WHERE x = (-1) AND y IN ((DATE '2024-01-01'), 3) LIMIT 5"
        );
        // A value cannot smuggle in SQL: it must be one constant expression.
        assert!(
            parse_values(&["1; DROP TABLE t".into()], "generic")
                .unwrap_err()
                .to_string()
                .contains("more than one value")
        );
        let mut s = parse("SELECT * FROM t WHERE x = ?");
        let e = bind(&mut s, &parse_values(&["y".into()], "generic").unwrap()).unwrap_err();
        assert!(e.to_string().contains("not a constant"), "{e}");
        let e = bind(&mut s, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Incorrect number of parameters: expected 1 but found 0"
        );
    }

    #[test]
    fn writes_take_parameters_and_describe_input_numbers_them() {
        let mut s = parse("INSERT INTO t SELECT * FROM u WHERE a = ? AND b = ?");
        assert_eq!(number_parameters(&mut s).unwrap(), 2);
        assert_eq!(text(&s), "SELECT * FROM u WHERE a = $1 AND b = $2");
    }
}
