//! The Hive path codec: partition folders (`key=value`, values escaped as Hive escapes them,
//! NULL as `__HIVE_DEFAULT_PARTITION__`) and unnamed folders (`partition_0..n`).

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

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

/// Undo Hive's escaping of a folder name (`eu%20west` -> `eu west`).
pub fn unescape(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn decode(s: &str) -> String {
    unescape(s)
}

/// The characters Hive escapes in partition folder names (`FileUtils.escapePathName`).
const HIVE_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'\'')
    .add(b'*')
    .add(b'/')
    .add(b':')
    .add(b'=')
    .add(b'?')
    .add(b'\\')
    .add(b'{')
    .add(b'[')
    .add(b']')
    .add(b'^');

/// Escape a partition value (or key) for a folder name, as Hive does: only the ASCII
/// characters of its list become `%XX`; other characters stay as they are (`café` stays `café`,
/// which Hive and Athena read back; UTF-8 bytes as `%C3%A9` they would not).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut buf = [0u8; 4];
    for c in value.chars() {
        if c.is_ascii() {
            out.extend(utf8_percent_encode(c.encode_utf8(&mut buf), HIVE_ESCAPE));
        } else {
            out.push(c);
        }
    }
    out
}

/// The folder of a partition below its table, `k1=v1/k2=v2/` (escaped; NULL as
/// [`HIVE_DEFAULT_PARTITION`]).
pub fn partition_path<K: AsRef<str>>(keys: &[K], values: &[Option<String>]) -> String {
    keys.iter()
        .zip(values)
        .map(|(k, v)| {
            let v = v
                .as_deref()
                .map_or_else(|| HIVE_DEFAULT_PARTITION.to_string(), escape);
            format!("{}={v}/", escape(k.as_ref()))
        })
        .collect()
}

/// A partition as people read it, `k1=v1/k2=v2` (unescaped; NULL as
/// [`HIVE_DEFAULT_PARTITION`]), as `SHOW PARTITIONS` prints it.
pub fn partition_label<K: AsRef<str>>(keys: &[K], values: &[Option<String>]) -> String {
    keys.iter()
        .zip(values)
        .map(|(k, v)| {
            format!(
                "{}={}",
                k.as_ref(),
                v.as_deref().unwrap_or(HIVE_DEFAULT_PARTITION)
            )
        })
        .collect::<Vec<_>>()
        .join("/")
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
    fn escapes_partition_values_as_hive_does() {
        assert_eq!(escape("eu west/1:2=3"), "eu%20west%2F1%3A2%3D3");
        assert_eq!(escape("2024-01-02"), "2024-01-02");
        assert_eq!(escape("café 50%"), "café%2050%25");
        assert_eq!(Segment::parse("k=café%2050%25").value(), Some("café 50%"));
        let values = [Some("eu west".to_string()), None];
        let path = partition_path(&["region", "dt"], &values);
        assert_eq!(path, "region=eu%20west/dt=__HIVE_DEFAULT_PARTITION__/");
        let back: Vec<_> = path
            .trim_end_matches('/')
            .split('/')
            .map(|s| Segment::parse(s).value().map(str::to_string))
            .collect();
        assert_eq!(back, values);
        assert_eq!(
            partition_label(&["region", "dt"], &values),
            "region=eu west/dt=__HIVE_DEFAULT_PARTITION__"
        );
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
