//! Athena's partition projection: a table with `projection.enabled = true` has its partitions
//! computed from table properties and the query's filter instead of read from the catalog
//! (Athena user guide, "Partition projection" and "Supported types for partition projection").
//!
//! Each partition key has a value domain: `enum` (a list), `integer` (a range with a step and
//! zero-padding), `date` (a range of times in a Java `DateTimeFormatter` pattern, with `NOW`-based
//! ends, a step of N units) or `injected` (the values the query's equality filter names). The
//! filter narrows each domain on its own (arithmetic on the range, never walking all of it when
//! the bounds can be read), each surviving value is checked with the catalog's own predicate
//! semantics, and the cross product becomes partitions whose locations come from
//! `storage.location.template` (or `LOCATION/key=value/`). As in Athena, partitions registered in
//! the catalog are ignored while projection is on, and a projected prefix with no objects is a
//! partition with no rows.
//!
//! ```
//! use quarry_catalog::{Column, PartitionFilter, Table};
//! use quarry_query::projection::Projection;
//! # let mut table: Table = serde_json::from_value(serde_json::json!({
//! #   "database": "db", "name": "logs", "table_type": "EXTERNAL_TABLE",
//! #   "storage": {"location": "s3://b/logs/", "columns": [], "input_format": "", "output_format": "",
//! #               "serde_info": {"serialization_library": ""}, "compressed": false},
//! #   "partition_keys": [], "parameters": {},
//! #   "create_time": "2024-01-01T00:00:00Z", "update_time": "2024-01-01T00:00:00Z"})).unwrap();
//! table.partition_keys = vec![Column::new("dt", "string")];
//! for (k, v) in [
//!     ("projection.enabled", "true"),
//!     ("projection.dt.type", "date"),
//!     ("projection.dt.format", "yyyy/MM/dd/HH"),
//!     ("projection.dt.range", "2021/01/01/00,NOW"),
//!     ("projection.dt.interval", "1"),
//!     ("projection.dt.interval.unit", "HOURS"),
//!     ("storage.location.template", "s3://b/logs/${dt}/"),
//! ] {
//!     table.parameters.insert(k.into(), v.into());
//! }
//! let projection = Projection::of(&table, chrono::Utc::now()).unwrap().expect("projected");
//! let one_hour = PartitionFilter::all().eq("dt", "2022/03/04/05");
//! let selected = projection.partitions(&one_hour).unwrap();
//! assert_eq!(selected.partitions.len(), 1);
//! assert_eq!(selected.partitions[0].location, "s3://b/logs/2022/03/04/05/");
//! ```

use std::ops::Bound;

use chrono::{DateTime, Months, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use quarry_catalog::filter::ValueOrder;
use quarry_catalog::{Column, KeyPredicate, Partition, PartitionFilter, Table};

use crate::functions::joda_format;
use crate::functions::mysql_format::{self, Item};

/// Most partitions one query may project (Athena documents no limit; a cross product this large
/// is a missing filter, and listing that many prefixes would take hours).
pub const MAX_PROJECTED_PARTITIONS: u64 = 1_000_000;

/// The `projection.enabled` table property.
pub const ENABLED: &str = "projection.enabled";
/// The `storage.location.template` table property.
pub const LOCATION_TEMPLATE: &str = "storage.location.template";

/// A projection configuration error or a filter the projection cannot serve, in Athena's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProjectionError(pub String);

type Result<T> = std::result::Result<T, ProjectionError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(ProjectionError(msg.into()))
}

/// A table's partition projection, read from its properties.
#[derive(Debug, Clone)]
pub struct Projection {
    table: String,
    location: String,
    template: Option<String>,
    columns: Vec<Projected>,
}

#[derive(Debug, Clone)]
struct Projected {
    key: Column,
    domain: Domain,
}

#[derive(Debug, Clone)]
enum Domain {
    Enum(Vec<String>),
    Integer {
        min: i64,
        max: i64,
        step: i64,
        digits: usize,
    },
    Date(DateDomain),
    Injected,
}

#[derive(Debug, Clone)]
struct DateDomain {
    items: Vec<Item>,
    start: NaiveDateTime,
    end: NaiveDateTime,
    step: Step,
    /// Whether the formatted text sorts like the time (fixed-width fields, most significant
    /// first), so a text range on a `string` key narrows the time range.
    text_sorts_as_time: bool,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Fixed(TimeDelta),
    Months(u32),
}

/// What [`Projection::partitions`] selected.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The projected partitions the filter keeps, with their locations.
    pub partitions: Vec<Partition>,
    /// How many partitions the projection defines in all (saturating; injected keys count the
    /// values the query named), for EXPLAIN's "N of M".
    pub considered: u64,
}

impl Projection {
    /// The projection of `table` if `projection.enabled` is true, `NOW` read as `now`.
    pub fn of(table: &Table, now: DateTime<Utc>) -> Result<Option<Self>> {
        let p = &table.parameters;
        let enabled = p
            .get(ENABLED)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if !enabled || table.partition_keys.is_empty() {
            return Ok(None);
        }
        let name = table.qualified_name();
        let missing: Vec<&str> = table
            .partition_keys
            .iter()
            .filter(|k| property(table, &k.name, "type").is_none())
            .map(|k| k.name.as_str())
            .collect();
        if !missing.is_empty() {
            return err(format!(
                "HIVE_METASTORE_ERROR: Table {name} is configured for partition projection, but \
                 the following partition columns are missing projection configuration: [{}]; \
                 set 'projection.<column>.type' for each, or 'projection.enabled' = 'false'",
                missing.join(", ")
            ));
        }
        let mut columns = Vec::new();
        for key in &table.partition_keys {
            let kind = property(table, &key.name, "type").unwrap_or_default();
            let domain = match kind.trim().to_ascii_lowercase().as_str() {
                "enum" => enum_domain(table, &key.name)?,
                "integer" => integer_domain(table, &key.name)?,
                "date" => Domain::Date(date_domain(table, &key.name, now)?),
                "injected" => Domain::Injected,
                other => {
                    return err(format!(
                        "HIVE_METASTORE_ERROR: Table {name}: projection.{}.type '{other}' is not \
                         one of enum, integer, date, injected",
                        key.name
                    ));
                }
            };
            columns.push(Projected {
                key: key.clone(),
                domain,
            });
        }
        let template = p.get(LOCATION_TEMPLATE).cloned();
        if let Some(t) = &template {
            let absent: Vec<&str> = columns
                .iter()
                .filter(|c| !t.contains(&placeholder(&c.key.name)))
                .map(|c| c.key.name.as_str())
                .collect();
            if !absent.is_empty() {
                return err(format!(
                    "INVALID_TABLE_PROPERTY: The 'storage.location.template' table property must \
                     contain templates for all partition columns! Table {name} lacks {}",
                    absent
                        .iter()
                        .map(|c| placeholder(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(Some(Self {
            table: name,
            location: table.storage.location.clone(),
            template,
            columns,
        }))
    }

    /// The partitions `filter` selects (one location each), checked with the catalog's
    /// predicate semantics; an injected key without equality filters is Athena's error.
    pub fn partitions(&self, filter: &PartitionFilter) -> Result<Selection> {
        let mut per_column: Vec<Vec<(String, String)>> = Vec::new();
        let mut considered: u64 = 1;
        for c in &self.columns {
            let predicates: Vec<&KeyPredicate> = filter
                .filters
                .iter()
                .filter(|f| f.key.eq_ignore_ascii_case(&c.key.name))
                .map(|f| &f.predicate)
                .collect();
            let (values, size) = self.column_values(c, &predicates)?;
            considered = considered.saturating_mul(size);
            per_column.push(values);
        }
        let count = per_column
            .iter()
            .fold(1u64, |n, v| n.saturating_mul(v.len() as u64));
        if count > MAX_PROJECTED_PARTITIONS {
            return err(format!(
                "table {}: the query's filter projects {count} partitions, more than {}; filter \
                 on the partition keys ({}) to narrow it",
                self.table,
                MAX_PROJECTED_PARTITIONS,
                self.columns
                    .iter()
                    .map(|c| c.key.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let mut partitions = Vec::with_capacity(count as usize);
        let mut index = vec![0usize; per_column.len()];
        if per_column.iter().all(|v| !v.is_empty()) {
            loop {
                let chosen: Vec<&(String, String)> =
                    index.iter().zip(&per_column).map(|(&i, v)| &v[i]).collect();
                let values = chosen.iter().map(|(v, _)| Some(v.clone())).collect();
                partitions.push(Partition::new(values, self.location_of(&chosen)));
                // Odometer over the columns, last one fastest.
                let mut k = index.len();
                loop {
                    if k == 0 {
                        return Ok(Selection {
                            partitions,
                            considered,
                        });
                    }
                    k -= 1;
                    index[k] += 1;
                    if index[k] < per_column[k].len() {
                        break;
                    }
                    index[k] = 0;
                }
            }
        }
        Ok(Selection {
            partitions,
            considered,
        })
    }

    /// A partition's folder: the template with each `${key}` replaced, or Hive's layout.
    fn location_of(&self, chosen: &[&(String, String)]) -> String {
        let mut out = match &self.template {
            Some(t) => {
                let mut t = t.clone();
                for (c, (_, text)) in self.columns.iter().zip(chosen) {
                    t = t.replace(&placeholder(&c.key.name), text);
                }
                t
            }
            None => {
                let keys: Vec<&str> = self.columns.iter().map(|c| c.key.name.as_str()).collect();
                let values: Vec<Option<String>> =
                    chosen.iter().map(|(_, text)| Some(text.clone())).collect();
                let mut root = self.location.clone();
                if !root.ends_with('/') {
                    root.push('/');
                }
                root + &quarry_lake::hive::partition_path(&keys, &values)
            }
        };
        if !out.ends_with('/') {
            out.push('/');
        }
        out
    }

    /// The column's values that pass `predicates`, as (partition value, location text), and
    /// the size of its whole domain.
    fn column_values(
        &self,
        c: &Projected,
        predicates: &[&KeyPredicate],
    ) -> Result<(Vec<(String, String)>, u64)> {
        if predicates.iter().any(|p| matches!(p, KeyPredicate::IsNull)) {
            // Projected values are never NULL.
            return Ok((Vec::new(), domain_size(&c.domain)));
        }
        let key = &c.key;
        let keys = std::slice::from_ref(key);
        let filter = PartitionFilter {
            filters: predicates
                .iter()
                .map(|p| quarry_catalog::KeyFilter {
                    key: key.name.clone(),
                    predicate: (*p).clone(),
                })
                .collect(),
        };
        let keep = |value: &str| -> Result<bool> {
            filter
                .matches(&self.table, keys, &[Some(value.to_string())])
                .map_err(|e| ProjectionError(e.to_string()))
        };
        let numeric = ValueOrder::for_hive_type(&key.data_type) == ValueOrder::Numeric;
        let mut out = Vec::new();
        let too_many = |n: u64| -> Result<()> {
            if n > MAX_PROJECTED_PARTITIONS {
                return err(format!(
                    "table {}: the query's filter leaves {n} values of projected key {}, more \
                     than {MAX_PROJECTED_PARTITIONS}; filter on {} to narrow it",
                    self.table, key.name, key.name
                ));
            }
            Ok(())
        };
        let size = domain_size(&c.domain);
        match &c.domain {
            Domain::Enum(values) => {
                for v in values {
                    if keep(v)? {
                        out.push((v.clone(), v.clone()));
                    }
                }
            }
            Domain::Injected => {
                let mut named: Option<Vec<String>> = None;
                for p in predicates {
                    let these = match p {
                        KeyPredicate::Eq(v) => vec![v.clone()],
                        KeyPredicate::In(vs) => vs.clone(),
                        _ => named_error(&key.name)?,
                    };
                    named = Some(match named {
                        None => these,
                        Some(prev) => prev.into_iter().filter(|v| these.contains(v)).collect(),
                    });
                }
                let Some(mut values) = named else {
                    return named_error(&key.name);
                };
                values.sort();
                values.dedup();
                let n = values.len() as u64;
                out = values.into_iter().map(|v| (v.clone(), v)).collect();
                return Ok((out, n));
            }
            Domain::Integer {
                min,
                max,
                step,
                digits,
            } => {
                let last = (max - min) / step;
                let text = |i: i64| format!("{:0width$}", min + i * step, width = *digits);
                let indexes = match exact_values(predicates) {
                    Some(values) => {
                        let mut idx: Vec<i64> = values
                            .iter()
                            .filter_map(|v| v.trim().parse::<i64>().ok())
                            .filter(|v| v >= min && v <= max && (v - min) % step == 0)
                            .map(|v| (v - min) / step)
                            .collect();
                        idx.sort_unstable();
                        idx.dedup();
                        Window::List(idx)
                    }
                    None => {
                        let (mut lo, mut hi) = (0i64, last);
                        if numeric {
                            for p in predicates {
                                let KeyPredicate::Range { low, high } = p else {
                                    continue;
                                };
                                if let Some(l) = bound_number(low) {
                                    let first = ((l - *min as f64) / *step as f64).ceil();
                                    lo = lo.max(first.clamp(0.0, (last + 1) as f64) as i64);
                                }
                                if let Some(h) = bound_number(high) {
                                    let end = ((h - *min as f64) / *step as f64).floor();
                                    hi = hi.min(end.clamp(-1.0, last as f64) as i64);
                                }
                            }
                        }
                        Window::Range(lo, hi)
                    }
                };
                too_many(indexes.len())?;
                for i in indexes.iter() {
                    let t = text(i);
                    if keep(&t)? {
                        out.push((t.clone(), t));
                    }
                }
            }
            Domain::Date(d) => {
                let last = d.last_index();
                let indexes = match exact_values(predicates) {
                    Some(values) => {
                        let mut idx: Vec<i64> = values
                            .iter()
                            .filter_map(|v| d.read(v, &key.data_type))
                            .filter_map(|t| d.index_of(t))
                            .collect();
                        idx.sort_unstable();
                        idx.dedup();
                        Window::List(idx)
                    }
                    None => {
                        let (mut lo, mut hi) = (0i64, last);
                        let ordered = is_time_type(&key.data_type) || d.text_sorts_as_time;
                        if ordered {
                            for p in predicates {
                                let KeyPredicate::Range { low, high } = p else {
                                    continue;
                                };
                                if let Bound::Included(v) | Bound::Excluded(v) = low
                                    && let Some(t) = d.read(v, &key.data_type)
                                {
                                    lo = lo.max(d.first_at_or_after(t));
                                }
                                if let Bound::Included(v) | Bound::Excluded(v) = high
                                    && let Some(t) = d.read(v, &key.data_type)
                                {
                                    hi = hi.min(d.last_at_or_before(t));
                                }
                            }
                        }
                        Window::Range(lo, hi)
                    }
                };
                too_many(indexes.len())?;
                for i in indexes.iter() {
                    let Some(t) = d.at(i) else { continue };
                    let text = mysql_format::format(&d.items, &t);
                    let value = value_text(&key.data_type, &t, &text);
                    if keep(&value)? {
                        out.push((value, text));
                    }
                }
            }
        }
        Ok((out, size))
    }
}

fn named_error<T>(column: &str) -> Result<T> {
    err(format!(
        "CONSTRAINT_VIOLATION: For the injected projected partition column {column}, the WHERE \
         clause must contain only static equality conditions, and at least one such condition \
         must be present."
    ))
}

/// Indexes into a domain: a contiguous window or a sorted list.
enum Window {
    Range(i64, i64),
    List(Vec<i64>),
}

impl Window {
    fn len(&self) -> u64 {
        match self {
            Self::Range(lo, hi) => (hi - lo + 1).max(0) as u64,
            Self::List(v) => v.len() as u64,
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = i64> + '_> {
        match self {
            Self::Range(lo, hi) => Box::new(*lo..=*hi),
            Self::List(v) => Box::new(v.iter().copied()),
        }
    }
}

/// The values an `=` or `IN` predicate allows (intersected), or `None` if none restricts so.
fn exact_values(predicates: &[&KeyPredicate]) -> Option<Vec<String>> {
    let mut out: Option<Vec<String>> = None;
    for p in predicates {
        let these = match p {
            KeyPredicate::Eq(v) => vec![v.clone()],
            KeyPredicate::In(vs) => vs.clone(),
            _ => continue,
        };
        out = Some(match out {
            None => these,
            Some(prev) => prev.into_iter().filter(|v| these.contains(v)).collect(),
        });
    }
    out
}

fn bound_number(b: &Bound<String>) -> Option<f64> {
    match b {
        Bound::Included(v) | Bound::Excluded(v) => {
            v.trim().parse::<f64>().ok().filter(|f| f.is_finite())
        }
        Bound::Unbounded => None,
    }
}

fn domain_size(d: &Domain) -> u64 {
    match d {
        Domain::Enum(v) => v.len() as u64,
        Domain::Integer { min, max, step, .. } => ((max - min) / step + 1) as u64,
        Domain::Date(d) => (d.last_index() + 1).max(0) as u64,
        Domain::Injected => 1,
    }
}

fn placeholder(column: &str) -> String {
    format!("${{{column}}}")
}

fn property<'a>(table: &'a Table, column: &str, name: &str) -> Option<&'a str> {
    let exact = format!("projection.{column}.{name}");
    table
        .parameters
        .get(&exact)
        .or_else(|| {
            table
                .parameters
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&exact))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
}

fn required<'a>(table: &'a Table, column: &str, name: &str) -> Result<&'a str> {
    property(table, column, name).ok_or_else(|| {
        ProjectionError(format!(
            "HIVE_METASTORE_ERROR: Table {}: column {column} is projected but \
             'projection.{column}.{name}' is not set",
            table.qualified_name()
        ))
    })
}

fn bad<T>(table: &Table, column: &str, name: &str, value: &str, why: &str) -> Result<T> {
    err(format!(
        "HIVE_METASTORE_ERROR: Table {}: 'projection.{column}.{name}' = '{value}' {why}",
        table.qualified_name()
    ))
}

fn enum_domain(table: &Table, column: &str) -> Result<Domain> {
    let values = required(table, column, "values")?;
    // Whitespace is part of an enum value (Athena's rule).
    Ok(Domain::Enum(
        values.split(',').map(str::to_string).collect(),
    ))
}

fn integer_domain(table: &Table, column: &str) -> Result<Domain> {
    let range = required(table, column, "range")?;
    let parts: Vec<&str> = range.split(',').map(str::trim).collect();
    let (min, max) = match parts.as_slice() {
        [a, b] => match (a.parse::<i64>(), b.parse::<i64>()) {
            (Ok(a), Ok(b)) if a <= b => (a, b),
            _ => {
                return bad(
                    table,
                    column,
                    "range",
                    range,
                    "is not 'min,max' with min <= max",
                );
            }
        },
        _ => return bad(table, column, "range", range, "is not 'min,max'"),
    };
    let step = match property(table, column, "interval") {
        None => 1,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n > 0 => n,
            _ => return bad(table, column, "interval", v, "is not a positive integer"),
        },
    };
    let digits = match property(table, column, "digits") {
        None => 0,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 && n <= 19 => n,
            _ => return bad(table, column, "digits", v, "is not a positive integer"),
        },
    };
    if (max as i128 - min as i128) / step as i128 >= i64::MAX as i128 {
        return bad(table, column, "range", range, "is too wide");
    }
    Ok(Domain::Integer {
        min,
        max,
        step,
        digits,
    })
}

/// Precision of a date format: 0 = years .. 6 = below seconds.
fn precision(items: &[Item]) -> u8 {
    items
        .iter()
        .map(|i| match i {
            Item::Year | Item::TwoDigitYear | Item::WeekYear => 0,
            Item::Month(_) | Item::MonthShort | Item::MonthLong => 1,
            Item::Week => 2,
            Item::Day(_) | Item::DayOfYear(_) | Item::WeekdayShort | Item::WeekdayLong => 2,
            Item::Hour24(_) | Item::Hour12(_) | Item::HalfDay => 3,
            Item::Minute(_) => 4,
            Item::Second(_) => 5,
            Item::Fraction | Item::FractionDigits(_) => 6,
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// Fixed-width numeric fields from the most significant down: the text sorts as the time does.
fn sorts_as_time(items: &[Item]) -> bool {
    let mut last = None;
    for i in items {
        let rank = match i {
            Item::Literal(_) => continue,
            Item::Year => 0,
            Item::Month(2) => 1,
            Item::Day(2) => 2,
            Item::Hour24(2) => 3,
            Item::Minute(2) => 4,
            Item::Second(2) => 5,
            Item::FractionDigits(_) => 6,
            _ => return false,
        };
        if last.is_some_and(|l| rank <= l) {
            return false;
        }
        last = Some(rank);
    }
    true
}

/// Java's `DateTimeFormatter` letters in Joda's terms: `u` (year) is Joda's `y`.
fn compile_java_pattern(pattern: &str) -> std::result::Result<Vec<Item>, String> {
    let mut joda = String::with_capacity(pattern.len());
    let mut quoted = false;
    for c in pattern.chars() {
        if c == '\'' {
            quoted = !quoted;
        }
        joda.push(if c == 'u' && !quoted { 'y' } else { c });
    }
    joda_format::compile(&joda)
}

fn date_domain(table: &Table, column: &str, now: DateTime<Utc>) -> Result<DateDomain> {
    let format = required(table, column, "format")?;
    let items = compile_java_pattern(format).map_err(|e| {
        ProjectionError(format!(
            "HIVE_METASTORE_ERROR: Table {}: 'projection.{column}.format' = '{format}': {e}",
            table.qualified_name()
        ))
    })?;
    let precision = precision(&items);
    let interval = property(table, column, "interval");
    let unit = property(table, column, "interval.unit");
    let n: u32 = match interval {
        None => 1,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if n > 0 => n,
            _ => return bad(table, column, "interval", v, "is not a positive integer"),
        },
    };
    let step = match unit.map(|u| u.trim().to_ascii_uppercase()) {
        None if precision <= 2 => match precision {
            0 => Step::Months(12 * n),
            1 => Step::Months(n),
            _ => Step::Fixed(TimeDelta::days(i64::from(n))),
        },
        None => {
            return err(format!(
                "HIVE_METASTORE_ERROR: Table {}: the format '{format}' of projected column \
                 {column} is finer than a day, so 'projection.{column}.interval' and \
                 'projection.{column}.interval.unit' must be set",
                table.qualified_name()
            ));
        }
        Some(u) => match step_of(&u, n) {
            Some(s) => s,
            None => {
                return bad(
                    table,
                    column,
                    "interval.unit",
                    unit.unwrap_or_default(),
                    "is not one of YEARS, MONTHS, WEEKS, DAYS, HOURS, MINUTES, SECONDS, \
                     MILLISECONDS",
                );
            }
        },
    };
    let range = required(table, column, "range")?;
    let parts: Vec<&str> = range.split(',').collect();
    let [a, b] = parts.as_slice() else {
        return bad(table, column, "range", range, "is not 'start,end'");
    };
    let now = now.naive_utc();
    let end_of = |text: &str| -> Result<NaiveDateTime> {
        let t = match relative(text, now) {
            Some(t) => t,
            None => mysql_format::parse(&items, text.trim()).map_err(|e| {
                ProjectionError(format!(
                    "HIVE_METASTORE_ERROR: Table {}: 'projection.{column}.range' = '{range}': \
                     '{}' is neither in the format '{format}' nor NOW[+-N UNIT]: {e}",
                    table.qualified_name(),
                    text.trim()
                ))
            })?,
        };
        // Ends are read at the format's precision: NOW-3YEARS with `yyyy/MM/dd/HH` starts
        // on a whole hour, so the grid holds the values the format can print.
        Ok(mysql_format::parse(&items, &mysql_format::format(&items, &t)).unwrap_or(t))
    };
    let (start, end) = (end_of(a)?, end_of(b)?);
    Ok(DateDomain {
        text_sorts_as_time: sorts_as_time(&items),
        items,
        start,
        end,
        step,
    })
}

fn step_of(unit: &str, n: u32) -> Option<Step> {
    let unit = unit.strip_suffix('S').unwrap_or(unit);
    let n64 = i64::from(n);
    Some(match unit {
        "YEAR" => Step::Months(n.checked_mul(12)?),
        "MONTH" => Step::Months(n),
        "WEEK" => Step::Fixed(TimeDelta::weeks(n64)),
        "DAY" => Step::Fixed(TimeDelta::days(n64)),
        "HOUR" => Step::Fixed(TimeDelta::hours(n64)),
        "MINUTE" => Step::Fixed(TimeDelta::minutes(n64)),
        "SECOND" => Step::Fixed(TimeDelta::seconds(n64)),
        "MILLISECOND" => Step::Fixed(TimeDelta::milliseconds(n64)),
        _ => return None,
    })
}

/// `NOW`, `NOW-3YEARS`, `NOW + 1 MONTH` (Athena's pattern, case-insensitive).
fn relative(text: &str, now: NaiveDateTime) -> Option<NaiveDateTime> {
    let t = text.trim().to_ascii_uppercase();
    let rest = t.strip_prefix("NOW")?.trim_start();
    if rest.is_empty() {
        return Some(now);
    }
    let (sign, rest) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let rest = rest.trim();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let n: u32 = rest[..digits].parse().ok()?;
    let unit = rest[digits..].trim();
    if unit == "MILLISECOND" || unit == "MILLISECONDS" {
        return None; // not in Athena's list for NOW offsets
    }
    match step_of(unit, n)? {
        Step::Fixed(d) => {
            if sign > 0 {
                now.checked_add_signed(d)
            } else {
                now.checked_sub_signed(d)
            }
        }
        Step::Months(m) => {
            if sign > 0 {
                now.checked_add_months(Months::new(m))
            } else {
                now.checked_sub_months(Months::new(m))
            }
        }
    }
}

fn is_time_type(hive: &str) -> bool {
    let t = hive.to_ascii_lowercase();
    t == "date" || t.starts_with("timestamp")
}

/// The partition value for a time: the formatted text for string keys, ISO text for `date`
/// and `timestamp` keys (what their SQL literals compare against).
fn value_text(hive: &str, t: &NaiveDateTime, text: &str) -> String {
    let h = hive.to_ascii_lowercase();
    if h == "date" {
        t.format("%Y-%m-%d").to_string()
    } else if h.starts_with("timestamp") {
        t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
    } else {
        text.to_string()
    }
}

impl DateDomain {
    fn at(&self, i: i64) -> Option<NaiveDateTime> {
        match self.step {
            Step::Fixed(d) => self
                .start
                .checked_add_signed(d.checked_mul(i32::try_from(i).ok()?)?),
            Step::Months(m) => self
                .start
                .checked_add_months(Months::new(m.checked_mul(u32::try_from(i).ok()?)?)),
        }
    }

    /// The last index whose time is <= end (-1 if the range is empty).
    fn last_index(&self) -> i64 {
        if self.end < self.start {
            return -1;
        }
        self.last_at_or_before_unclamped(self.end)
    }

    fn last_at_or_before_unclamped(&self, t: NaiveDateTime) -> i64 {
        if t < self.start {
            return -1;
        }
        let mut i = match self.step {
            Step::Fixed(d) => {
                let span = (t - self.start).num_milliseconds();
                span / d.num_milliseconds().max(1)
            }
            Step::Months(m) => {
                let months = months_between(self.start, t);
                months / i64::from(m)
            }
        };
        while i > 0 && self.at(i).is_none_or(|x| x > t) {
            i -= 1;
        }
        while self.at(i + 1).is_some_and(|x| x <= t) {
            i += 1;
        }
        i
    }

    fn last_at_or_before(&self, t: NaiveDateTime) -> i64 {
        self.last_at_or_before_unclamped(t).min(self.last_index())
    }

    fn first_at_or_after(&self, t: NaiveDateTime) -> i64 {
        if t <= self.start {
            return 0;
        }
        let i = self.last_at_or_before_unclamped(t);
        if self.at(i) == Some(t) { i } else { i + 1 }
    }

    /// The index of `t` if it is a point of the grid within the range.
    fn index_of(&self, t: NaiveDateTime) -> Option<i64> {
        let i = self.last_at_or_before_unclamped(t);
        (i >= 0 && i <= self.last_index() && self.at(i) == Some(t)).then_some(i)
    }

    /// A filter literal as a time: ISO text for `date` / `timestamp` keys, the projection's
    /// format (printed back identically) for text keys.
    fn read(&self, literal: &str, hive: &str) -> Option<NaiveDateTime> {
        if is_time_type(hive) {
            let s = literal.trim();
            return NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok());
        }
        let t = mysql_format::parse(&self.items, literal).ok()?;
        (mysql_format::format(&self.items, &t) == literal).then_some(t)
    }
}

fn months_between(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    use chrono::Datelike;
    (i64::from(b.year()) - i64::from(a.year())) * 12 + i64::from(b.month()) - i64::from(a.month())
}

/// A projection `quarry crawl --projection` proposes for a catalogued table, or why none fits.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Proposal {
    pub table: String,
    /// The table properties to set; `None` when no projection fits the partitions.
    pub properties: Option<std::collections::BTreeMap<String, String>>,
    /// One line per partition key (or the reason there is no proposal).
    pub reasons: Vec<String>,
}

/// Share of a range's values that may be missing for a key to count as contiguous.
const MAX_MISSING: f64 = 0.10;

/// Date layouts a partition folder commonly uses, most specific first, with their step.
const DATE_FORMATS: [(&str, &str, u8); 9] = [
    ("yyyy-MM-dd-HH", "HOURS", 3),
    ("yyyyMMddHH", "HOURS", 3),
    ("yyyy-MM-dd HH", "HOURS", 3),
    ("yyyy-MM-dd", "DAYS", 2),
    ("yyyyMMdd", "DAYS", 2),
    ("yyyy_MM_dd", "DAYS", 2),
    ("yyyy-MM", "MONTHS", 1),
    ("yyyyMM", "MONTHS", 1),
    ("yyyy_MM", "MONTHS", 1),
];

/// Proposes a projection for `table` from its registered `partitions`: dates (hourly, daily or
/// monthly folders, open-ended to `NOW` when the newest is recent) and integers over a
/// contiguous range, enums for keys with few values. The proposal is checked against every
/// partition: projected with it, each must land on the folder it is registered at.
pub fn propose(table: &Table, partitions: &[Partition], now: DateTime<Utc>) -> Proposal {
    let name = table.qualified_name();
    let refuse = |why: String| Proposal {
        table: name.clone(),
        properties: None,
        reasons: vec![why],
    };
    if table.partition_keys.is_empty() {
        return refuse("not partitioned: nothing to project".into());
    }
    if partitions.is_empty() {
        return refuse("no partitions registered to learn the layout from".into());
    }
    // Each partition's folder texts, from its location below the table's.
    let root = format!("{}/", table.storage.location.trim_end_matches('/'));
    let n = table.partition_keys.len();
    let mut texts: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut hive = None;
    for p in partitions {
        let Some(rest) = p.location.strip_prefix(&root) else {
            return refuse(format!(
                "partition at {} is outside the table's folder {root}: a projection computes \
                 every location from one template",
                p.location
            ));
        };
        if p.values.iter().any(Option::is_none) {
            return refuse(format!(
                "partition at {} has a NULL key (Hive's default partition), which a projection \
                 cannot produce",
                p.location
            ));
        }
        let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        if segments.len() != n {
            return refuse(format!(
                "partition at {} is not one folder per key below the table's folder",
                p.location
            ));
        }
        for (i, seg) in segments.iter().enumerate() {
            let key = &table.partition_keys[i].name;
            let prefix = format!("{}=", quarry_lake::hive::escape(key));
            let is_hive = seg.starts_with(&prefix);
            if *hive.get_or_insert(is_hive) != is_hive {
                return refuse("partition folders mix key=value and plain names".into());
            }
            let text = if is_hive {
                quarry_lake::hive::unescape(&seg[prefix.len()..])
            } else {
                (*seg).to_string()
            };
            texts[i].push(text);
        }
    }
    let mut props = std::collections::BTreeMap::new();
    props.insert(ENABLED.to_string(), "true".to_string());
    let mut reasons = Vec::new();
    for (key, values) in table.partition_keys.iter().zip(&texts) {
        let mut distinct: Vec<&str> = values.iter().map(String::as_str).collect();
        distinct.sort_unstable();
        distinct.dedup();
        match key_proposal(&key.name, &distinct, now.naive_utc()) {
            Ok((p, why)) => {
                props.extend(p);
                reasons.push(format!("{}: {why}", key.name));
            }
            Err(why) => return refuse(format!("{}: {why}", key.name)),
        }
    }
    if hive == Some(false) {
        let template: String = table
            .partition_keys
            .iter()
            .map(|k| format!("{}/", placeholder(&k.name)))
            .collect();
        props.insert(LOCATION_TEMPLATE.to_string(), format!("{root}{template}"));
    }
    // Check: every registered partition projects onto its own folder.
    let mut projected = table.clone();
    projected.parameters.extend(props.clone());
    let projection = match Projection::of(&projected, now) {
        Ok(Some(p)) => p,
        Ok(None) => return refuse("the proposal does not enable projection".into()),
        Err(e) => return refuse(format!("the proposal does not hold: {e}")),
    };
    for p in partitions {
        let mut filter = PartitionFilter::all();
        for (k, v) in table.partition_keys.iter().zip(&p.values) {
            filter = filter.eq(&k.name, v.clone().unwrap_or_default());
        }
        let hit = projection.partitions(&filter).map(|s| s.partitions);
        let found = hit.as_ref().is_ok_and(|h| {
            h.iter()
                .any(|q| q.location.trim_end_matches('/') == p.location.trim_end_matches('/'))
        });
        if !found {
            return refuse(format!(
                "the proposal would not read partition {} at {}",
                quarry_lake::hive::partition_label(
                    &table
                        .partition_keys
                        .iter()
                        .map(|k| k.name.as_str())
                        .collect::<Vec<_>>(),
                    &p.values
                ),
                p.location
            ));
        }
    }
    Proposal {
        table: name,
        properties: Some(props),
        reasons,
    }
}

type KeyProps = (Vec<(String, String)>, String);

fn key_proposal(
    key: &str,
    values: &[&str],
    now: NaiveDateTime,
) -> std::result::Result<KeyProps, String> {
    let prop = |name: &str, v: String| (format!("projection.{key}.{name}"), v);
    // Dates first: `20240101` is a date before it is an integer.
    for (pattern, unit, precision) in DATE_FORMATS {
        let Ok(items) = compile_java_pattern(pattern) else {
            continue;
        };
        let times: Option<Vec<NaiveDateTime>> = values
            .iter()
            .map(|v| {
                mysql_format::parse(&items, v)
                    .ok()
                    .filter(|t| mysql_format::format(&items, t) == *v)
            })
            .collect();
        let Some(mut times) = times else { continue };
        times.sort_unstable();
        let (first, last) = (times[0], times[times.len() - 1]);
        let step = step_of(unit, 1).expect("known unit");
        let span = match step {
            Step::Fixed(d) => (last - first).num_milliseconds() / d.num_milliseconds() + 1,
            Step::Months(_) => months_between(first, last) + 1,
        };
        let missing = span - times.len() as i64;
        if missing as f64 > MAX_MISSING * span as f64 {
            return Err(format!(
                "dates in {pattern} from {} to {} with {missing} of {span} missing: too sparse \
                 to project (a projection lists every value in its range)",
                values[0],
                values[values.len() - 1]
            ));
        }
        // Open-ended when the newest partition is recent: new ones are readable on arrival.
        let recent = match step {
            Step::Fixed(d) => last + d * 2 >= now,
            Step::Months(_) => months_between(last, now) <= 2,
        };
        let end = if recent {
            "NOW".to_string()
        } else {
            mysql_format::format(&items, &last)
        };
        let mut props = vec![
            prop("type", "date".into()),
            prop("format", pattern.into()),
            prop(
                "range",
                format!("{},{end}", mysql_format::format(&items, &first)),
            ),
        ];
        if precision > 2 {
            props.push(prop("interval", "1".into()));
            props.push(prop("interval.unit", unit.into()));
        }
        let why = format!(
            "{} {} dates ({pattern}) from {} to {}{}; range ends at {}",
            times.len(),
            unit.to_ascii_lowercase().trim_end_matches('s'),
            values[0],
            values[values.len() - 1],
            if missing > 0 {
                format!(", {missing} missing")
            } else {
                String::new()
            },
            if recent {
                "NOW (the newest is recent, so new partitions are read without a re-crawl)"
                    .to_string()
            } else {
                format!("{end} (the newest is old; set NOW if the table still grows)")
            }
        );
        return Ok((props, why));
    }
    let numbers: Option<Vec<i64>> = values.iter().map(|v| v.parse::<i64>().ok()).collect();
    if let Some(mut numbers) = numbers {
        numbers.sort_unstable();
        numbers.dedup();
        let (min, max) = (numbers[0], numbers[numbers.len() - 1]);
        let span = (max - min).saturating_add(1);
        let missing = span - numbers.len() as i64;
        if missing as f64 > MAX_MISSING * span as f64 {
            return Err(format!(
                "integers {min}..{max} with {missing} of {span} missing: too sparse to project \
                 (a projection lists every value in its range)"
            ));
        }
        let padded: Vec<&&str> = values
            .iter()
            .filter(|v| v.len() > 1 && v.trim_start_matches('-').starts_with('0'))
            .collect();
        let mut props = vec![
            prop("type", "integer".into()),
            prop("range", format!("{min},{max}")),
        ];
        if let Some(first) = padded.first() {
            let width = first.len();
            if values.iter().any(|v| v.len() != width) {
                return Err(format!(
                    "integers are zero-padded unevenly ({} and others): no single digits \
                     setting prints them",
                    first
                ));
            }
            props.push(prop("digits", width.to_string()));
        }
        return Ok((
            props,
            format!(
                "integers {min}..{max}{}",
                if padded.is_empty() {
                    String::new()
                } else {
                    ", zero-padded".to_string()
                }
            ),
        ));
    }
    const MAX_ENUM: usize = 50;
    if values.len() <= MAX_ENUM && values.iter().all(|v| !v.contains(',')) {
        return Ok((
            vec![
                prop("type", "enum".into()),
                prop("values", values.join(",")),
            ],
            format!(
                "{} distinct values as an enum (add new values to projection.{key}.values)",
                values.len()
            ),
        ));
    }
    Err(format!(
        "{} distinct values that are neither dates nor integers: an enum would be too long",
        values.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(keys: &[(&str, &str)], props: &[(&str, &str)]) -> Table {
        let mut t: Table = serde_json::from_value(serde_json::json!({
            "database": "db", "name": "t", "table_type": "EXTERNAL_TABLE",
            "storage": {"location": "s3://b/t/", "columns": [], "input_format": "",
                        "output_format": "", "serde_info": {"serialization_library": ""},
                        "compressed": false},
            "partition_keys": [], "parameters": {"projection.enabled": "true"},
            "create_time": "2024-01-01T00:00:00Z", "update_time": "2024-01-01T00:00:00Z"}))
        .unwrap();
        t.partition_keys = keys.iter().map(|(n, ty)| Column::new(*n, *ty)).collect();
        for (k, v) in props {
            t.parameters.insert((*k).into(), (*v).into());
        }
        t
    }

    fn now() -> DateTime<Utc> {
        "2024-06-15T10:30:00Z".parse().unwrap()
    }

    fn locations(p: &Projection, f: &PartitionFilter) -> Vec<String> {
        p.partitions(f)
            .unwrap()
            .partitions
            .into_iter()
            .map(|p| p.location)
            .collect()
    }

    fn range(key: &str, low: Bound<&str>, high: Bound<&str>) -> PartitionFilter {
        let b = |x: Bound<&str>| match x {
            Bound::Included(v) => Bound::Included(v.to_string()),
            Bound::Excluded(v) => Bound::Excluded(v.to_string()),
            Bound::Unbounded => Bound::Unbounded,
        };
        PartitionFilter::all().and(
            key,
            KeyPredicate::Range {
                low: b(low),
                high: b(high),
            },
        )
    }

    #[test]
    fn integer_ranges_step_and_pad() {
        let t = table(
            &[("hr", "int")],
            &[
                ("projection.hr.type", "integer"),
                ("projection.hr.range", "1,9"),
                ("projection.hr.interval", "2"),
                ("projection.hr.digits", "2"),
            ],
        );
        let p = Projection::of(&t, now()).unwrap().unwrap();
        let all = p.partitions(&PartitionFilter::all()).unwrap();
        assert_eq!(all.considered, 5);
        let folders: Vec<_> = all.partitions.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(
            folders,
            [
                "s3://b/t/hr=01/",
                "s3://b/t/hr=03/",
                "s3://b/t/hr=05/",
                "s3://b/t/hr=07/",
                "s3://b/t/hr=09/"
            ]
        );
        assert_eq!(
            locations(&p, &range("hr", Bound::Excluded("3"), Bound::Included("7"))),
            ["s3://b/t/hr=05/", "s3://b/t/hr=07/"]
        );
        assert_eq!(
            locations(&p, &PartitionFilter::all().eq("hr", "5")),
            ["s3://b/t/hr=05/"]
        );
        assert!(locations(&p, &PartitionFilter::all().eq("hr", "4")).is_empty());
        assert!(locations(&p, &PartitionFilter::all().eq("hr", "11")).is_empty());
    }

    #[test]
    fn hourly_dates_over_five_years_select_by_arithmetic() {
        let t = table(
            &[("dt", "string")],
            &[
                ("projection.dt.type", "date"),
                ("projection.dt.format", "yyyy/MM/dd/HH"),
                ("projection.dt.range", "NOW-5YEARS,NOW"),
                ("projection.dt.interval", "1"),
                ("projection.dt.interval.unit", "HOURS"),
                ("storage.location.template", "s3://b/logs/${dt}"),
            ],
        );
        let p = Projection::of(&t, now()).unwrap().unwrap();
        let one = p
            .partitions(&PartitionFilter::all().eq("dt", "2022/03/04/05"))
            .unwrap();
        assert_eq!(
            one.considered, 43_849,
            "5 years of hours, both ends included"
        );
        assert_eq!(one.partitions.len(), 1);
        assert_eq!(one.partitions[0].location, "s3://b/logs/2022/03/04/05/");
        let week = locations(
            &p,
            &range(
                "dt",
                Bound::Included("2022/03/01/00"),
                Bound::Excluded("2022/03/08/00"),
            ),
        );
        assert_eq!(week.len(), 168);
        assert_eq!(week[0], "s3://b/logs/2022/03/01/00/");
        assert_eq!(week[167], "s3://b/logs/2022/03/07/23/");
        // Beyond NOW (10:30 truncated to 10:00) nothing is projected.
        assert_eq!(
            locations(
                &p,
                &range("dt", Bound::Included("2024/06/15/09"), Bound::Unbounded)
            ),
            ["s3://b/logs/2024/06/15/09/", "s3://b/logs/2024/06/15/10/"]
        );
        // A literal the format would not print matches nothing, as a text comparison would.
        assert!(locations(&p, &PartitionFilter::all().eq("dt", "2022/3/04/05")).is_empty());
    }

    #[test]
    fn monthly_dates_and_date_typed_keys() {
        let t = table(
            &[("month", "string"), ("day", "date")],
            &[
                ("projection.month.type", "date"),
                ("projection.month.format", "yyyyMM"),
                ("projection.month.range", "202301,202306"),
                ("projection.day.type", "date"),
                ("projection.day.format", "dd-MM-yyyy"),
                ("projection.day.range", "01-01-2024,NOW"),
            ],
        );
        let p = Projection::of(&t, now()).unwrap().unwrap();
        let f = range("month", Bound::Included("202304"), Bound::Unbounded).eq("day", "2024-02-29");
        let sel = p.partitions(&f).unwrap();
        let got: Vec<_> = sel.partitions.iter().map(|p| p.values.clone()).collect();
        assert_eq!(
            got,
            [
                vec![Some("202304".into()), Some("2024-02-29".into())],
                vec![Some("202305".into()), Some("2024-02-29".into())],
                vec![Some("202306".into()), Some("2024-02-29".into())],
            ]
        );
        assert_eq!(
            sel.partitions[0].location,
            "s3://b/t/month=202304/day=29-02-2024/"
        );
        assert_eq!(sel.considered, 6 * 167);
    }

    #[test]
    fn enums_and_injected_keys() {
        let t = table(
            &[("region", "string"), ("device", "string")],
            &[
                ("projection.region.type", "enum"),
                ("projection.region.values", "us,eu,ap"),
                ("projection.device.type", "Injected "),
                (
                    "storage.location.template",
                    "s3://b/x/${region}/d/${device}/",
                ),
            ],
        );
        let p = Projection::of(&t, now()).unwrap().unwrap();
        let f = PartitionFilter::all()
            .and("region", KeyPredicate::In(vec!["eu".into(), "zz".into()]))
            .and("device", KeyPredicate::In(vec!["b".into(), "a".into()]));
        assert_eq!(locations(&p, &f), ["s3://b/x/eu/d/a/", "s3://b/x/eu/d/b/"]);
        let e = p.partitions(&PartitionFilter::all()).unwrap_err();
        assert!(e.0.starts_with("CONSTRAINT_VIOLATION"), "{e}");
        let e = p
            .partitions(&range("device", Bound::Included("a"), Bound::Unbounded))
            .unwrap_err();
        assert!(e.0.contains("device"), "{e}");
    }

    #[test]
    fn configuration_errors_name_the_table_and_property() {
        let t = table(
            &[("a", "string"), ("b", "int")],
            &[("projection.a.type", "enum")],
        );
        let e = Projection::of(&t, now()).unwrap_err();
        assert!(e.0.contains("missing projection configuration: [b]"), "{e}");
        let t = table(
            &[("a", "string")],
            &[
                ("projection.a.type", "enum"),
                ("projection.a.values", "x"),
                ("storage.location.template", "s3://b/t/"),
            ],
        );
        let e = Projection::of(&t, now()).unwrap_err();
        assert!(e.0.contains("${a}"), "{e}");
        let t = table(
            &[("a", "string")],
            &[
                ("projection.a.type", "date"),
                ("projection.a.format", "yyyy-MM-dd HH"),
                ("projection.a.range", "2024-01-01 00,NOW"),
            ],
        );
        let e = Projection::of(&t, now()).unwrap_err();
        assert!(e.0.contains("interval.unit"), "{e}");
        let mut off = table(&[("a", "string")], &[]);
        off.parameters.insert(ENABLED.into(), "false".into());
        assert!(Projection::of(&off, now()).unwrap().is_none());
    }

    fn partition(values: &[&str], location: &str) -> Partition {
        Partition::new(
            values.iter().map(|v| Some(v.to_string())).collect(),
            location,
        )
    }

    #[test]
    fn proposals_follow_the_layout_and_say_why() {
        // Hive layout: daily dates (recent: open-ended) and zero-padded hours.
        let mut t = table(&[("dt", "date"), ("hr", "int")], &[]);
        t.parameters.clear();
        let mut parts = Vec::new();
        for day in 10..=15 {
            for hr in 0..24 {
                parts.push(partition(
                    &[&format!("2024-06-{day}"), &hr.to_string()],
                    &format!("s3://b/t/dt=2024-06-{day}/hr={hr:02}/"),
                ));
            }
        }
        let p = propose(&t, &parts, now());
        let props = p.properties.expect("proposed");
        assert_eq!(
            props["projection.dt.range"], "2024-06-10,NOW",
            "{:?}",
            p.reasons
        );
        assert_eq!(props["projection.dt.format"], "yyyy-MM-dd");
        assert_eq!(props["projection.hr.digits"], "2");
        assert!(!props.contains_key(LOCATION_TEMPLATE));
        assert!(p.reasons[0].contains("NOW"), "{:?}", p.reasons);

        // Plain folders: a template; old months end at the newest one.
        let t = table(&[("partition_0", "string"), ("partition_1", "string")], &[]);
        let parts: Vec<_> = (1..=3)
            .flat_map(|m| {
                ["us", "eu"].map(|r| {
                    partition(
                        &[&format!("20230{m}"), r],
                        &format!("s3://b/t/20230{m}/{r}/"),
                    )
                })
            })
            .collect();
        let p = propose(&t, &parts, now());
        let props = p.properties.expect("proposed");
        assert_eq!(props["projection.partition_0.range"], "202301,202303");
        assert_eq!(props["projection.partition_1.values"], "eu,us");
        assert_eq!(
            props[LOCATION_TEMPLATE],
            "s3://b/t/${partition_0}/${partition_1}/"
        );

        // Sparse integers are refused, with the reason.
        let t = table(&[("d", "int")], &[]);
        let parts: Vec<_> = [1, 15, 16]
            .iter()
            .map(|d| partition(&[&d.to_string()], &format!("s3://b/t/d={d}/")))
            .collect();
        let p = propose(&t, &parts, now());
        assert!(p.properties.is_none());
        assert!(p.reasons[0].contains("13 of 16 missing"), "{:?}", p.reasons);
    }

    #[test]
    fn relative_ends() {
        let n = now().naive_utc();
        assert_eq!(relative("NOW", n), Some(n));
        assert_eq!(
            relative(" now - 3 years ", n).unwrap().to_string(),
            "2021-06-15 10:30:00"
        );
        assert_eq!(
            relative("NOW+1MONTH", n).unwrap().to_string(),
            "2024-07-15 10:30:00"
        );
        assert_eq!(relative("NOW*2", n), None);
        assert_eq!(relative("2024", n), None);
    }

    #[test]
    fn too_many_partitions_is_an_error_not_a_hang() {
        let t = table(
            &[("a", "int"), ("b", "int")],
            &[
                ("projection.a.type", "integer"),
                ("projection.a.range", "0,9999"),
                ("projection.b.type", "integer"),
                ("projection.b.range", "0,9999"),
            ],
        );
        let p = Projection::of(&t, now()).unwrap().unwrap();
        let e = p.partitions(&PartitionFilter::all()).unwrap_err();
        assert!(e.0.contains("more than 1000000"), "{e}");
        assert_eq!(
            p.partitions(&PartitionFilter::all().eq("a", "7"))
                .unwrap()
                .partitions
                .len(),
            10_000
        );
    }
}
