//! Classify one object by its content and infer its schema from a bounded sample.
//!
//! Classification never trusts the extension: Parquet is recognised by its `PAR1` magic and read
//! from the footer only; gzip, bzip2, xz and zstd by their magic bytes; the decompressed text is
//! JSON lines when it starts with `{`, and CSV/TSV otherwise (binary data is reported).

use std::io::Read;
use std::sync::Arc;

use quarry_lake::format::delimiter_name;
use quarry_lake::{Compression, CsvDialect, FileFormat, KEPT_FOOTER_BYTES, read_parquet_footer};

use arrow_schema::{DataType, Field};
use bytes::Bytes;
use object_store::{ObjectMeta, ObjectStore};
use parquet::arrow::parquet_to_arrow_schema;

use crate::schema::{finalize, infer_text, merge_fields, widen};

/// Bytes read from the start of a text object (and produced by decompression) for inference.
pub const SAMPLE_BYTES: usize = 1 << 20;
/// Records examined per text object.
pub const SAMPLE_RECORDS: usize = 2_000;

/// What inspecting one object found.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspected {
    pub format: FileFormat,
    /// Compression of the object (for Parquet: the codec of its first column chunk).
    pub compression: String,
    pub fields: Vec<Field>,
    /// Exact row count where cheaply known: Parquet footers, or text read to its end.
    pub rows: Option<u64>,
    /// CSV whose sample has quoted fields (Glue's `areColumnsQuoted`; catalogued with
    /// OpenCSVSerde so Athena and Spark honour the quotes).
    pub quoted: bool,
    /// A Parquet footer of at most [`KEPT_FOOTER_BYTES`], kept in the crawl's bookmark so queries
    /// do not read it again.
    pub footer: Option<Bytes>,
    /// Text that is not valid UTF-8 in the part read: inferred (and queried) with each invalid
    /// sequence read as U+FFFD, as Athena reads it.
    pub invalid_utf8: Option<InvalidUtf8>,
    /// A compressed object that expands at least [`BOMB_RATIO`] times (a gzip bomb, or just
    /// very repetitive data): inferred from its first [`SAMPLE_BYTES`], read by queries as a
    /// stream.
    pub expansion: Option<Expansion>,
}

/// Expansion from which a compressed object is reported.
pub const BOMB_RATIO: u64 = 100;

/// How much a compressed object expands (gzip's trailer records the size it decompresses to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expansion {
    pub compressed: u64,
    pub decompressed: u64,
}

impl std::fmt::Display for Expansion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "decompresses {}:1 ({} bytes to {}); the schema was inferred from its first {} \
             bytes, and queries read it as a stream",
            self.decompressed / self.compressed.max(1),
            self.compressed,
            self.decompressed,
            SAMPLE_BYTES
        )
    }
}

/// Where a text sample is not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8 {
    /// Invalid sequences in the part read (each becomes one U+FFFD).
    pub sequences: u64,
    /// 1-based line of the first one.
    pub first_line: u64,
}

impl std::fmt::Display for InvalidUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: not UTF-8 ({} invalid sequence(s) in the part inspected); queries read \
             each as U+FFFD (the replacement character), as Athena does",
            self.first_line, self.sequences
        )
    }
}

/// `text` with each invalid UTF-8 sequence replaced by U+FFFD, and where they were; `None` for
/// valid UTF-8. A sequence cut by the end of an incomplete sample is dropped, not counted.
fn repair_utf8(text: &[u8], complete: bool) -> Option<(Vec<u8>, InvalidUtf8)> {
    if std::str::from_utf8(text).is_ok() {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() + 16);
    let mut found = InvalidUtf8 {
        sequences: 0,
        first_line: 0,
    };
    let mut lines = 1u64;
    let mut chunks = text.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        let valid = chunk.valid();
        out.extend_from_slice(valid.as_bytes());
        lines += valid.bytes().filter(|b| *b == b'\n').count() as u64;
        let invalid = chunk.invalid();
        if invalid.is_empty() {
            continue;
        }
        let last = chunks.peek().is_none();
        if last && !complete && std::str::from_utf8(invalid).is_err_and(|e| e.error_len().is_none())
        {
            break;
        }
        if found.sequences == 0 {
            found.first_line = lines;
        }
        found.sequences += 1;
        out.extend_from_slice("\u{FFFD}".as_bytes());
    }
    // Only a character cut by the end of the sample: the text itself is fine.
    (found.sequences > 0).then_some((out, found))
}

/// Why an object could not be inspected.
#[derive(Debug, Clone, PartialEq)]
pub enum InspectError {
    /// No data: zero bytes, or a compressed stream that decompresses to nothing.
    Empty,
    /// The object is damaged or not in a format Quarry reads; the text says where and why.
    Unreadable(String),
}

impl From<String> for InspectError {
    fn from(s: String) -> Self {
        Self::Unreadable(s)
    }
}

/// Inspect one object: read its head (or Parquet footer), classify it, infer its schema.
pub async fn inspect(
    store: &Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
) -> Result<Inspected, InspectError> {
    if meta.size == 0 {
        return Err(InspectError::Empty);
    }
    let len = meta.size.min(SAMPLE_BYTES as u64);
    let head = quarry_lake::read_range(store, meta, 0..len)
        .await
        .map_err(|e| format!("cannot read: {e}"))?;
    if head.starts_with(b"PAR1") {
        return inspect_parquet(store, meta).await;
    }
    let whole = len == meta.size;
    let compression = Compression::detect(&head);
    let (text, complete) = decompress_sample(compression, &head, whole)?;
    if text.is_empty() {
        return Err(InspectError::Empty);
    }
    let mut inspected = inspect_text(&text, complete)?;
    inspected.compression = compression.as_str().to_string();
    if compression == Compression::Gzip && !complete {
        inspected.expansion = gzip_expansion(store, meta, &head, whole).await;
    }
    Ok(inspected)
}

/// A gzip object's expansion, from the size its trailer records (the last member's size, modulo
/// 2^32: a lower bound for multi-member or larger objects), when it reaches [`BOMB_RATIO`].
async fn gzip_expansion(
    store: &Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
    head: &[u8],
    whole: bool,
) -> Option<Expansion> {
    let trailer = if whole {
        head.get(head.len().checked_sub(4)?..)?.to_vec()
    } else {
        quarry_lake::read_range(store, meta, meta.size.checked_sub(4)?..meta.size)
            .await
            .ok()?
            .to_vec()
    };
    let decompressed = u64::from(u32::from_le_bytes(trailer.try_into().ok()?));
    (decompressed >= meta.size.saturating_mul(BOMB_RATIO)).then_some(Expansion {
        compressed: meta.size,
        decompressed,
    })
}

/// Decompress at most [`SAMPLE_BYTES`] of `raw`. Returns the text and whether it is the whole
/// object's content. A decoding error is corruption only when `raw` is the whole object.
fn decompress_sample(
    compression: Compression,
    raw: &[u8],
    whole: bool,
) -> Result<(Vec<u8>, bool), InspectError> {
    if compression == Compression::None {
        return Ok((raw.to_vec(), whole));
    }
    let corrupt = |e: std::io::Error| format!("{} data is corrupt: {e}", compression.as_str());
    let mut out = Vec::new();
    let mut decoder = compression.decoder(raw).map_err(corrupt)?;
    let limit = SAMPLE_BYTES as u64 + 1;
    match decoder.by_ref().take(limit).read_to_end(&mut out) {
        Ok(_) if out.len() as u64 == limit => {
            out.truncate(SAMPLE_BYTES);
            Ok((out, false))
        }
        Ok(_) => Ok((out, whole)),
        Err(e) if whole => Err(corrupt(e).into()),
        // The sample ends mid-stream: what was decoded so far is a valid prefix.
        Err(_) => Ok((out, false)),
    }
}

async fn inspect_parquet(
    store: &Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
) -> Result<Inspected, InspectError> {
    let footer = read_parquet_footer(store, meta).await?;
    let md = &footer.metadata;
    let invalid =
        |why: String| InspectError::Unreadable(format!("not a valid Parquet file: {why}"));
    let file = md.file_metadata();
    let schema = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
        .map_err(|e| invalid(e.to_string()))?;
    let compression = md
        .row_groups()
        .first()
        .and_then(|rg| rg.columns().first())
        .map(|c| c.compression().to_string().to_ascii_lowercase())
        .unwrap_or_else(|| "none".into());
    let compression = match compression.split('(').next() {
        Some("uncompressed") | None => "none".to_string(),
        Some(c) => c.to_string(),
    };
    let fields = schema
        .fields()
        .iter()
        .map(|f| Field::new(f.name(), f.data_type().clone(), true))
        .collect();
    Ok(Inspected {
        format: FileFormat::Parquet,
        compression,
        fields,
        rows: Some(file.num_rows().max(0) as u64),
        quoted: false,
        // A footer too large to keep leaves its statistics, so the planner still knows the
        // file's size and value ranges.
        footer: if footer.raw.len() <= KEPT_FOOTER_BYTES {
            Some(footer.raw.clone())
        } else {
            quarry_lake::footer::statistics_blob(md, &schema)
        },
        invalid_utf8: None,
        expansion: None,
    })
}

/// Classify and infer decompressed text. `complete` says whether `text` is the whole content
/// (otherwise its last, possibly cut, record is ignored).
pub fn inspect_text(text: &[u8], complete: bool) -> Result<Inspected, InspectError> {
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    // UTF-16 / UTF-32 text (by its byte-order mark) would otherwise read as binary.
    for (mark, encoding) in [
        (&b"\xff\xfe\x00\x00"[..], "UTF-32 (little-endian)"),
        (&b"\x00\x00\xfe\xff"[..], "UTF-32 (big-endian)"),
        (&b"\xff\xfe"[..], "UTF-16 (little-endian)"),
        (&b"\xfe\xff"[..], "UTF-16 (big-endian)"),
    ] {
        if text.starts_with(mark) {
            return Err(InspectError::Unreadable(format!(
                "{encoding} text (by its byte-order mark); Quarry reads UTF-8: convert it, \
                 e.g. iconv -f {} -t UTF-8",
                encoding.split(' ').next().unwrap_or("UTF-16")
            )));
        }
    }
    let probe = &text[..text.len().min(8192)];
    if probe.contains(&0) {
        return Err(InspectError::Unreadable(
            "binary data in no format Quarry reads (expected Parquet, CSV/TSV or JSON lines)"
                .into(),
        ));
    }
    let repaired = repair_utf8(text, complete);
    let (text, invalid_utf8) = match &repaired {
        Some((fixed, found)) => (&fixed[..], Some(*found)),
        None => (text, None),
    };
    let mut inspected = match text.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(InspectError::Empty),
        Some(b'{') => infer_json(text, complete)?,
        Some(b'[') => return Err(InspectError::Unreadable(
            "a JSON array document; Quarry reads JSON lines (one object per line): convert it with `jq -c '.[]'`".into(),
        )),
        Some(_) => infer_csv(text, complete)?,
    };
    inspected.invalid_utf8 = invalid_utf8;
    Ok(inspected)
}

fn infer_json(text: &[u8], complete: bool) -> Result<Inspected, String> {
    let mut fields: Vec<Field> = Vec::new();
    let mut rows = 0u64;
    let stream = serde_json::Deserializer::from_slice(text).into_iter::<serde_json::Value>();
    for value in stream {
        let value = match value {
            Ok(v) => v,
            // A sample cut mid-record: everything before it was fine.
            Err(e) if !complete && e.is_eof() => break,
            Err(e) => return Err(format!("line {}: invalid JSON: {e}", e.line())),
        };
        let serde_json::Value::Object(map) = &value else {
            return Err(format!(
                "record {}: expected a JSON object per line, found {}",
                rows + 1,
                json_kind(&value)
            ));
        };
        rows += 1;
        let row: Vec<Field> = map
            .iter()
            .map(|(k, v)| Field::new(k, json_type(v), true))
            .collect();
        fields = merge_fields(&fields.into(), &row.into());
        if rows as usize >= SAMPLE_RECORDS && !complete {
            break;
        }
    }
    Ok(Inspected {
        format: FileFormat::Json,
        compression: String::new(),
        fields: fields
            .iter()
            .map(|f| Field::new(f.name(), finalize(f.data_type()), true))
            .collect(),
        rows: complete.then_some(rows),
        quoted: false,
        footer: None,
        invalid_utf8: None,
        expansion: None,
    })
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn json_type(v: &serde_json::Value) -> DataType {
    use serde_json::Value;
    match v {
        Value::Null => DataType::Null,
        Value::Bool(_) => DataType::Boolean,
        Value::Number(n) if n.is_i64() => DataType::Int64,
        Value::Number(_) => DataType::Float64,
        Value::String(_) => DataType::Utf8,
        Value::Array(items) => {
            let element = items
                .iter()
                .fold(DataType::Null, |acc, i| widen(&acc, &json_type(i)));
            DataType::List(Arc::new(Field::new("item", element, true)))
        }
        Value::Object(map) => DataType::Struct(
            map.iter()
                .map(|(k, v)| Field::new(k, json_type(v), true))
                .collect::<Vec<_>>()
                .into(),
        ),
    }
}

const DELIMITERS: [u8; 4] = [b',', b'\t', b'|', b';'];

struct Records {
    /// (1-based line where the record starts, fields)
    rows: Vec<(u64, Vec<String>)>,
}

fn parse_records(text: &[u8], delimiter: u8, complete: bool) -> Result<Records, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .quote(b'"')
        .from_reader(text);
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                // Invalid UTF-8 is only tolerated in the last record of a cut sample.
                let fields = record
                    .iter()
                    .map(|f| std::str::from_utf8(f).map(str::to_string))
                    .collect::<Result<Vec<_>, _>>();
                match fields {
                    Ok(f) => rows.push((line, f)),
                    Err(_) if !complete => break,
                    Err(_) => return Err(format!("line {line}: not UTF-8 text")),
                }
                if rows.len() > SAMPLE_RECORDS {
                    break;
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(format!("line {line}: {e}"));
            }
        }
    }
    // The last record of a cut sample may itself be cut.
    if !complete || rows.len() > SAMPLE_RECORDS {
        rows.pop();
    }
    Ok(Records { rows })
}

fn mode(counts: impl Iterator<Item = usize>) -> (usize, usize) {
    let mut freq = std::collections::BTreeMap::new();
    let mut total = 0;
    for c in counts {
        *freq.entry(c).or_insert(0usize) += 1;
        total += 1;
    }
    let best = freq
        .into_iter()
        .max_by_key(|(c, n)| (*n, *c))
        .map_or(0, |(c, _)| c);
    (best, total)
}

/// Pick the delimiter whose records have the most consistent field count (more than one).
fn sniff_delimiter(text: &[u8], complete: bool) -> Result<(u8, Records, usize), String> {
    let mut best: Option<(f64, usize, u8, Records)> = None;
    let mut first_err = None;
    for d in DELIMITERS {
        let records = match parse_records(text, d, complete) {
            Ok(r) => r,
            Err(e) => {
                first_err.get_or_insert(e);
                continue;
            }
        };
        let (m, total) = mode(records.rows.iter().map(|(_, f)| f.len()));
        if m < 2 || total == 0 {
            continue;
        }
        let consistent =
            records.rows.iter().filter(|(_, f)| f.len() == m).count() as f64 / total as f64;
        let better = match &best {
            None => true,
            Some((c, bm, _, _)) => consistent > *c || (consistent == *c && m > *bm),
        };
        if better {
            best = Some((consistent, m, d, records));
        }
    }
    match best {
        Some((_, m, d, records)) => Ok((d, records, m)),
        None => match first_err {
            Some(e) => Err(e),
            // One column: every delimiter sees a single field per record.
            None => {
                let records = parse_records(text, b',', complete)?;
                Ok((b',', records, 1))
            }
        },
    }
}

fn looks_like_name(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | ' ' | '-' | '.'))
}

/// Header detection: the first record is a header when its cells are distinct non-empty text
/// and either some column's data has a non-text type that the first cell does not fit, or
/// (all-text data) every first cell looks like a name and none recurs in its column.
fn detect_header(first: &[String], data: &[(u64, Vec<String>)], types: &[DataType]) -> bool {
    if data.is_empty() {
        return false;
    }
    let distinct: std::collections::HashSet<&str> = first.iter().map(|s| s.trim()).collect();
    if distinct.len() != first.len() || first.iter().any(|s| s.trim().is_empty()) {
        return false;
    }
    let typed_mismatch = first.iter().zip(types).any(|(cell, t)| {
        !matches!(t, DataType::Utf8 | DataType::Null) && widen(t, &infer_text(cell)) != *t
    });
    if typed_mismatch {
        return true;
    }
    let all_text = types
        .iter()
        .all(|t| matches!(t, DataType::Utf8 | DataType::Null));
    all_text
        && first.iter().all(|s| looks_like_name(s))
        && first.iter().enumerate().all(|(i, name)| {
            data.iter()
                .all(|(_, row)| row.get(i).is_none_or(|v| v.trim() != name.trim()))
        })
}

fn column_types<'a>(rows: impl Iterator<Item = &'a Vec<String>>, width: usize) -> Vec<DataType> {
    let mut types = vec![DataType::Null; width];
    for row in rows {
        for (t, cell) in types.iter_mut().zip(row) {
            *t = widen(t, &infer_text(cell));
        }
    }
    types
}

fn infer_csv(text: &[u8], complete: bool) -> Result<Inspected, String> {
    let (delimiter, records, width) = sniff_delimiter(text, complete)?;
    if let Some((line, f)) = records.rows.iter().find(|(_, f)| f.len() != width) {
        return Err(format!(
            "line {line}: expected {width} fields (delimiter {}), found {}",
            delimiter_name(delimiter),
            f.len()
        ));
    }
    let Some(((_, first), data)) = records.rows.split_first() else {
        return Err("no complete record in the first MiB".into());
    };
    let data_types = column_types(data.iter().map(|(_, r)| r), width);
    let header = detect_header(first, data, &data_types);
    let (names, types): (Vec<String>, Vec<DataType>) = if header {
        let mut seen = std::collections::HashSet::new();
        let names = first
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let n = n.trim().to_string();
                if seen.insert(n.clone()) {
                    n
                } else {
                    format!("col{i}")
                }
            })
            .collect();
        (names, data_types)
    } else {
        let all = column_types(records.rows.iter().map(|(_, r)| r), width);
        ((0..width).map(|i| format!("col{i}")).collect(), all)
    };
    let rows = records.rows.len() as u64 - u64::from(header);
    Ok(Inspected {
        format: FileFormat::Csv(CsvDialect {
            delimiter,
            quote: b'"',
            header,
        }),
        compression: String::new(),
        fields: names
            .into_iter()
            .zip(types)
            .map(|(n, t)| Field::new(n, finalize(&t), true))
            .collect(),
        rows: complete.then_some(rows),
        quoted: text.contains(&b'"'),
        footer: None,
        invalid_utf8: None,
        expansion: None,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn csv(text: &str) -> Inspected {
        inspect_text(text.as_bytes(), true).expect(text)
    }

    fn names(i: &Inspected) -> Vec<&str> {
        i.fields.iter().map(|f| f.name().as_str()).collect()
    }

    fn dialect(i: &Inspected) -> CsvDialect {
        match i.format {
            FileFormat::Csv(d) => d,
            other => panic!("not csv: {other:?}"),
        }
    }

    #[test]
    fn sniffs_delimiters() {
        for d in [",", "\t", "|", ";"] {
            let text = format!("id{d}name{d}price\n1{d}a{d}1.5\n2{d}b{d}2\n");
            let i = csv(&text);
            assert_eq!(dialect(&i).delimiter, d.as_bytes()[0], "{d}");
            assert_eq!(names(&i), ["id", "name", "price"]);
            assert_eq!(i.fields[2].data_type(), &DataType::Float64);
        }
    }

    #[test]
    fn quoted_delimiters_and_newlines_do_not_confuse_the_sniffer() {
        let i = csv(
            "id,comment,amount\n1,\"hello, world\",3\n2,\"line one\nline two; still\",4\n3,plain,5\n",
        );
        assert_eq!(dialect(&i).delimiter, b',');
        assert_eq!(i.rows, Some(3));
        assert_eq!(i.fields[2].data_type(), &DataType::Int64);
    }

    #[test]
    fn detects_header_presence() {
        assert!(dialect(&csv("a,b\n1,2\n3,4\n")).header);
        let no = csv("1,2\n3,4\n");
        assert!(!dialect(&no).header);
        assert_eq!(names(&no), ["col0", "col1"]);
        assert_eq!(no.rows, Some(2));
        // all-text data: names that never recur in their column
        assert!(dialect(&csv("city,country\nParis,France\nLyon,France\n")).header);
        assert!(!dialect(&csv("Paris,France\nLyon,France\nParis,Spain\n")).header);
        // a first row with an empty cell is data
        assert!(!dialect(&csv("x,\n1,2\n")).header);
    }

    #[test]
    fn headerless_tsv_types_include_the_first_row() {
        let i = csv("2024-01-15 10:00:00\tINFO\t12\n2024-01-15 10:00:01\tWARN\t7\n");
        assert_eq!(dialect(&i).delimiter, b'\t');
        assert!(!dialect(&i).header);
        assert_eq!(
            i.fields[0].data_type(),
            &DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, None)
        );
        assert_eq!(i.fields[2].data_type(), &DataType::Int64);
    }

    #[test]
    fn ragged_rows_name_the_line() {
        let err = inspect_text(b"a,b,c,d\n1,2,3,4\n5,6,7,8\n9,10\n", true).unwrap_err();
        assert_eq!(
            err,
            InspectError::Unreadable("line 4: expected 4 fields (delimiter ','), found 2".into())
        );
    }

    #[test]
    fn json_lines_nested_and_merged() {
        let text = b"{\"id\":1,\"user\":{\"name\":\"a\"},\"tags\":[\"x\"]}\n{\"id\":2.5,\"user\":{\"age\":3},\"extra\":null}\n";
        let i = inspect_text(text, true).unwrap();
        assert_eq!(i.format, FileFormat::Json);
        assert_eq!(names(&i), ["id", "user", "tags", "extra"]);
        assert_eq!(i.fields[0].data_type(), &DataType::Float64);
        assert_eq!(
            quarry_catalog::types::to_hive(i.fields[1].data_type()),
            "struct<name:string,age:bigint>"
        );
        assert_eq!(
            quarry_catalog::types::to_hive(i.fields[2].data_type()),
            "array<string>"
        );
        assert_eq!(i.fields[3].data_type(), &DataType::Utf8);
        assert_eq!(i.rows, Some(2));
    }

    #[test]
    fn json_errors_name_the_line() {
        let err = inspect_text(b"{\"a\":1}\n{\"a\":2}\n{\"a\":\n", true).unwrap_err();
        assert!(
            matches!(&err, InspectError::Unreadable(m) if m.starts_with("line 4")),
            "{err:?}"
        );
        let err = inspect_text(b"{\"a\":1}\n[1,2]\n", true).unwrap_err();
        assert!(
            matches!(&err, InspectError::Unreadable(m) if m.contains("record 2")),
            "{err:?}"
        );
    }

    #[test]
    fn cut_samples_drop_their_last_record() {
        let i = inspect_text(b"a,b\n1,2\n3,4\n5,\"unfinished", false).unwrap();
        assert_eq!(i.rows, None);
        assert_eq!(i.fields[1].data_type(), &DataType::Int64);
        let j = inspect_text(b"{\"a\":1}\n{\"a\":2}\n{\"a\":", false).unwrap();
        assert_eq!(names(&j), ["a"]);
    }

    #[test]
    fn detects_compression_by_magic_and_decodes() {
        let text = b"a,b\n1,2\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text).unwrap();
        let gz = gz.finish().unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(text).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(text).unwrap();
        let xz = xz.finish().unwrap();
        let zs = zstd::stream::encode_all(&text[..], 3).unwrap();
        for (data, c) in [
            (gz, Compression::Gzip),
            (bz, Compression::Bzip2),
            (xz, Compression::Xz),
            (zs, Compression::Zstd),
        ] {
            assert_eq!(Compression::detect(&data), c);
            let (out, complete) = decompress_sample(c, &data, true).unwrap();
            assert_eq!(out, text);
            assert!(complete);
            // a truncated whole object is corrupt, a truncated sample is not
            let cut = &data[..data.len() - 6];
            assert!(decompress_sample(c, cut, true).is_err(), "{c:?}");
            assert!(decompress_sample(c, cut, false).is_ok(), "{c:?}");
        }
        assert_eq!(Compression::detect(b"a,b"), Compression::None);
    }

    #[test]
    fn binary_and_json_arrays_are_reported() {
        assert!(matches!(
            inspect_text(b"\x00\x01\x02abc", true),
            Err(InspectError::Unreadable(_))
        ));
        assert!(
            matches!(inspect_text(b"[{\"a\":1}]", true), Err(InspectError::Unreadable(m)) if m.contains("jq"))
        );
        assert_eq!(inspect_text(b"  \n ", true), Err(InspectError::Empty));
    }

    #[test]
    fn invalid_utf8_is_read_as_replacement_characters_and_reported() {
        let i = inspect_text(b"id,name\n1,ok\n2,caf\xE9\n3,\xFF\xFEx\n", true).unwrap();
        assert_eq!(i.rows, Some(3));
        assert_eq!(
            i.invalid_utf8,
            Some(InvalidUtf8 {
                sequences: 3,
                first_line: 3
            })
        );
        let j = inspect_text(b"{\"id\":1,\"s\":\"a\xC3\"}\n{\"id\":2}\n", true).unwrap();
        assert_eq!(j.invalid_utf8.map(|i| i.first_line), Some(1));
        // A character cut by the end of a sample is not an error.
        let k = inspect_text(b"id,name\n1,ok\n2,caf\xC3", false).unwrap();
        assert_eq!(k.invalid_utf8, None);
        assert!(
            inspect_text(b"id,name\n1,ok\n", true)
                .unwrap()
                .invalid_utf8
                .is_none()
        );
    }
}
