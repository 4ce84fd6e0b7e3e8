//! Reading Parquet footers: exactly the footer, in one or two suffix reads.

use std::sync::Arc;

use bytes::Bytes;
use object_store::{ObjectMeta, ObjectStore};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

/// Larger Parquet footers (thousands of row groups or columns) are not kept in bookmarks.
pub const KEPT_FOOTER_BYTES: usize = 256 << 10;

/// A Parquet footer as read from the end of an object.
#[derive(Debug, Clone)]
pub struct ParquetFooter {
    pub metadata: ParquetMetaData,
    /// The thrift-encoded metadata, without the 8-byte trailer.
    pub raw: Bytes,
}

impl ParquetFooter {
    /// Bytes the footer occupies at the end of the object (metadata plus trailer).
    pub fn len_at_end(&self) -> u64 {
        self.raw.len() as u64 + 8
    }
}

/// Read a Parquet object's footer and nothing else: one suffix read of up to 64 KiB, and a
/// second one when the footer is larger. Errors say what is wrong with the object.
pub async fn read_parquet_footer(
    store: &Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
) -> Result<ParquetFooter, String> {
    const GUESS: u64 = 64 * 1024;
    let size = meta.size;
    let read = |range: std::ops::Range<u64>| async move {
        crate::read_range(store, meta, range)
            .await
            .map_err(|e| format!("cannot read the Parquet footer: {e}"))
    };
    let invalid = |why: String| format!("not a valid Parquet file: {why}");
    if size < 12 {
        return Err(invalid(format!("only {size} bytes")));
    }
    let changed = || {
        "the object changed while its footer was read (fewer bytes than listed); read it again"
            .to_string()
    };
    let mut tail = read(size - size.min(GUESS)..size).await?;
    let n = tail.len();
    if n < 12 {
        return Err(changed());
    }
    if &tail[n - 4..] != b"PAR1" {
        return Err(invalid(
            "no PAR1 magic at the end (truncated or still being written?)".into(),
        ));
    }
    let footer_len =
        u32::from_le_bytes([tail[n - 8], tail[n - 7], tail[n - 6], tail[n - 5]]) as u64;
    let needed = footer_len + 8;
    if needed + 4 > size {
        return Err(invalid(format!(
            "footer length {footer_len} exceeds the file size {size}"
        )));
    }
    if needed > n as u64 {
        tail = read(size - needed..size).await?;
    }
    let n = tail.len();
    if (n as u64) < needed {
        return Err(changed());
    }
    let raw = tail.slice(n - needed as usize..n - 8);
    let metadata =
        ParquetMetaDataReader::decode_metadata(&raw).map_err(|e| invalid(e.to_string()))?;
    Ok(ParquetFooter { metadata, raw })
}

/// What a bookmark keeps in place of a footer too large to keep: its statistics, per row group
/// (rows, and each column's min, max and null count), as one Arrow IPC batch after this magic.
/// Enough for the planner to estimate a table whatever the size of its footers; the scan still
/// reads the footer itself to read the file.
pub const STATISTICS_MAGIC: &[u8; 8] = b"QSTATS1\n";

/// The statistics stand-in ([`STATISTICS_MAGIC`]) of a footer: `None` when nothing can be
/// taken from it. `schema` is the file's Arrow schema.
pub fn statistics_blob(md: &ParquetMetaData, schema: &arrow::datatypes::Schema) -> Option<Bytes> {
    use arrow::array::{ArrayRef, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::statistics::StatisticsConverter;

    let groups = md.row_groups();
    let parquet_schema = md.file_metadata().schema_descr();
    let rows: UInt64Array = groups.iter().map(|g| g.num_rows().max(0) as u64).collect();
    let mut fields = vec![Field::new("rows", DataType::UInt64, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(rows)];
    for field in schema.fields() {
        let Ok(converter) = StatisticsConverter::try_new(field.name(), schema, parquet_schema)
        else {
            continue;
        };
        let (Ok(min), Ok(max), Ok(nulls)) = (
            converter.row_group_mins(groups.iter()),
            converter.row_group_maxes(groups.iter()),
            converter.row_group_null_counts(groups.iter()),
        ) else {
            continue;
        };
        let name = field.name();
        fields.push(Field::new(
            format!("min:{name}"),
            min.data_type().clone(),
            true,
        ));
        columns.push(min);
        fields.push(Field::new(
            format!("max:{name}"),
            max.data_type().clone(),
            true,
        ));
        columns.push(max);
        fields.push(Field::new(format!("nulls:{name}"), DataType::UInt64, true));
        columns.push(Arc::new(nulls));
    }
    let batch =
        arrow::record_batch::RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).ok()?;
    let mut out = STATISTICS_MAGIC.to_vec();
    let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).ok()?;
    writer.write(&batch).ok()?;
    writer.finish().ok()?;
    drop(writer);
    Some(Bytes::from(out))
}

/// The per-row-group statistics of a [`statistics_blob`]; `None` for anything else (a real
/// footer, damaged bytes).
pub fn read_statistics_blob(bytes: &[u8]) -> Option<arrow::record_batch::RecordBatch> {
    let body = bytes.strip_prefix(STATISTICS_MAGIC.as_slice())?;
    let mut reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None).ok()?;
    reader.next()?.ok()
}
