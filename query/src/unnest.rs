//! Athena's (Trino's) lateral `UNNEST`, rewritten into a form DataFusion executes.
//!
//! Trino writes `FROM t CROSS JOIN UNNEST(t.a, t.b) WITH ORDINALITY AS u(x, y, n)` (also
//! `FROM t, UNNEST(..)` and `FROM t LEFT JOIN UNNEST(..) AS u(x) ON true`). DataFusion 55 parses
//! it but cannot plan the lateral reference to `t`, while it does run `unnest` in a projection.
//! [`rewrite_statement`] therefore turns, in the parsed AST,
//!
//! ```text
//! FROM t CROSS JOIN UNNEST(e1, e2) WITH ORDINALITY AS u(x, y, n)
//! FROM (SELECT t.*, get_field(unnest(__quarry_unnest(3, false, true, e1, e2)), 'c1') AS x,
//!              .. 'c2') AS y, .. 'c3') AS n
//!       FROM t) AS t
//! ```
//!
//! and renames `u.x` to `t.x` (and `t.*` to `t.* EXCLUDE (x, y, n)`) in the rest of the select.
//! The `__quarry_unnest` function does Trino's part row by row: it zips the arrays (padding the
//! shorter ones with NULL), expands an array of rows into the row's fields and a map into key
//! and value, adds the 1-based ordinality, and for `LEFT JOIN` turns an empty or NULL array into
//! one row of NULLs. An empty or NULL array otherwise yields no row, as in Trino.
//!
//! After other joins (`FROM t JOIN s ON .. CROSS JOIN UNNEST(s.a)`), the relation whose arrays
//! are unnested is the one wrapped, inside the join: the join condition cannot see the unnested
//! columns, so the result is the same.
//!
//! Not supported (a plan error says so): an `UNNEST` after joins whose arrays are not named with
//! the qualifier of exactly one joined relation, or of a relation an outer join can make NULL;
//! joins to `UNNEST` other than `CROSS`, `,`, `[INNER] JOIN .. ON true` and `LEFT JOIN .. ON
//! true`; BigQuery's `WITH OFFSET`.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Builder, ListArray, StructArray, UInt64Builder,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{DataFusionError, Result, ScalarValue, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::{
    self, ExcludeSelectItem, Expr, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, JoinConstraint, JoinOperator, ObjectName, ObjectNamePart, Query,
    Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, TableAlias, TableFactor,
    TableWithJoins, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// The name of the row-wise helper the rewrite calls.
pub const HELPER: &str = "__quarry_unnest";

/// Rewrites every lateral `UNNEST` in `statement` (including subqueries and CTEs).
pub fn rewrite_statement(statement: &mut ast::Statement) -> Result<()> {
    match statement.visit(&mut Rewriter) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Rewrites every lateral `UNNEST` in `query` (including subqueries and CTEs).
pub fn rewrite_query(query: &mut Query) -> Result<()> {
    match query.visit(&mut Rewriter) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct Rewriter;

impl VisitorMut for Rewriter {
    type Break = DataFusionError;

    // After the children, so the derived tables built here are not visited again.
    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<DataFusionError> {
        let renames = match rewrite_set_expr(&mut query.body) {
            Ok(r) => r,
            Err(e) => return ControlFlow::Break(e),
        };
        if let Some(renames) = renames
            && let Some(order_by) = &mut query.order_by
        {
            rename_in(order_by, &renames);
        }
        ControlFlow::Continue(())
    }
}

/// A qualifier that no longer exists (`u`, or `db.t`) and the one that replaces it.
struct Rename {
    from: Vec<String>,
    to: Ident,
}

/// What one select's rewrite changed: qualifier renames, and the columns each wrapped relation
/// gained (which `t.*` must not show).
#[derive(Default)]
struct Renames {
    renames: Vec<Rename>,
    /// `(relation qualifier, unnest alias, added columns)`.
    added: Vec<(Ident, Option<Ident>, Vec<Ident>)>,
}

/// Returns the renames for a plain select (for the query's ORDER BY); `None` for other bodies.
fn rewrite_set_expr(body: &mut SetExpr) -> Result<Option<Renames>> {
    match body {
        SetExpr::Select(select) => rewrite_select(select).map(Some),
        SetExpr::SetOperation { left, right, .. } => {
            rewrite_set_expr(left)?;
            rewrite_set_expr(right)?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn rewrite_select(select: &mut Select) -> Result<Renames> {
    let mut r = Renames::default();
    if !select.from.iter().any(has_unnest) {
        return Ok(r);
    }
    // `FROM t, UNNEST(..)`: the comma is a lateral cross join in Trino.
    let mut from: Vec<TableWithJoins> = Vec::new();
    for item in std::mem::take(&mut select.from) {
        match (from.last_mut(), &item.relation) {
            (Some(prev), TableFactor::UNNEST { .. }) => {
                prev.joins.push(ast::Join {
                    relation: item.relation,
                    global: false,
                    join_operator: JoinOperator::CrossJoin(JoinConstraint::None),
                });
                prev.joins.extend(item.joins);
            }
            _ => from.push(item),
        }
    }
    for item in &mut from {
        rewrite_from_item(item, &mut r)?;
    }
    select.from = from;

    // The rest of the select now names the wrapped relations.
    let mut projection = Vec::with_capacity(select.projection.len());
    for item in std::mem::take(&mut select.projection) {
        expand_wildcard(item, &r, &mut projection);
    }
    select.projection = projection;
    rename_in(&mut select.projection, &r);
    rename_in(&mut select.selection, &r);
    rename_in(&mut select.group_by, &r);
    rename_in(&mut select.having, &r);
    rename_in(&mut select.qualify, &r);
    rename_in(&mut select.sort_by, &r);
    for item in &mut select.from {
        for join in &mut item.joins {
            rename_in(&mut join.join_operator, &r);
        }
    }
    Ok(r)
}

fn has_unnest(item: &TableWithJoins) -> bool {
    matches!(item.relation, TableFactor::UNNEST { .. })
        || item
            .joins
            .iter()
            .any(|j| matches!(j.relation, TableFactor::UNNEST { .. }))
}

fn rewrite_from_item(item: &mut TableWithJoins, r: &mut Renames) -> Result<()> {
    if let TableFactor::UNNEST { .. } = &item.relation {
        let unnest = std::mem::replace(&mut item.relation, placeholder());
        item.relation = wrap(None, unnest, false, r)?;
    }
    let mut joins = Vec::with_capacity(item.joins.len());
    for join in std::mem::take(&mut item.joins) {
        if !matches!(join.relation, TableFactor::UNNEST { .. }) {
            joins.push(join);
            continue;
        }
        let outer = match &join.join_operator {
            JoinOperator::CrossJoin(JoinConstraint::None) | JoinOperator::CrossApply => false,
            JoinOperator::Join(c) | JoinOperator::Inner(c) if is_on_true(c) => false,
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) if is_on_true(c) => true,
            JoinOperator::OuterApply => true,
            _ => {
                return plan_err!(
                    "UNNEST can only be joined with CROSS JOIN, ',', JOIN .. ON true or LEFT \
                     JOIN .. ON true; filter the unnested values in WHERE instead"
                );
            }
        };
        // After other joins, the UNNEST expands the one relation its arrays come from:
        // `(a JOIN b ON c) CROSS JOIN UNNEST(b.x)` is `a JOIN (b CROSS JOIN UNNEST(b.x)) ON c`,
        // since `c` cannot see the unnested columns, as long as no outer join can make `b`'s
        // side NULL (an UNNEST of those NULLs would drop the rows the outer join kept).
        let target = if joins.is_empty() {
            None
        } else {
            Some(unnest_target(&item.relation, &joins, &join.relation, r)?)
        };
        match target {
            None | Some(None) => {
                let base = std::mem::replace(&mut item.relation, placeholder());
                item.relation = wrap(Some(base), join.relation, outer, r)?;
            }
            Some(Some(k)) => {
                let base = std::mem::replace(&mut joins[k].relation, placeholder());
                joins[k].relation = wrap(Some(base), join.relation, outer, r)?;
            }
        }
    }
    item.joins = joins;
    Ok(())
}

/// Which relation of `base JOIN joins..` an UNNEST after those joins expands: `None` for
/// `base`, `Some(k)` for `joins[k]`; an error when its arrays do not name exactly one of them
/// (by qualifier) or an outer join could make that relation NULL.
fn unnest_target(
    base: &TableFactor,
    joins: &[ast::Join],
    unnest: &TableFactor,
    r: &Renames,
) -> Result<Option<usize>> {
    let TableFactor::UNNEST { array_exprs, .. } = unnest else {
        return plan_err!("expected UNNEST");
    };
    let mut exprs = array_exprs.clone();
    rename_in(&mut exprs, r);
    let mut qualifiers: Vec<String> = Vec::new();
    let mut unqualified = false;
    let _ = ast::visit_expressions(&exprs, |e| {
        match e {
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let q = normalize(&parts[parts.len() - 2]);
                if !qualifiers.contains(&q) {
                    qualifiers.push(q);
                }
            }
            Expr::Identifier(_) => unqualified = true,
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    let names: Vec<Option<String>> = std::iter::once(base)
        .chain(joins.iter().map(|j| &j.relation))
        .map(relation_name)
        .collect();
    let [q] = qualifiers.as_slice() else {
        return plan_err!(
            "UNNEST after a JOIN must expand the arrays of one of the joined tables, named \
             with its qualifier (UNNEST(b.items)); put CROSS JOIN UNNEST(..) directly after \
             the table otherwise"
        );
    };
    let Some(position) = names.iter().position(|n| n.as_deref() == Some(q.as_str())) else {
        return plan_err!("UNNEST after a JOIN: no joined table is named {q}");
    };
    if unqualified {
        return plan_err!(
            "UNNEST after a JOIN: qualify every column in UNNEST(..) with its table ({q}.col)"
        );
    }
    // Joins that could make the relation at `position` NULL: its own join if outer on its side,
    // any later RIGHT or FULL join; for the first relation, RIGHT / FULL joins.
    let nullable = joins.iter().enumerate().any(|(k, j)| {
        let right_or_full = matches!(
            j.join_operator,
            JoinOperator::Right(_)
                | JoinOperator::RightOuter(_)
                | JoinOperator::FullOuter(_)
                | JoinOperator::RightSemi(_)
                | JoinOperator::RightAnti(_)
        );
        let left = matches!(
            j.join_operator,
            JoinOperator::Left(_) | JoinOperator::LeftOuter(_) | JoinOperator::FullOuter(_)
        );
        (k + 1 == position && left) || (k + 1 > position && right_or_full)
    });
    if nullable {
        return plan_err!(
            "UNNEST after an outer join of {q} is not supported (an UNNEST of its NULL arrays \
             would drop the rows the outer join keeps): unnest {q} in a subquery first"
        );
    }
    Ok(position.checked_sub(1))
}

/// The name a relation is referred to by (its alias, else its table's last name part).
fn relation_name(t: &TableFactor) -> Option<String> {
    match t {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            Some(normalize(&a.name))
        }
        TableFactor::Table { name, .. } => match name.0.last() {
            Some(ObjectNamePart::Identifier(i)) => Some(normalize(i)),
            _ => None,
        },
        _ => None,
    }
}

fn is_on_true(c: &JoinConstraint) -> bool {
    matches!(c, JoinConstraint::On(Expr::Value(v)) if v.value == Value::Boolean(true))
}

fn placeholder() -> TableFactor {
    TableFactor::Table {
        name: ObjectName::from(vec![Ident::new("__quarry_placeholder")]),
        alias: None,
        args: None,
        with_hints: vec![],
        version: None,
        with_ordinality: false,
        partitions: vec![],
        json_path: None,
        sample: None,
        index_hints: vec![],
    }
}

/// `base` (or nothing) laterally joined with `unnest`, as one derived table named like `base`.
fn wrap(
    base: Option<TableFactor>,
    unnest: TableFactor,
    outer: bool,
    r: &mut Renames,
) -> Result<TableFactor> {
    let TableFactor::UNNEST {
        alias,
        mut array_exprs,
        with_offset,
        with_ordinality,
        ..
    } = unnest
    else {
        return plan_err!("expected UNNEST");
    };
    if with_offset {
        return plan_err!("UNNEST .. WITH OFFSET is not supported: use WITH ORDINALITY");
    }
    // Earlier unnests' columns now live in the wrapped relation.
    rename_in(&mut array_exprs, r);
    let names: Vec<Ident> = match &alias {
        Some(a) if !a.columns.is_empty() => a.columns.iter().map(|c| c.name.clone()).collect(),
        _ => {
            let n = array_exprs.len() + usize::from(with_ordinality);
            if n == 1 {
                vec![Ident::new("unnest")]
            } else {
                (1..=n).map(|i| Ident::new(format!("unnest{i}"))).collect()
            }
        }
    };
    let mut args = vec![
        Expr::value(ast::Value::Number(names.len().to_string(), false)),
        Expr::value(ast::Value::Boolean(outer)),
        Expr::value(ast::Value::Boolean(with_ordinality)),
    ];
    args.extend(array_exprs);
    let zipped = function(HELPER, args);
    let mut projection = Vec::new();
    let mut base_alias = None;
    let (from, qualifier) = match base {
        None => (
            vec![],
            alias
                .as_ref()
                .map(|a| a.name.clone())
                .unwrap_or_else(|| Ident::new("unnest")),
        ),
        Some(mut base) => {
            let qualifier = qualifier_of(&mut base, r)?;
            projection.push(SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(ObjectName::from(vec![
                    qualifier.clone(),
                ])),
                wildcard_options(),
            ));
            base_alias = Some(qualifier.clone());
            (
                vec![TableWithJoins {
                    relation: base,
                    joins: vec![],
                }],
                qualifier,
            )
        }
    };
    for (i, name) in names.iter().enumerate() {
        let field = function(
            "get_field",
            vec![
                function("unnest", vec![zipped.clone()]),
                Expr::value(ast::Value::SingleQuotedString(format!("c{}", i + 1))),
            ],
        );
        projection.push(SelectItem::ExprWithAlias {
            expr: field,
            alias: name.clone(),
        });
    }
    if let (Some(_), Some(a)) = (&base_alias, &alias) {
        r.renames.push(Rename {
            from: vec![normalize(&a.name)],
            to: qualifier.clone(),
        });
    }
    r.added.push((
        qualifier.clone(),
        alias.as_ref().map(|a| a.name.clone()),
        names,
    ));
    let mut query = template();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return plan_err!("internal: UNNEST template is not a select");
    };
    select.projection = projection;
    select.from = from;
    Ok(TableFactor::Derived {
        lateral: false,
        subquery: Box::new(query),
        alias: Some(TableAlias {
            explicit: true,
            name: qualifier,
            columns: vec![],
            at: None,
        }),
        sample: None,
    })
}

/// The name the rest of the select uses for `base`; gives `base` one if it has none.
fn qualifier_of(base: &mut TableFactor, r: &mut Renames) -> Result<Ident> {
    match base {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            Ok(a.name.clone())
        }
        TableFactor::Table { name, alias, .. } => {
            let Some(ObjectNamePart::Identifier(last)) = name.0.last() else {
                return plan_err!("UNNEST after {name}: give the table an alias");
            };
            let last = last.clone();
            if name.0.len() > 1 {
                r.renames.push(Rename {
                    from: name.0.iter().map(part_name).collect(),
                    to: last.clone(),
                });
            }
            *alias = Some(TableAlias {
                explicit: true,
                name: last.clone(),
                columns: vec![],
                at: None,
            });
            Ok(last)
        }
        TableFactor::Derived { alias, .. } => {
            let name = Ident::new("__quarry_lateral");
            *alias = Some(TableAlias {
                explicit: true,
                name: name.clone(),
                columns: vec![],
                at: None,
            });
            Ok(name)
        }
        other => plan_err!(
            "CROSS JOIN UNNEST after {other} is not supported: UNNEST must follow a table or a \
             subquery"
        ),
    }
}

fn part_name(p: &ObjectNamePart) -> String {
    match p {
        ObjectNamePart::Identifier(i) => normalize(i),
        other => other.to_string(),
    }
}

/// An identifier as DataFusion resolves it: unquoted ones are lower-cased.
fn normalize(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// The call `name(args..)`.
pub(crate) fn function(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(ast::Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn wildcard_options() -> ast::WildcardAdditionalOptions {
    template_wildcard()
}

/// A select to fill in; parsed from a fixed text so every field has its default.
fn template() -> Query {
    let parsed = Parser::new(&GenericDialect {})
        .try_with_sql("SELECT *")
        .and_then(|mut p| p.parse_query());
    match parsed {
        Ok(q) => *q,
        Err(e) => unreachable!("the UNNEST template parses: {e}"),
    }
}

fn template_wildcard() -> ast::WildcardAdditionalOptions {
    let q = template();
    if let SetExpr::Select(s) = *q.body
        && let Some(SelectItem::Wildcard(o)) = s.projection.into_iter().next()
    {
        return o;
    }
    unreachable!("the UNNEST template is `SELECT *`")
}

/// `u.*` becomes u's columns; `t.*` leaves out the columns t gained.
fn expand_wildcard(item: SelectItem, r: &Renames, out: &mut Vec<SelectItem>) {
    if let SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), opts) =
        &item
    {
        let path: Vec<String> = name.0.iter().map(part_name).collect();
        // `u.*`
        if let [one] = path.as_slice()
            && let Some((q, _, cols)) = r
                .added
                .iter()
                .find(|(_, a, _)| a.as_ref().is_some_and(|a| normalize(a) == *one))
        {
            out.extend(cols.iter().map(|c| {
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(vec![q.clone(), c.clone()]))
            }));
            return;
        }
        // `t.*`
        let target = r
            .renames
            .iter()
            .find(|x| x.from == path)
            .map(|x| normalize(&x.to))
            .or_else(|| path.last().cloned());
        let gained: Vec<ObjectName> = r
            .added
            .iter()
            .filter(|(q, _, _)| path.len() <= 2 && Some(normalize(q)) == target)
            .flat_map(|(_, _, cols)| cols.iter().map(|c| ObjectName::from(vec![c.clone()])))
            .collect();
        if !gained.is_empty() && opts.opt_exclude.is_none() {
            let mut opts = opts.clone();
            opts.opt_exclude = Some(ExcludeSelectItem::Multiple(gained));
            out.push(SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(name.clone()),
                opts,
            ));
            return;
        }
    }
    out.push(item);
}

/// Replaces renamed qualifiers in the column references of `node`.
fn rename_in<V: VisitMut>(node: &mut V, r: &Renames) {
    if r.renames.is_empty() {
        return;
    }
    let _ = ast::visit_expressions_mut(node, |e| {
        if let Expr::CompoundIdentifier(parts) = e {
            for rename in &r.renames {
                let n = rename.from.len();
                if parts.len() > n
                    && parts[..n]
                        .iter()
                        .map(normalize)
                        .eq(rename.from.iter().cloned())
                {
                    parts.splice(..n, [rename.to.clone()]);
                    break;
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

// ---- the row-wise helper ----------------------------------------------------------------------

/// `__quarry_unnest(columns, outer, ordinality, array_or_map, ..)`: per row, the list of output
/// rows of Trino's `UNNEST` as structs `{c1, c2, ..}`.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ZipUnnest {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ZipUnnest {
    signature: Signature,
}

/// The output columns one argument contributes.
fn columns_of(t: &DataType) -> Result<Vec<DataType>> {
    let element = match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.data_type(),
        DataType::Map(entries, _) => entries.data_type(),
        DataType::Null => return Ok(vec![DataType::Null]),
        other => {
            return plan_err!("UNNEST expects an array or a map, got {other}");
        }
    };
    Ok(match element {
        DataType::Struct(fields) => fields.iter().map(|f| f.data_type().clone()).collect(),
        other => vec![other.clone()],
    })
}

fn output_fields(arg_types: &[DataType], ordinality: bool) -> Result<Fields> {
    let mut types = Vec::new();
    for t in arg_types {
        types.extend(columns_of(t)?);
    }
    if ordinality {
        types.push(DataType::Int64);
    }
    Ok(types
        .into_iter()
        .enumerate()
        .map(|(i, t)| Field::new(format!("c{}", i + 1), t, true))
        .collect())
}

fn literal_flag(args: &ReturnFieldArgs, i: usize) -> Result<bool> {
    match args.scalar_arguments.get(i).copied().flatten() {
        Some(ScalarValue::Boolean(Some(b))) => Ok(*b),
        _ => plan_err!("internal: {HELPER} argument {i} must be a boolean literal"),
    }
}

impl ScalarUDFImpl for ZipUnnest {
    fn name(&self) -> &str {
        HELPER
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("internal: {HELPER} types come from return_field_from_args")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let expected = match args.scalar_arguments.first().copied().flatten() {
            Some(ScalarValue::Int64(Some(n))) => *n as usize,
            _ => return plan_err!("internal: {HELPER} argument 0 must be an integer literal"),
        };
        let ordinality = literal_flag(&args, 2)?;
        let _ = literal_flag(&args, 1)?;
        let types: Vec<DataType> = args.arg_fields[3..]
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let fields = output_fields(&types, ordinality)?;
        if fields.len() != expected {
            return plan_err!(
                "UNNEST produces {} columns (one per array, one per field of an array of rows, \
                 key and value of a map{}) but its alias names {expected}: list one name per \
                 column, e.g. AS u(a, b)",
                fields.len(),
                if ordinality {
                    ", plus the ordinality"
                } else {
                    ""
                }
            );
        }
        Ok(Arc::new(Field::new(
            HELPER,
            DataType::new_list(DataType::Struct(fields), true),
            false,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let DataType::List(item) = args.return_field.data_type() else {
            return plan_err!("internal: {HELPER} returns a list");
        };
        let DataType::Struct(fields) = item.data_type() else {
            return plan_err!("internal: {HELPER} returns a list of structs");
        };
        let flag = |i: usize| match &args.args[i] {
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(b))) => Ok(*b),
            _ => plan_err!("internal: {HELPER} argument {i} must be a boolean literal"),
        };
        let outer = flag(1)?;
        let ordinality = flag(2)?;
        let rows = args.number_rows;
        let arrays = args.args[3..]
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let out = zip(&arrays, rows, outer, ordinality, fields.clone())?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// One argument as offsets into its flattened elements.
struct Source {
    /// `(start, len)` per row; a NULL array has length 0.
    spans: Vec<(usize, usize)>,
    values: ArrayRef,
    /// The elements are rows (or map entries) whose fields are separate columns.
    expand: bool,
}

fn source(array: &ArrayRef) -> Result<Source> {
    let rows = array.len();
    let span = |i: usize, start: usize, end: usize| {
        if array.is_null(i) {
            (start, 0)
        } else {
            (start, end - start)
        }
    };
    let (spans, values, expand): (Vec<_>, ArrayRef, bool) = match array.data_type() {
        DataType::List(f) => {
            let l = array.as_list::<i32>();
            let o = l.value_offsets();
            let spans = (0..rows)
                .map(|i| span(i, o[i] as usize, o[i + 1] as usize))
                .collect();
            (
                spans,
                l.values().clone(),
                matches!(f.data_type(), DataType::Struct(_)),
            )
        }
        DataType::LargeList(f) => {
            let l = array.as_list::<i64>();
            let o = l.value_offsets();
            let spans = (0..rows)
                .map(|i| span(i, o[i] as usize, o[i + 1] as usize))
                .collect();
            (
                spans,
                l.values().clone(),
                matches!(f.data_type(), DataType::Struct(_)),
            )
        }
        DataType::FixedSizeList(f, n) => {
            let l = array.as_fixed_size_list();
            let n = *n as usize;
            let spans = (0..rows).map(|i| span(i, i * n, i * n + n)).collect();
            (
                spans,
                l.values().clone(),
                matches!(f.data_type(), DataType::Struct(_)),
            )
        }
        DataType::Map(_, _) => {
            let m = array.as_map();
            let o = m.value_offsets();
            let spans = (0..rows)
                .map(|i| span(i, o[i] as usize, o[i + 1] as usize))
                .collect();
            (spans, Arc::new(m.entries().clone()) as ArrayRef, true)
        }
        DataType::Null => (vec![(0, 0); rows], array.clone(), false),
        other => {
            return plan_err!("UNNEST expects an array or a map, got {other}");
        }
    };
    Ok(Source {
        spans,
        values,
        expand,
    })
}

fn zip(
    arrays: &[ArrayRef],
    rows: usize,
    outer: bool,
    ordinality: bool,
    fields: Fields,
) -> Result<ListArray> {
    let sources = arrays.iter().map(source).collect::<Result<Vec<_>>>()?;
    let mut indices: Vec<UInt64Builder> = sources.iter().map(|_| UInt64Builder::new()).collect();
    let mut ordinals = Int64Builder::new();
    let mut lengths = Vec::with_capacity(rows);
    for row in 0..rows {
        let longest = sources.iter().map(|s| s.spans[row].1).max().unwrap_or(0);
        if longest == 0 && outer {
            for b in &mut indices {
                b.append_null();
            }
            ordinals.append_null();
            lengths.push(1);
            continue;
        }
        for (s, b) in sources.iter().zip(&mut indices) {
            let (start, len) = s.spans[row];
            for p in 0..longest {
                // A NULL row element gives NULL fields.
                if p < len && !(s.expand && s.values.is_null(start + p)) {
                    b.append_value((start + p) as u64);
                } else {
                    b.append_null();
                }
            }
        }
        for p in 0..longest {
            ordinals.append_value(p as i64 + 1);
        }
        lengths.push(longest);
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.len());
    for (s, mut b) in sources.iter().zip(indices) {
        let idx = b.finish();
        if matches!(s.values.data_type(), DataType::Null) {
            columns.push(datafusion::arrow::array::new_null_array(
                &DataType::Null,
                idx.len(),
            ));
        } else if s.expand {
            let st: &StructArray = s.values.as_struct();
            for c in st.columns() {
                columns.push(take(c.as_ref(), &idx, None)?);
            }
        } else {
            columns.push(take(s.values.as_ref(), &idx, None)?);
        }
    }
    if ordinality {
        columns.push(Arc::new(ordinals.finish()));
    }
    let items = StructArray::try_new(fields.clone(), columns, None)?;
    Ok(ListArray::try_new(
        Arc::new(Field::new_list_field(DataType::Struct(fields), true)),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(items),
        None,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut statements = Parser::parse_sql(&GenericDialect {}, sql).unwrap();
        rewrite_statement(&mut statements[0]).unwrap();
        statements[0].to_string()
    }

    #[test]
    fn cross_join_unnest_becomes_a_derived_table_named_like_the_table() {
        let sql = rewritten(
            "SELECT t.id, u.x FROM db.t CROSS JOIN UNNEST(t.a) AS u(x) WHERE u.x > 1 ORDER BY u.x",
        );
        assert_eq!(
            sql,
            "SELECT t.id, t.x FROM (SELECT t.*, get_field(unnest(__quarry_unnest(1, false, \
             false, t.a)), 'c1') AS x FROM db.t AS t) AS t WHERE t.x > 1 ORDER BY t.x"
        );
    }

    #[test]
    fn no_unnest_no_change() {
        let sql = "SELECT a FROM t JOIN s ON t.x = s.x";
        assert_eq!(rewritten(sql), sql);
    }
}
