//! Per-table and per-partition statistics as the catalog keeps them (Glue's `objectCount`,
//! `sizeKey`, `recordCount`, `averageRecordSize`), shared by the crawler and the writer so both
//! keep them the same way.

use quarry_catalog::{Parameters, keys};

/// Per-table and per-partition statistics, kept as Glue parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub objects: i64,
    pub bytes: i64,
    pub rows: i64,
    /// Objects whose row count is unknown; `recordCount` is only published when zero.
    pub unknown_rows: i64,
}

const UNKNOWN_ROWS: &str = "quarry.objectsWithUnknownRowCount";
const KNOWN_ROWS: &str = "quarry.knownRowCount";

impl Stats {
    pub fn of(bytes: u64, rows: Option<u64>, objects: i64) -> Self {
        Self {
            objects,
            bytes: bytes as i64,
            rows: rows.unwrap_or(0) as i64,
            unknown_rows: i64::from(rows.is_none()),
        }
    }

    pub fn add(&mut self, o: &Self) {
        self.objects += o.objects;
        self.bytes += o.bytes;
        self.rows += o.rows;
        self.unknown_rows += o.unknown_rows;
    }

    pub fn sub(&mut self, o: &Self) {
        self.objects -= o.objects;
        self.bytes -= o.bytes;
        self.rows -= o.rows;
        self.unknown_rows -= o.unknown_rows;
    }

    pub fn read(p: &Parameters) -> Self {
        let get = |k: &str| p.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        Self {
            objects: get(keys::OBJECT_COUNT),
            bytes: get(keys::SIZE_KEY),
            // Tables catalogued by Glue's crawler or Athena have `recordCount` only.
            rows: p
                .get(KNOWN_ROWS)
                .or_else(|| p.get(keys::RECORD_COUNT))
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0),
            unknown_rows: get(UNKNOWN_ROWS),
        }
    }

    pub fn write(&self, p: &mut Parameters) {
        p.insert(keys::OBJECT_COUNT.into(), self.objects.max(0).to_string());
        p.insert(keys::SIZE_KEY.into(), self.bytes.max(0).to_string());
        p.insert(KNOWN_ROWS.into(), self.rows.max(0).to_string());
        if self.unknown_rows > 0 {
            p.insert(UNKNOWN_ROWS.into(), self.unknown_rows.to_string());
            p.remove(keys::RECORD_COUNT);
            p.remove(keys::AVERAGE_RECORD_SIZE);
        } else {
            p.remove(UNKNOWN_ROWS);
            p.insert(keys::RECORD_COUNT.into(), self.rows.max(0).to_string());
            if self.rows > 0 {
                p.insert(
                    keys::AVERAGE_RECORD_SIZE.into(),
                    (self.bytes / self.rows).to_string(),
                );
            }
        }
    }
}
