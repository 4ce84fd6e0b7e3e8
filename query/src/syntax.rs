//! Trino syntax that DataFusion's planner reads differently, rewritten in the parsed AST before
//! planning (beside the lateral `UNNEST` rewrite of [`crate::unnest`]).
//!
//! - `x AT TIME ZONE zone` becomes `at_timezone(x, zone)`. DataFusion plans it as a cast, which
//!   keeps the wall-clock time of a timestamp without a zone (`with_timezone`'s meaning); Trino
//!   reads such a timestamp in the session zone (UTC in Athena) and keeps the instant.
//! - Timestamp literals in Trino's forms: `TIMESTAMP '2012-10-31 01:00'` (no seconds) and
//!   `TIMESTAMP '2012-10-31 01:00 America/Los_Angeles'` (a zone, so a `timestamp with time
//!   zone`: `with_timezone(TIMESTAMP '2012-10-31 01:00:00', 'America/Los_Angeles')`).
//! - `CAST(x AS varchar(n))` keeps the first n characters (`left(CAST(x AS varchar), n)`), as
//!   Trino truncates on an explicit cast to a shorter varchar.
//! - `JSON '[1, 2]'` is `json_parse('[1, 2]')` (Trino's `json` is text here), and casts to
//!   Trino's row, array, map and JSON types are rewritten in the text before parsing
//!   ([`rewrite_casts`]).
//! - Lambdas (parsed with [`TrinoDialect`]): `transform` and `filter` with a lambda are
//!   DataFusion's `array_transform` and `array_filter`, which have Trino's semantics (NULL
//!   array in, NULL out; `filter` keeps the elements whose predicate is TRUE); `any_match` is
//!   DataFusion's; `all_match(a, x -> p)` becomes `NOT any_match(a, x -> NOT p)` and
//!   `none_match(a, x -> p)` becomes `NOT any_match(a, x -> p)`, which give Trino's answers in
//!   three-valued logic. `reduce` is Quarry's (`functions/reduce.rs`). `zip_with`,
//!   `transform_keys` / `transform_values`, `map_filter` and `array_sort` with a comparator have
//!   no implementation yet and are unknown functions.

use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::common::{DataFusionError, Result};
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use std::any::TypeId;
use std::borrow::Cow;

use datafusion::sql::sqlparser::ast::{
    self, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName,
    Query, TimezoneInfo, TypedString, UnaryOperator, Value, VisitMut, VisitorMut,
    visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect};
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use regex::Regex;

use crate::unnest::function;

/// Rewrites `statement` (including subqueries and CTEs): the lateral `UNNEST` of
/// [`crate::unnest`] first, then this module's rewrites. The one entry point for every parsed
/// statement and query, so no statement kind misses one of them.
pub fn rewrite_statement(statement: &mut ast::Statement) -> Result<()> {
    crate::unnest::rewrite_statement(statement)?;
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

/// Rewrites `query` (including subqueries and CTEs), as [`rewrite_statement`] does.
pub fn rewrite_query(query: &mut Query) -> Result<()> {
    crate::unnest::rewrite_query(query)?;
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
            // `CAST(x AS varchar(n))` keeps the first n characters, as in Trino (DataFusion
            // has no length on strings and would keep them all).
            Expr::Cast {
                data_type:
                    data_type @ DataType::Varchar(Some(ast::CharacterLength::IntegerLength { .. })),
                ..
            } => {
                let DataType::Varchar(Some(ast::CharacterLength::IntegerLength { length, .. })) =
                    *data_type
                else {
                    return ControlFlow::Continue(());
                };
                *data_type = DataType::Varchar(None);
                let cast = std::mem::replace(expr, Expr::value(Value::Null));
                *expr = function(
                    "left",
                    vec![cast, Expr::value(Value::Number(length.to_string(), false))],
                );
            }
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
                data_type: DataType::JSON,
                value,
                ..
            }) => {
                let text = Expr::value(value.value.clone());
                *expr = function("json_parse", vec![text]);
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
            // `s.sum` on a lambda parameter `s` is a field of it, not a column of a table `s`.
            Expr::Lambda(lambda) => {
                let params: Vec<String> =
                    lambda.params.iter().map(|p| normalize(&p.name)).collect();
                let _ = visit_expressions_mut(lambda.body.as_mut(), |e| {
                    if let Expr::CompoundIdentifier(parts) = e
                        && parts.len() >= 2
                        && params.contains(&normalize(&parts[0]))
                    {
                        let mut access = Expr::Identifier(parts[0].clone());
                        for field in &parts[1..] {
                            access = function(
                                "get_field",
                                vec![
                                    access,
                                    Expr::value(Value::SingleQuotedString(field.value.clone())),
                                ],
                            );
                        }
                        *e = access;
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
            Expr::Function(f) if has_lambda(f) => {
                let name = f.name.to_string().to_ascii_lowercase();
                match name.as_str() {
                    "transform" => f.name = ObjectName::from(vec![Ident::new("array_transform")]),
                    "filter" => f.name = ObjectName::from(vec![Ident::new("array_filter")]),
                    // all_match(a, x -> p) is NOT any_match(a, x -> NOT p), and none_match(a,
                    // x -> p) is NOT any_match(a, x -> p), in three-valued logic too: a FALSE
                    // (TRUE) element decides, else a NULL one makes the answer NULL.
                    "all_match" | "none_match" => {
                        f.name = ObjectName::from(vec![Ident::new("any_match")]);
                        if name == "all_match"
                            && let FunctionArguments::List(list) = &mut f.args
                            && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Lambda(
                                lambda,
                            )))) = list.args.get_mut(1)
                        {
                            let body =
                                std::mem::replace(lambda.body.as_mut(), Expr::value(Value::Null));
                            *lambda.body = Expr::UnaryOp {
                                op: UnaryOperator::Not,
                                expr: Box::new(Expr::Nested(Box::new(body))),
                            };
                        }
                        let call = std::mem::replace(expr, Expr::value(Value::Null));
                        *expr = Expr::UnaryOp {
                            op: UnaryOperator::Not,
                            expr: Box::new(Expr::Nested(Box::new(call))),
                        };
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// An identifier as DataFusion resolves it (unquoted: lower case).
fn normalize(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_ascii_lowercase()
    }
}

/// A call with a lambda argument (`transform(a, x -> x + 1)`).
fn has_lambda(f: &ast::Function) -> bool {
    matches!(&f.args, FunctionArguments::List(list) if list.args.iter().any(|a| {
        matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Lambda(_))))
    }))
}

/// sqlparser's generic dialect with Trino's lambda expressions (`x -> x + 1`,
/// `(s, x) -> s + x`), which sqlparser parses only for dialects that declare them. The parser
/// also treats it as the generic dialect where it checks the dialect's type. `->` is therefore a
/// lambda, as in Trino, not PostgreSQL's JSON operator.
#[derive(Debug, Default)]
pub struct TrinoDialect;

impl Dialect for TrinoDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<GenericDialect>()
    }

    fn supports_lambda_functions(&self) -> bool {
        true
    }

    // The rest is GenericDialect's.
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        GenericDialect {}.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        GenericDialect {}.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        GenericDialect {}.is_identifier_part(ch)
    }

    fn supports_unicode_string_literal(&self) -> bool {
        GenericDialect {}.supports_unicode_string_literal()
    }

    fn supports_partition_by_after_order_by(&self) -> bool {
        GenericDialect {}.supports_partition_by_after_order_by()
    }

    fn supports_array_join_syntax(&self) -> bool {
        GenericDialect {}.supports_array_join_syntax()
    }

    fn supports_group_by_expr(&self) -> bool {
        GenericDialect {}.supports_group_by_expr()
    }

    fn supports_group_by_with_modifier(&self) -> bool {
        GenericDialect {}.supports_group_by_with_modifier()
    }

    fn supports_left_associative_joins_without_parens(&self) -> bool {
        GenericDialect {}.supports_left_associative_joins_without_parens()
    }

    fn supports_connect_by(&self) -> bool {
        GenericDialect {}.supports_connect_by()
    }

    fn supports_match_recognize(&self) -> bool {
        GenericDialect {}.supports_match_recognize()
    }

    fn supports_pipe_operator(&self) -> bool {
        GenericDialect {}.supports_pipe_operator()
    }

    fn supports_start_transaction_modifier(&self) -> bool {
        GenericDialect {}.supports_start_transaction_modifier()
    }

    fn supports_window_function_null_treatment_arg(&self) -> bool {
        GenericDialect {}.supports_window_function_null_treatment_arg()
    }

    fn supports_dictionary_syntax(&self) -> bool {
        GenericDialect {}.supports_dictionary_syntax()
    }

    fn supports_window_clause_named_window_reference(&self) -> bool {
        GenericDialect {}.supports_window_clause_named_window_reference()
    }

    fn supports_parenthesized_set_variables(&self) -> bool {
        GenericDialect {}.supports_parenthesized_set_variables()
    }

    fn supports_select_wildcard_except(&self) -> bool {
        GenericDialect {}.supports_select_wildcard_except()
    }

    fn support_map_literal_syntax(&self) -> bool {
        GenericDialect {}.support_map_literal_syntax()
    }

    fn allow_extract_custom(&self) -> bool {
        GenericDialect {}.allow_extract_custom()
    }

    fn allow_extract_single_quotes(&self) -> bool {
        GenericDialect {}.allow_extract_single_quotes()
    }

    fn supports_extract_comma_syntax(&self) -> bool {
        GenericDialect {}.supports_extract_comma_syntax()
    }

    fn supports_create_view_comment_syntax(&self) -> bool {
        GenericDialect {}.supports_create_view_comment_syntax()
    }

    fn supports_parens_around_table_factor(&self) -> bool {
        GenericDialect {}.supports_parens_around_table_factor()
    }

    fn supports_values_as_table_factor(&self) -> bool {
        GenericDialect {}.supports_values_as_table_factor()
    }

    fn supports_create_index_with_clause(&self) -> bool {
        GenericDialect {}.supports_create_index_with_clause()
    }

    fn supports_explain_with_utility_options(&self) -> bool {
        GenericDialect {}.supports_explain_with_utility_options()
    }

    fn supports_limit_comma(&self) -> bool {
        GenericDialect {}.supports_limit_comma()
    }

    fn supports_update_order_by(&self) -> bool {
        GenericDialect {}.supports_update_order_by()
    }

    fn supports_from_first_select(&self) -> bool {
        GenericDialect {}.supports_from_first_select()
    }

    fn supports_projection_trailing_commas(&self) -> bool {
        GenericDialect {}.supports_projection_trailing_commas()
    }

    fn supports_asc_desc_in_column_definition(&self) -> bool {
        GenericDialect {}.supports_asc_desc_in_column_definition()
    }

    fn supports_try_convert(&self) -> bool {
        GenericDialect {}.supports_try_convert()
    }

    fn supports_bitwise_shift_operators(&self) -> bool {
        GenericDialect {}.supports_bitwise_shift_operators()
    }

    fn supports_comment_on(&self) -> bool {
        GenericDialect {}.supports_comment_on()
    }

    fn supports_load_extension(&self) -> bool {
        GenericDialect {}.supports_load_extension()
    }

    fn supports_named_fn_args_with_assignment_operator(&self) -> bool {
        GenericDialect {}.supports_named_fn_args_with_assignment_operator()
    }

    fn supports_struct_literal(&self) -> bool {
        GenericDialect {}.supports_struct_literal()
    }

    fn supports_empty_projections(&self) -> bool {
        GenericDialect {}.supports_empty_projections()
    }

    fn supports_nested_comments(&self) -> bool {
        GenericDialect {}.supports_nested_comments()
    }

    fn supports_multiline_comment_hints(&self) -> bool {
        GenericDialect {}.supports_multiline_comment_hints()
    }

    fn supports_user_host_grantee(&self) -> bool {
        GenericDialect {}.supports_user_host_grantee()
    }

    fn supports_string_escape_constant(&self) -> bool {
        GenericDialect {}.supports_string_escape_constant()
    }

    fn supports_array_typedef_with_brackets(&self) -> bool {
        GenericDialect {}.supports_array_typedef_with_brackets()
    }

    fn supports_match_against(&self) -> bool {
        GenericDialect {}.supports_match_against()
    }

    fn supports_set_names(&self) -> bool {
        GenericDialect {}.supports_set_names()
    }

    fn supports_comma_separated_set_assignments(&self) -> bool {
        GenericDialect {}.supports_comma_separated_set_assignments()
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        GenericDialect {}.supports_filter_during_aggregation()
    }

    fn supports_select_wildcard_exclude(&self) -> bool {
        GenericDialect {}.supports_select_wildcard_exclude()
    }

    fn supports_data_type_signed_suffix(&self) -> bool {
        GenericDialect {}.supports_data_type_signed_suffix()
    }

    fn supports_interval_options(&self) -> bool {
        GenericDialect {}.supports_interval_options()
    }

    fn supports_quote_delimited_string(&self) -> bool {
        GenericDialect {}.supports_quote_delimited_string()
    }

    fn supports_select_wildcard_replace(&self) -> bool {
        GenericDialect {}.supports_select_wildcard_replace()
    }

    fn supports_select_wildcard_ilike(&self) -> bool {
        GenericDialect {}.supports_select_wildcard_ilike()
    }

    fn supports_select_wildcard_rename(&self) -> bool {
        GenericDialect {}.supports_select_wildcard_rename()
    }

    fn supports_optimize_table(&self) -> bool {
        GenericDialect {}.supports_optimize_table()
    }

    fn supports_install(&self) -> bool {
        GenericDialect {}.supports_install()
    }

    fn supports_detach(&self) -> bool {
        GenericDialect {}.supports_detach()
    }

    fn supports_prewhere(&self) -> bool {
        GenericDialect {}.supports_prewhere()
    }

    fn supports_with_fill(&self) -> bool {
        GenericDialect {}.supports_with_fill()
    }

    fn supports_limit_by(&self) -> bool {
        GenericDialect {}.supports_limit_by()
    }

    fn supports_interpolate(&self) -> bool {
        GenericDialect {}.supports_interpolate()
    }

    fn supports_settings(&self) -> bool {
        GenericDialect {}.supports_settings()
    }

    fn supports_select_format(&self) -> bool {
        GenericDialect {}.supports_select_format()
    }

    fn supports_comment_optimizer_hint(&self) -> bool {
        GenericDialect {}.supports_comment_optimizer_hint()
    }

    fn supports_constraint_keyword_without_name(&self) -> bool {
        GenericDialect {}.supports_constraint_keyword_without_name()
    }

    fn supports_key_column_option(&self) -> bool {
        GenericDialect {}.supports_key_column_option()
    }

    fn supports_comma_separated_trim(&self) -> bool {
        GenericDialect {}.supports_comma_separated_trim()
    }

    fn supports_cte_without_as(&self) -> bool {
        GenericDialect {}.supports_cte_without_as()
    }

    fn supports_select_item_multi_column_alias(&self) -> bool {
        GenericDialect {}.supports_select_item_multi_column_alias()
    }

    fn supports_xml_expressions(&self) -> bool {
        GenericDialect {}.supports_xml_expressions()
    }
}

/// Rewrites `CAST(x AS t)` and `TRY_CAST(x AS t)` where `t` is in Trino's spelling of a row,
/// array, map or JSON type, which sqlparser cannot parse (`ARRAY(INTEGER)`, `ROW(a INT, b
/// DECIMAL(10, 2))`), into `__quarry_cast(x, 't')` (see `functions/cast.rs`), in the SQL text.
/// Text that does not tokenize is returned as it is, for the parser to report.
pub fn rewrite_casts(sql: &str) -> Cow<'_, str> {
    let Ok(tokens) = Tokenizer::new(&TrinoDialect, sql)
        .with_unescape(false)
        .tokenize_with_location()
    else {
        return Cow::Borrowed(sql);
    };
    // Byte offsets of the lines, to turn (line, column) into a byte offset.
    let mut lines = vec![0];
    lines.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
    let offset = |l: &datafusion::sql::sqlparser::tokenizer::Location| -> Option<usize> {
        let start = *lines.get(usize::try_from(l.line).ok()?.checked_sub(1)?)?;
        let column = usize::try_from(l.column).ok()?.checked_sub(1)?;
        Some(
            sql[start..]
                .char_indices()
                .nth(column)
                .map_or(sql.len(), |(i, _)| start + i),
        )
    };
    let tokens: Vec<_> = tokens
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let word = |i: usize| match tokens.get(i).map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for i in 0..tokens.len() {
        let name = match word(i).as_deref() {
            Some("CAST") => crate::functions::cast_function_name(false),
            Some("TRY_CAST") => crate::functions::cast_function_name(true),
            _ => continue,
        };
        if tokens.get(i + 1).map(|t| &t.token) != Some(&Token::LParen) {
            continue;
        }
        // The `AS` at the call's own depth, and the closing parenthesis.
        let (mut depth, mut as_at, mut close) = (0usize, None, None);
        for (j, t) in tokens.iter().enumerate().skip(i + 1) {
            match t.token {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(j);
                        break;
                    }
                }
                _ if depth == 1 && as_at.is_none() && word(j).as_deref() == Some("AS") => {
                    as_at = Some(j);
                }
                _ => {}
            }
        }
        let (Some(as_at), Some(close)) = (as_at, close) else {
            continue;
        };
        let trino_type = match word(as_at + 1).as_deref() {
            Some("JSON") => as_at + 2 == close,
            Some("ROW" | "ARRAY" | "MAP") => {
                tokens.get(as_at + 2).map(|t| &t.token) == Some(&Token::LParen)
            }
            _ => false,
        };
        if !trino_type {
            continue;
        }
        let (Some(name_start), Some(name_end), Some(as_start), Some(type_start), Some(close_start)) = (
            offset(&tokens[i].span.start),
            offset(&tokens[i].span.end),
            offset(&tokens[as_at - 1].span.end),
            offset(&tokens[as_at + 1].span.start),
            offset(&tokens[close].span.start),
        ) else {
            continue;
        };
        let type_text = sql[type_start..close_start].trim().replace('\'', "''");
        edits.push((name_start, name_end, name.to_string()));
        edits.push((as_start, close_start, format!(", '{type_text}'")));
    }
    if edits.is_empty() {
        return Cow::Borrowed(sql);
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = sql.to_string();
    for (start, end, text) in edits {
        out.replace_range(start..end, &text);
    }
    Cow::Owned(out)
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
    fn lambdas_parse_and_trino_names_are_mapped() {
        let sql =
            "SELECT transform(a, x -> x + 1), all_match(a, x -> x > 0), none_match(a, x -> x > 0)";
        let mut statements = Parser::parse_sql(&TrinoDialect, sql).unwrap();
        rewrite_statement(&mut statements[0]).unwrap();
        assert_eq!(
            statements[0].to_string(),
            "SELECT array_transform(a, x -> x + 1), NOT (any_match(a, x -> NOT (x > 0))), \
             NOT (any_match(a, x -> x > 0))"
        );
    }

    #[test]
    fn casts_to_trino_types_become_quarry_casts() {
        assert_eq!(
            rewrite_casts(
                "SELECT CAST(CAST(x AS ROW(a INT)) AS JSON), TRY_CAST(y AS array(integer)) FROM t"
            ),
            "SELECT __quarry_cast(__quarry_cast(x, 'ROW(a INT)'), 'JSON'), \
             __quarry_try_cast(y, 'array(integer)') FROM t"
        );
        let plain = "SELECT CAST(x AS BIGINT), CAST(y AS ARRAY<INT>), 'CAST(z AS JSON)'";
        assert_eq!(rewrite_casts(plain), plain);
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
