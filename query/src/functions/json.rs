//! JSON functions (Trino `functions/json.md`, "Other JSON functions"). Trino's `json` type is
//! text here: `json_parse` and `json_extract` return the canonical JSON text Trino would hold
//! (compact; `json_parse` sorts object keys; numbers re-written as Java writes them, so `1.50`
//! becomes `1.5` and `1e2` becomes `100.0`), while `json_extract_scalar` returns a number as
//! it was written.
//!
//! JSON paths are Trino's legacy subset: `$`, then `.key`, `["key"]` (with `\"` and `\\`),
//! `[key]` or `[n]`; `.0` and `[0]` index arrays and name keys of objects. An invalid path is
//! an error; invalid JSON gives NULL, except in `json_parse`, `json_format` and
//! `is_json_scalar`, which fail as Trino's do.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::logical_expr::ScalarUDF;

use super::{Call, Udf, is_string};

pub(super) fn functions() -> Vec<ScalarUDF> {
    let json_and_path = |t: &[DataType]| super::all_as(t, &[2], is_string, DataType::Utf8);
    let one_string = |t: &[DataType]| super::all_as(t, &[1], is_string, DataType::Utf8);
    vec![
        Udf::new(
            "json_extract",
            "json_extract(json, json_path)",
            json_and_path,
            |_| Ok(DataType::Utf8),
            json_extract,
        )
        .udf(),
        Udf::new(
            "json_extract_scalar",
            "json_extract_scalar(json, json_path)",
            json_and_path,
            |_| Ok(DataType::Utf8),
            json_extract,
        )
        .udf(),
        Udf::new(
            "json_size",
            "json_size(json, json_path)",
            json_and_path,
            |_| Ok(DataType::Int64),
            json_size,
        )
        .udf(),
        Udf::new(
            "json_array_length",
            "json_array_length(json)",
            one_string,
            |_| Ok(DataType::Int64),
            json_array_length,
        )
        .udf(),
        Udf::new(
            "json_array_contains",
            "json_array_contains(json, boolean | bigint | double | varchar)",
            |t| match t {
                [j, v] if is_string(j) => {
                    let v = match v {
                        DataType::Boolean => DataType::Boolean,
                        v if v.is_integer() => DataType::Int64,
                        v if v.is_numeric() => DataType::Float64,
                        v if is_string(v) => DataType::Utf8,
                        _ => return None,
                    };
                    Some(vec![DataType::Utf8, v])
                }
                _ => None,
            },
            |_| Ok(DataType::Boolean),
            json_array_contains,
        )
        .udf(),
        Udf::new(
            "json_parse",
            "json_parse(varchar)",
            one_string,
            |_| Ok(DataType::Utf8),
            json_parse,
        )
        .udf(),
        Udf::new(
            "json_format",
            "json_format(json)",
            one_string,
            |_| Ok(DataType::Utf8),
            json_format,
        )
        .udf(),
        Udf::new(
            "is_json_scalar",
            "is_json_scalar(json)",
            one_string,
            |_| Ok(DataType::Boolean),
            is_json_scalar,
        )
        .udf(),
    ]
}

/// A JSON value; numbers keep their text, objects their order and duplicate keys.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Deeper documents are refused, as Jackson refuses them by default.
const MAX_DEPTH: usize = 1000;

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

/// Parses one JSON value (RFC 8259; surrounding whitespace allowed).
pub(crate) fn parse(text: &str) -> Result<Json, String> {
    let mut p = Parser {
        text: text.as_bytes(),
        pos: 0,
    };
    let value = p.value(0)?;
    p.space();
    if p.pos != p.text.len() {
        return Err(p.error("trailing characters"));
    }
    Ok(value)
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!("{what} at position {}", self.pos)
    }

    fn space(&mut self) {
        while matches!(self.text.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.text[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("unexpected token"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.space();
        match self.text.get(self.pos) {
            None => Err(self.error("unexpected end")),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.space();
                if self.text.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.space();
                    match self.text.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(self.error("expected ',' or ']'")),
                    }
                }
            }
            Some(b'{') => {
                self.pos += 1;
                let mut members = Vec::new();
                self.space();
                if self.text.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                loop {
                    self.space();
                    if self.text.get(self.pos) != Some(&b'"') {
                        return Err(self.error("expected a key"));
                    }
                    let key = self.string()?;
                    self.space();
                    if self.text.get(self.pos) != Some(&b':') {
                        return Err(self.error("expected ':'"));
                    }
                    self.pos += 1;
                    members.push((key, self.value(depth + 1)?));
                    self.space();
                    match self.text.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Object(members));
                        }
                        _ => return Err(self.error("expected ',' or '}'")),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.text.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        if self.text[self.pos] == b'-' {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = self.digits();
        if n == 0 || (n > 1 && self.text[int_start] == b'0') {
            return Err(self.error("invalid number"));
        }
        if self.text.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if matches!(self.text.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.text.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        let text = std::str::from_utf8(&self.text[start..self.pos])
            .map_err(|_| self.error("invalid number"))?;
        Ok(Json::Number(text.to_string()))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let hex = self
            .text
            .get(self.pos..self.pos + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(hex)
    }

    fn string(&mut self) -> Result<String, String> {
        self.pos += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.text.get(self.pos) else {
                return Err(self.error("unterminated string"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.text.get(self.pos) else {
                        return Err(self.error("unterminated string"));
                    };
                    self.pos += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi)
                                && self.text[self.pos..].starts_with(b"\\u")
                            {
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.error("invalid surrogate pair"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code).unwrap_or('\u{FFFD}')
                        }
                        _ => return Err(self.error("invalid escape")),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(self.error("control character in string")),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("invalid UTF-8"))
    }
}

/// A number as Jackson writes it back: integers canonical, others as Java's `Double.toString`.
fn canonical_number(text: &str) -> String {
    if !text.contains(['.', 'e', 'E']) {
        return if text == "-0" {
            "0".into()
        } else {
            text.into()
        };
    }
    java_double(text.parse::<f64>().unwrap_or(f64::NAN))
}

/// Java's `Double.toString` (shortest digits that read back; plain notation in [1e-3, 1e7)).
pub(crate) fn java_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{:e}", d.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if d < 0.0 { "-" } else { "" };
    let abs = d.abs();
    if (1e-3..1e7).contains(&abs) {
        let point = exp + 1; // digits before the decimal point
        let (int, frac) = if point <= 0 {
            (
                "0".to_string(),
                format!("{}{digits}", "0".repeat((-point) as usize)),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_string(),
                digits[point as usize..].to_string(),
            )
        };
        let frac = if frac.is_empty() {
            "0".to_string()
        } else {
            frac
        };
        format!("{sign}{int}.{frac}")
    } else {
        let frac = if digits.len() > 1 { &digits[1..] } else { "0" };
        format!("{sign}{}.{frac}E{exp}", &digits[..1])
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Compact JSON text; with `sorted`, object keys in order and duplicates resolved to the last
/// value (Jackson reading into a map, as `json_parse` does).
fn write(value: &Json, sorted: bool, out: &mut String) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(&canonical_number(n)),
        Json::String(s) => write_string(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, sorted, out);
            }
            out.push(']');
        }
        Json::Object(members) => {
            let mut members: Vec<&(String, Json)> = members.iter().collect();
            if sorted {
                let mut last: HashMap<&str, usize> = HashMap::new();
                for (i, (k, _)) in members.iter().enumerate() {
                    last.insert(k.as_str(), i);
                }
                let mut kept: Vec<&(String, Json)> = members
                    .iter()
                    .enumerate()
                    .filter(|(i, (k, _))| last.get(k.as_str()) == Some(i))
                    .map(|(_, m)| *m)
                    .collect();
                kept.sort_by(|a, b| a.0.cmp(&b.0));
                members = kept;
            }
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write(v, sorted, out);
            }
            out.push('}');
        }
    }
}

pub(crate) fn to_text(value: &Json, sorted: bool) -> String {
    let mut out = String::new();
    write(value, sorted, &mut out);
    out
}

/// Parses a Trino JSON path into its keys (Trino's `JsonPathTokenizer`).
pub(crate) fn parse_path(path: &str) -> Result<Vec<String>, String> {
    let invalid = || format!("Invalid JSON path: '{path}'");
    let mut chars = path.chars().peekable();
    if chars.next() != Some('$') {
        return Err(invalid());
    }
    let unquoted = |c: char| c == '_' || c.is_alphanumeric();
    let mut keys = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut key = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ':' || unquoted(c) {
                        key.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if key.is_empty() {
                    return Err(invalid());
                }
                keys.push(key);
            }
            '[' => {
                let mut key = String::new();
                if chars.peek() == Some(&'"') {
                    chars.next();
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some('\\') => match chars.next() {
                                Some(c @ ('"' | '\\')) => key.push(c),
                                _ => return Err(invalid()),
                            },
                            Some(c) => key.push(c),
                            None => return Err(invalid()),
                        }
                    }
                } else {
                    while let Some(&c) = chars.peek() {
                        if unquoted(c) {
                            key.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    if key.is_empty() {
                        return Err(invalid());
                    }
                }
                if chars.next() != Some(']') {
                    return Err(invalid());
                }
                keys.push(key);
            }
            _ => return Err(invalid()),
        }
    }
    Ok(keys)
}

/// The value at `keys` (the first member of a name; a non-negative integer key indexes an
/// array).
fn navigate<'a>(mut value: &'a Json, keys: &[String]) -> Option<&'a Json> {
    for key in keys {
        value = match value {
            Json::Object(members) => &members.iter().find(|(k, _)| k == key)?.1,
            Json::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Runs `f` on each row's parsed document and path; NULL for NULL input and invalid JSON.
fn with_path<T>(call: &Call, f: impl Fn(&Json) -> Option<T>) -> Result<Vec<Option<T>>> {
    let docs = call.args[0].as_string::<i32>();
    let paths = call.args[1].as_string::<i32>();
    let mut compiled: HashMap<&str, Vec<String>> = HashMap::new();
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        if paths.is_null(i) {
            out.push(None);
            continue;
        }
        let path = paths.value(i);
        if !compiled.contains_key(path) {
            let keys = parse_path(path).map_err(DataFusionError::Execution)?;
            compiled.insert(path, keys);
        }
        if docs.is_null(i) {
            out.push(None);
            continue;
        }
        let keys = compiled.get(path).map(Vec::as_slice).unwrap_or_default();
        out.push(
            parse(docs.value(i))
                .ok()
                .and_then(|doc| navigate(&doc, keys).and_then(&f)),
        );
    }
    Ok(out)
}

fn json_extract(call: &Call) -> Result<ArrayRef> {
    let scalar = call.name == "json_extract_scalar";
    let out = with_path(call, |v| match v {
        _ if !scalar => Some(to_text(v, false)),
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.clone()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    })?;
    Ok(Arc::new(StringArray::from(out)))
}

fn json_size(call: &Call) -> Result<ArrayRef> {
    let out = with_path(call, |v| {
        Some(match v {
            Json::Array(items) => items.len() as i64,
            Json::Object(members) => members.len() as i64,
            _ => 0,
        })
    })?;
    Ok(Arc::new(Int64Array::from(out)))
}

fn json_array_length(call: &Call) -> Result<ArrayRef> {
    let docs = call.args[0].as_string::<i32>();
    let out: Int64Array = docs
        .iter()
        .map(|d| match parse(d?) {
            Ok(Json::Array(items)) => Some(items.len() as i64),
            _ => None,
        })
        .collect();
    Ok(Arc::new(out))
}

fn json_array_contains(call: &Call) -> Result<ArrayRef> {
    let docs = call.args[0].as_string::<i32>();
    let needle = &call.args[1];
    let out: BooleanArray = (0..call.rows)
        .map(|i| {
            if docs.is_null(i) || needle.is_null(i) {
                return None;
            }
            let Ok(Json::Array(items)) = parse(docs.value(i)) else {
                return None;
            };
            // Only elements of the needle's JSON type can match; nested arrays are not searched.
            Some(items.iter().any(|item| match (item, needle.data_type()) {
                (Json::Bool(b), DataType::Boolean) => *b == needle.as_boolean().value(i),
                (Json::Number(n), DataType::Int64) => {
                    !n.contains(['.', 'e', 'E'])
                        && n.parse::<i64>().ok()
                            == Some(needle.as_primitive::<Int64Type>().value(i))
                }
                (Json::Number(n), DataType::Float64) => {
                    n.parse::<f64>().ok() == Some(needle.as_primitive::<Float64Type>().value(i))
                }
                (Json::String(s), DataType::Utf8) => s == needle.as_string::<i32>().value(i),
                _ => false,
            }))
        })
        .collect();
    Ok(Arc::new(out))
}

fn json_parse(call: &Call) -> Result<ArrayRef> {
    let texts = call.args[0].as_string::<i32>();
    let out = texts
        .iter()
        .map(|t| {
            t.map(|t| match parse(t) {
                Ok(v) => Ok(to_text(&v, true)),
                Err(_) => exec_err!("Cannot convert '{t}' to JSON"),
            })
            .transpose()
        })
        .collect::<Result<StringArray>>()?;
    Ok(Arc::new(out))
}

fn json_format(call: &Call) -> Result<ArrayRef> {
    let texts = call.args[0].as_string::<i32>();
    let out = texts
        .iter()
        .map(|t| {
            t.map(|t| match parse(t) {
                Ok(v) => Ok(to_text(&v, false)),
                Err(_) => exec_err!("Invalid JSON value: {t}"),
            })
            .transpose()
        })
        .collect::<Result<StringArray>>()?;
    Ok(Arc::new(out))
}

fn is_json_scalar(call: &Call) -> Result<ArrayRef> {
    let texts = call.args[0].as_string::<i32>();
    let out = texts
        .iter()
        .map(|t| {
            t.map(|t| match parse(t) {
                Ok(Json::Array(_) | Json::Object(_)) => Ok(false),
                Ok(_) => Ok(true),
                Err(_) => exec_err!("Invalid JSON value: {t}"),
            })
            .transpose()
        })
        .collect::<Result<BooleanArray>>()?;
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_java_does() {
        let cases = [
            ("1.50", "1.5"),
            ("1e2", "100.0"),
            ("0.0001", "1.0E-4"),
            ("12345678.9", "1.23456789E7"),
            ("-0.001", "-0.001"),
            ("-0", "0"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
        ];
        for (raw, java) in cases {
            assert_eq!(canonical_number(raw), java, "{raw}");
        }
    }

    #[test]
    fn paths_follow_trinos_tokenizer() {
        assert_eq!(
            parse_path("$.store.book[0][\"a \\\"b\"]").unwrap(),
            ["store", "book", "0", "a \"b"]
        );
        assert_eq!(parse_path("$").unwrap(), Vec::<String>::new());
        for bad in ["", "a", "$.", "$[]", "$[*]", "$.a b", "$[\"a\\x\"]"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_strictly() {
        assert_eq!(
            to_text(
                &parse(r#" {"b": [1, 2.50, "x\u00e9\n"], "a": null, "b": true} "#).unwrap(),
                true
            ),
            r#"{"a":null,"b":true}"#
        );
        for bad in ["", "01", "[1,]", "{'a':1}", "[1] x", "\"\t\"", "nul"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
