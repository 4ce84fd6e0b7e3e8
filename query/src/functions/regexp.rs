//! Regular expression functions (Trino `functions/regexp.md`). `regexp_like` is DataFusion's,
//! which already behaves as Trino's (a search, not a full match). Matches are found as Trino
//! finds them (see [`matches`]), which differs from Rust's iterators after empty matches.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, Int64Array, ListBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::logical_expr::ScalarUDF;
use regex::{Captures, Regex};

use super::{Call, Extended, Udf, is_integer, is_string};

pub(super) fn functions() -> Vec<ScalarUDF> {
    vec![
        // DataFusion's start and flags arguments (no Trino form) stay DataFusion's.
        Extended::udf(
            Udf::new(
                "regexp_count",
                "regexp_count(varchar, varchar)",
                |t| super::all_as(t, &[2], is_string, DataType::Utf8),
                |_| Ok(DataType::Int64),
                regexp_count,
            ),
            datafusion::functions::regex::regexp_count(),
        ),
        Udf::new(
            "regexp_replace",
            "regexp_replace(varchar, varchar) | regexp_replace(varchar, varchar, varchar)",
            |t| super::all_as(t, &[2, 3], is_string, DataType::Utf8),
            |_| Ok(DataType::Utf8),
            regexp_replace,
        )
        .udf(),
        Udf::new(
            "regexp_extract",
            "regexp_extract(varchar, varchar) | regexp_extract(varchar, varchar, bigint)",
            string_string_group,
            |_| Ok(DataType::Utf8),
            regexp_extract,
        )
        .udf(),
        Udf::new(
            "regexp_extract_all",
            "regexp_extract_all(varchar, varchar) | regexp_extract_all(varchar, varchar, bigint)",
            string_string_group,
            |_| {
                Ok(DataType::List(Arc::new(Field::new_list_field(
                    DataType::Utf8,
                    true,
                ))))
            },
            regexp_extract_all,
        )
        .udf(),
        Udf::new(
            "regexp_split",
            "regexp_split(varchar, varchar)",
            |t| super::all_as(t, &[2], is_string, DataType::Utf8),
            |_| {
                Ok(DataType::List(Arc::new(Field::new_list_field(
                    DataType::Utf8,
                    true,
                ))))
            },
            regexp_split,
        )
        .udf(),
        Udf::new(
            "regexp_position",
            "regexp_position(varchar, varchar[, bigint[, bigint]])",
            |t| match t {
                [s, p, rest @ ..] if is_string(s) && is_string(p) && rest.len() <= 2 => {
                    if !rest.iter().all(is_integer) {
                        return None;
                    }
                    let mut out = vec![DataType::Utf8, DataType::Utf8];
                    out.extend(rest.iter().map(|_| DataType::Int64));
                    Some(out)
                }
                _ => None,
            },
            |_| Ok(DataType::Int64),
            regexp_position,
        )
        .udf(),
    ]
}

fn string_string_group(t: &[DataType]) -> Option<Vec<DataType>> {
    match t {
        [s, p] if is_string(s) && is_string(p) => Some(vec![DataType::Utf8, DataType::Utf8]),
        [s, p, g] if is_string(s) && is_string(p) && is_integer(g) => {
            Some(vec![DataType::Utf8, DataType::Utf8, DataType::Int64])
        }
        _ => None,
    }
}

/// Compiled patterns of one batch.
#[derive(Default)]
struct Patterns(HashMap<String, Regex>);

impl Patterns {
    fn get(&mut self, pattern: &str) -> Result<&Regex> {
        if !self.0.contains_key(pattern) {
            let re = Regex::new(pattern).map_err(|e| {
                DataFusionError::Execution(format!("invalid regular expression '{pattern}': {e}"))
            })?;
            self.0.insert(pattern.to_string(), re);
        }
        self.0
            .get(pattern)
            .ok_or_else(|| DataFusionError::Internal("pattern cache".into()))
    }
}

/// The matches of `re` in `text` from byte `from`, as Trino (Joni) finds them: after an empty
/// match the search resumes one character later, and an empty match right after a non-empty
/// one counts (`regexp_replace('aaa', 'a*', '-')` is `--`), unlike Rust's `captures_iter`.
/// Anchors and `\b` see the whole text.
fn matches<'a>(re: &'a Regex, text: &'a str, from: usize) -> impl Iterator<Item = Captures<'a>> {
    let mut next = from;
    std::iter::from_fn(move || {
        if next > text.len() {
            return None;
        }
        let caps = re.captures_at(text, next)?;
        let m = caps.get(0)?;
        next = if m.is_empty() {
            m.end() + text[m.end()..].chars().next().map_or(1, char::len_utf8)
        } else {
            m.end()
        };
        Some(caps)
    })
}

/// Group `g` of a match; checked against the pattern's groups (Trino's error otherwise).
fn check_group(re: &Regex, g: i64) -> Result<usize> {
    let groups = re.captures_len() - 1;
    match usize::try_from(g) {
        Ok(g) if g <= groups => Ok(g),
        _ => exec_err!("Pattern has {groups} groups. Cannot access group {g}"),
    }
}

fn regexp_extract(call: &Call) -> Result<ArrayRef> {
    let s = call.args[0].as_string::<i32>();
    let p = call.args[1].as_string::<i32>();
    let g = call.args.get(2).map(|g| g.as_primitive::<Int64Type>());
    let mut patterns = Patterns::default();
    let mut out = StringBuilder::new();
    for i in 0..call.rows {
        if super::null_at(&call.args, i) {
            out.append_null();
            continue;
        }
        let re = patterns.get(p.value(i))?;
        let group = check_group(re, g.map_or(0, |g| g.value(i)))?;
        match re.captures(s.value(i)).and_then(|c| c.get(group)) {
            Some(m) => out.append_value(m.as_str()),
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

fn regexp_extract_all(call: &Call) -> Result<ArrayRef> {
    let s = call.args[0].as_string::<i32>();
    let p = call.args[1].as_string::<i32>();
    let g = call.args.get(2).map(|g| g.as_primitive::<Int64Type>());
    let mut patterns = Patterns::default();
    let mut out = ListBuilder::new(StringBuilder::new());
    for i in 0..call.rows {
        if super::null_at(&call.args, i) {
            out.append_null();
            continue;
        }
        let re = patterns.get(p.value(i))?;
        let group = check_group(re, g.map_or(0, |g| g.value(i)))?;
        for c in matches(re, s.value(i), 0) {
            out.values().append_option(c.get(group).map(|m| m.as_str()));
        }
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

fn regexp_count(call: &Call) -> Result<ArrayRef> {
    let s = call.args[0].as_string::<i32>();
    let p = call.args[1].as_string::<i32>();
    let mut patterns = Patterns::default();
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        if super::null_at(&call.args, i) {
            out.push(None);
            continue;
        }
        let count = matches(patterns.get(p.value(i))?, s.value(i), 0).count();
        out.push(Some(count as i64));
    }
    Ok(Arc::new(Int64Array::from(out)))
}

fn regexp_split(call: &Call) -> Result<ArrayRef> {
    let s = call.args[0].as_string::<i32>();
    let p = call.args[1].as_string::<i32>();
    let mut patterns = Patterns::default();
    let mut out = ListBuilder::new(StringBuilder::new());
    for i in 0..call.rows {
        if super::null_at(&call.args, i) {
            out.append_null();
            continue;
        }
        let text = s.value(i);
        let mut last = 0;
        for c in matches(patterns.get(p.value(i))?, text, 0) {
            let Some(m) = c.get(0) else { continue };
            out.values().append_value(&text[last..m.start()]);
            last = m.end();
        }
        out.values().append_value(&text[last..]);
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

fn regexp_position(call: &Call) -> Result<ArrayRef> {
    let s = call.args[0].as_string::<i32>();
    let p = call.args[1].as_string::<i32>();
    let start = call.args.get(2).map(|a| a.as_primitive::<Int64Type>());
    let occurrence = call.args.get(3).map(|a| a.as_primitive::<Int64Type>());
    let mut patterns = Patterns::default();
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        if super::null_at(&call.args, i) {
            out.push(None);
            continue;
        }
        let start = start.map_or(1, |a| a.value(i));
        let nth = occurrence.map_or(1, |a| a.value(i));
        if start < 1 {
            return exec_err!("start position cannot be smaller than 1");
        }
        if nth < 1 {
            return exec_err!("occurrence cannot be smaller than 1");
        }
        let text = s.value(i);
        let re = patterns.get(p.value(i))?;
        // `start` counts characters; find its byte offset.
        let from = usize::try_from(start - 1).ok().and_then(|n| {
            text.char_indices()
                .map(|(b, _)| b)
                .chain([text.len()])
                .nth(n)
        });
        let found = from.and_then(|from| {
            let nth = usize::try_from(nth - 1).ok()?;
            matches(re, text, from)
                .nth(nth)
                .and_then(|c| c.get(0))
                .map(|m| m.start())
        });
        out.push(Some(match found {
            Some(byte) => i64::try_from(text[..byte].chars().count()).unwrap_or(i64::MAX) + 1,
            None => -1,
        }));
    }
    Ok(Arc::new(Int64Array::from(out)))
}

/// A piece of a Trino replacement string.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Group(usize),
}

/// Parses a replacement the way Trino's `regexp_replace` does: `$g` (as many digits as name an
/// existing group), `${name}`, `\x` for a literal `x`.
fn replacement(re: &Regex, r: &str) -> Result<Vec<Piece>, String> {
    let illegal = || format!("Illegal replacement sequence: {r}");
    let groups = re.captures_len();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(chars.next().ok_or_else(illegal)?),
            '$' => {
                let next = chars.next().ok_or_else(illegal)?;
                let group = if next == '{' {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    let index = re.capture_names().position(|n| n == Some(name.as_str()));
                    index.ok_or_else(|| {
                        format!("Illegal replacement sequence: unknown group {{ {name} }}")
                    })?
                } else {
                    let mut group = next.to_digit(10).ok_or_else(illegal)? as usize;
                    if group >= groups {
                        return Err(format!(
                            "Illegal replacement sequence: unknown group {group}"
                        ));
                    }
                    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                        let longer = group * 10 + d as usize;
                        if longer >= groups {
                            break;
                        }
                        group = longer;
                        chars.next();
                    }
                    group
                };
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Group(group));
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn expand(pieces: &[Piece], caps: &Captures, out: &mut String) {
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Group(g) => out.push_str(caps.get(*g).map_or("", |m| m.as_str())),
        }
    }
}

fn regexp_replace(call: &Call) -> Result<ArrayRef> {
    let s = call.args[0].as_string::<i32>();
    let p = call.args[1].as_string::<i32>();
    let r = call.args.get(2).map(|r| r.as_string::<i32>());
    let mut patterns = Patterns::default();
    let mut templates: HashMap<(String, String), Result<Vec<Piece>, String>> = HashMap::new();
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        if super::null_at(&call.args, i) {
            out.push(None);
            continue;
        }
        let (text, pattern) = (s.value(i), p.value(i));
        let re = patterns.get(pattern)?;
        let rep = r.map_or("", |r| r.value(i));
        let key = (pattern.to_string(), rep.to_string());
        let template = templates.entry(key).or_insert_with(|| replacement(re, rep));
        let mut result = String::with_capacity(text.len());
        let mut last = 0;
        for caps in matches(re, text, 0) {
            // Trino checks the replacement when it is first used, so a bad one fails only
            // where the pattern matches.
            let pieces = template
                .as_ref()
                .map_err(|e| DataFusionError::Execution(e.clone()))?;
            let Some(m) = caps.get(0) else { continue };
            result.push_str(&text[last..m.start()]);
            expand(pieces, &caps, &mut result);
            last = m.end();
        }
        result.push_str(&text[last..]);
        out.push(Some(result));
    }
    Ok(Arc::new(StringArray::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_groups_follow_trino() {
        let re = Regex::new("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)").unwrap();
        assert_eq!(replacement(&re, "$11").unwrap(), [Piece::Group(11)]);
        assert_eq!(
            replacement(&re, "$12").unwrap(),
            [Piece::Group(1), Piece::Text("2".into())]
        );
        assert_eq!(
            replacement(&re, "\\$1").unwrap(),
            [Piece::Text("$1".into())]
        );
        let re = Regex::new("(?P<x>a)").unwrap();
        assert_eq!(replacement(&re, "${x}").unwrap(), [Piece::Group(1)]);
        assert!(
            replacement(&re, "$2")
                .unwrap_err()
                .contains("unknown group 2")
        );
        assert!(replacement(&re, "$").is_err());
    }
}
