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
