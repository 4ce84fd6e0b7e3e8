//! Trino syntax that DataFusion's planner reads differently, rewritten in the parsed AST before
//! planning (beside the lateral `UNNEST` rewrite of [`crate::unnest`]).
//!
//! - `x AT TIME ZONE zone` becomes `at_timezone(x, zone)`. DataFusion plans it as a cast, which
//!   keeps the wall-clock time of a timestamp without a zone (`with_timezone`'s meaning); Trino
//!   reads such a timestamp in the session zone (UTC in Athena) and keeps the instant.
//! - Timestamp literals in Trino's forms: `TIMESTAMP '2012-10-31 01:00'` (no seconds) and
//!   `TIMESTAMP '2012-10-31 01:00 America/Los_Angeles'` (a zone, so a `timestamp with time
//!   zone`: `with_timezone(TIMESTAMP '2012-10-31 01:00:00', 'America/Los_Angeles')`).

use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::common::{DataFusionError, Result};
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    self, DataType, Expr, Query, TimezoneInfo, TypedString, Value, VisitMut, VisitorMut,
};
use regex::Regex;

use crate::unnest::function;

/// Rewrites `statement` (including subqueries and CTEs).
pub fn rewrite_statement(statement: &mut ast::Statement) -> Result<()> {
    match statement.visit(&mut Rewriter) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Rewrites a statement as DataFusion's parser returns it.
pub fn rewrite_df_statement(statement: &mut DFStatement) -> Result<()> {
    match statement {
        DFStatement::Statement(s) => rewrite_statement(s),
        DFStatement::CopyTo(c) => match &mut c.source {
            CopyToSource::Query(q) => rewrite_query(q),
            CopyToSource::Relation(_) => Ok(()),
        },
        DFStatement::Explain(e) => rewrite_df_statement(&mut e.statement),
        _ => Ok(()),
    }
}

/// Rewrites `query` (including subqueries and CTEs).
pub fn rewrite_query(query: &mut Query) -> Result<()> {
    match query.visit(&mut Rewriter) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct Rewriter;

impl VisitorMut for Rewriter {
    type Break = DataFusionError;

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<DataFusionError> {
        match expr {
            Expr::AtTimeZone {
                timestamp,
                time_zone,
            } => {
                let args = vec![
                    std::mem::replace(timestamp.as_mut(), Expr::value(Value::Null)),
                    std::mem::replace(time_zone.as_mut(), Expr::value(Value::Null)),
                ];
                *expr = function("at_timezone", args);
            }
            Expr::TypedString(TypedString {
                data_type: DataType::Timestamp(None, TimezoneInfo::None),
                value,
                ..
            }) => {
                if let Some(text) = value.value.clone().into_string()
                    && let Some((local, zone)) = timestamp_literal(&text)
                {
                    value.value = Value::SingleQuotedString(local);
                    if let Some(zone) = zone {
                        let literal = std::mem::replace(expr, Expr::value(Value::Null));
                        *expr = function(
                            "with_timezone",
                            vec![literal, Expr::value(Value::SingleQuotedString(zone))],
                        );
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Trino's `TIMESTAMP` literal text as DataFusion reads it (seconds added) and its zone, when
/// it differs from what DataFusion accepts; `None` to leave the literal alone.
fn timestamp_literal(text: &str) -> Option<(String, Option<String>)> {
    static FORM: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^\s*(\d{4,}-\d{1,2}-\d{1,2})(?:[ T](\d{1,2}:\d{1,2})(:\d{1,2}(?:\.\d+)?)?)?\s*([A-Za-z+-].*?)?\s*$",
        )
        .expect("a valid regex")
    });
    let c = FORM.captures(text)?;
    let date = c.get(1)?.as_str();
    let zone = c.get(4).map(|z| z.as_str().to_string());
    let local = match (c.get(2), c.get(3)) {
        (Some(hm), Some(s)) => format!("{date} {}{}", hm.as_str(), s.as_str()),
        (Some(hm), None) => format!("{date} {}:00", hm.as_str()),
        (None, _) => date.to_string(),
    };
    (zone.is_some() || (c.get(2).is_some() && c.get(3).is_none())).then_some((local, zone))
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut statements = Parser::parse_sql(&GenericDialect {}, sql).unwrap();
        rewrite_statement(&mut statements[0]).unwrap();
        statements[0].to_string()
    }

    #[test]
    fn at_time_zone_becomes_at_timezone() {
        assert_eq!(
            rewritten("SELECT t.x AT TIME ZONE 'UTC' FROM t"),
            "SELECT at_timezone(t.x, 'UTC') FROM t"
        );
    }

    #[test]
    fn timestamp_literals_in_trino_forms() {
        assert_eq!(
            rewritten("SELECT TIMESTAMP '2012-10-31 01:00 UTC', TIMESTAMP '2012-10-31 01:00'"),
            "SELECT with_timezone(TIMESTAMP '2012-10-31 01:00:00', 'UTC'), \
             TIMESTAMP '2012-10-31 01:00:00'"
        );
        assert_eq!(
            rewritten("SELECT TIMESTAMP '2020-05-11 11:15:05.055+01:00'"),
            "SELECT with_timezone(TIMESTAMP '2020-05-11 11:15:05.055', '+01:00')"
        );
        let plain =
            "SELECT TIMESTAMP '2012-10-31 01:00:00', TIMESTAMP '2012-10-31', TIMESTAMP 'junk'";
        assert_eq!(rewritten(plain), plain);
    }
}
