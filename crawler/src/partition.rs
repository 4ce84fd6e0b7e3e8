//! Hive-style partition folders (`key=value`) and unnamed folders (`partition_0..n`).

use percent_encoding::percent_decode_str;

/// The value Hive writes for a NULL partition value.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// One folder between a table root and its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// `key=value`, both URL-decoded; `None` for `__HIVE_DEFAULT_PARTITION__`.
    Hive { key: String, value: Option<String> },
    /// A plain folder name, which becomes the value of `partition_N`.
    Plain(String),
}

impl Segment {
    pub fn parse(folder: &str) -> Self {
        match folder.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                let value = decode(v);
                Segment::Hive {
                    key: decode(k).to_ascii_lowercase(),
                    value: (value != HIVE_DEFAULT_PARTITION).then_some(value),
                }
            }
            _ => Segment::Plain(decode(folder)),
        }
    }

    /// The partition key name at depth `index`.
    pub fn key(&self, index: usize) -> String {
        match self {
            Segment::Hive { key, .. } => key.clone(),
            Segment::Plain(_) => format!("partition_{index}"),
        }
    }

    pub fn value(&self) -> Option<&str> {
        match self {
            Segment::Hive { value, .. } => value.as_deref(),
            Segment::Plain(v) => Some(v),
        }
    }

    pub fn is_hive(&self) -> bool {
        matches!(self, Segment::Hive { .. })
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The Hive type of a partition column, inferred over all its values: `int`, `bigint`, `date`
/// or `string`. NULLs do not vote; a column of only NULLs is `string`.
pub fn infer_type<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> &'static str {
    let (mut int, mut bigint, mut date, mut any) = (true, true, true, false);
    for v in values.into_iter().flatten() {
        any = true;
        int &= v.parse::<i32>().is_ok();
        bigint &= v.parse::<i64>().is_ok();
        date &= is_date(v);
    }
    match () {
        _ if !any => "string",
        _ if int => "int",
        _ if bigint => "bigint",
        _ if date => "date",
        _ => "string",
    }
}

fn is_date(v: &str) -> bool {
    v.len() == 10 && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hive_and_plain_segments() {
        assert_eq!(
            Segment::parse("region=eu%20west"),
            Segment::Hive {
                key: "region".into(),
                value: Some("eu west".into())
            }
        );
        assert_eq!(
            Segment::parse("dt=__HIVE_DEFAULT_PARTITION__"),
            Segment::Hive {
                key: "dt".into(),
                value: None
            }
        );
        assert_eq!(Segment::parse("2024"), Segment::Plain("2024".into()));
        assert_eq!(Segment::parse("=x"), Segment::Plain("=x".into()));
        assert_eq!(Segment::parse("k=a=b").value(), Some("a=b"));
        assert_eq!(Segment::parse("2024").key(2), "partition_2");
    }

    #[test]
    fn infers_partition_types_over_all_values() {
        assert_eq!(infer_type([Some("1"), Some("12"), None]), "int");
        assert_eq!(infer_type([Some("1"), Some("30000000000")]), "bigint");
        assert_eq!(infer_type([Some("2024-01-01"), Some("2024-02-29")]), "date");
        assert_eq!(
            infer_type([Some("2024-01-01"), Some("2023-02-29")]),
            "string"
        );
        assert_eq!(infer_type([Some("1"), Some("x")]), "string");
        assert_eq!(infer_type([None, None]), "string");
    }
}
