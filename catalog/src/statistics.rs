//! Column statistics, shaped like Glue's `ColumnStatistics` (what `ANALYZE` computes and the
//! planner reads): per column its null count, distinct estimate and value range or lengths.
//! Glue keeps them beside the table (`UpdateColumnStatisticsForTable` /
//! `GetColumnStatisticsForTable`); the embedded catalog keeps the same model.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The statistics of one column of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStatistics {
    /// The column's name (Glue's `ColumnName`).
    pub column: String,
    /// The column's type when it was analyzed (Glue's `ColumnType`): a reader compares it with
    /// the current type and ignores statistics of a column whose type has changed since.
    pub data_type: String,
    pub analyzed_time: DateTime<Utc>,
    pub data: StatisticsData,
}

/// A decimal value: `unscaled * 10^-scale` (Glue's `DecimalNumber`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecimalValue {
    /// Kept as text in JSON: 128-bit integers do not survive every JSON reader.
    #[serde(with = "i128_text")]
    pub unscaled: i128,
    pub scale: i32,
}

impl std::fmt::Display for DecimalValue {
    /// `-12.34` for unscaled -1234 at scale 2.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = self.unscaled.unsigned_abs().to_string();
        let scale = usize::try_from(self.scale).unwrap_or(0);
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        let sign = if self.unscaled < 0 { "-" } else { "" };
        if fraction.is_empty() {
            write!(f, "{sign}{whole}")
        } else {
            write!(f, "{sign}{whole}.{fraction}")
        }
    }
}

/// Glue's `ColumnStatisticsData`, one variant per statistics type. `nulls` counts NULLs;
/// `distinct` estimates the number of distinct non-NULL values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
pub enum StatisticsData {
    Boolean {
        nulls: u64,
        trues: u64,
        falses: u64,
    },
    Date {
        nulls: u64,
        distinct: u64,
        min: Option<NaiveDate>,
        max: Option<NaiveDate>,
    },
    Decimal {
        nulls: u64,
        distinct: u64,
        min: Option<DecimalValue>,
        max: Option<DecimalValue>,
    },
    Double {
        nulls: u64,
        distinct: u64,
        min: Option<f64>,
        max: Option<f64>,
    },
    Long {
        nulls: u64,
        distinct: u64,
        min: Option<i64>,
        max: Option<i64>,
    },
    String {
        nulls: u64,
        distinct: u64,
        max_length: u64,
        average_length: f64,
    },
    Binary {
        nulls: u64,
        max_length: u64,
        average_length: f64,
    },
}

impl StatisticsData {
    /// Glue's name of the statistics type (`LONG`, `STRING`, ..).
    pub fn kind(&self) -> &'static str {
        match self {
            StatisticsData::Boolean { .. } => "BOOLEAN",
            StatisticsData::Date { .. } => "DATE",
            StatisticsData::Decimal { .. } => "DECIMAL",
            StatisticsData::Double { .. } => "DOUBLE",
            StatisticsData::Long { .. } => "LONG",
            StatisticsData::String { .. } => "STRING",
            StatisticsData::Binary { .. } => "BINARY",
        }
    }

    pub fn nulls(&self) -> u64 {
        match self {
            StatisticsData::Boolean { nulls, .. }
            | StatisticsData::Date { nulls, .. }
            | StatisticsData::Decimal { nulls, .. }
            | StatisticsData::Double { nulls, .. }
            | StatisticsData::Long { nulls, .. }
            | StatisticsData::String { nulls, .. }
            | StatisticsData::Binary { nulls, .. } => *nulls,
        }
    }

    /// The distinct estimate, for the types that have one (a boolean has at most 2).
    pub fn distinct(&self) -> Option<u64> {
        match self {
            StatisticsData::Date { distinct, .. }
            | StatisticsData::Decimal { distinct, .. }
            | StatisticsData::Double { distinct, .. }
            | StatisticsData::Long { distinct, .. }
            | StatisticsData::String { distinct, .. } => Some(*distinct),
            StatisticsData::Boolean { trues, falses, .. } => {
                Some(u64::from(*trues > 0) + u64::from(*falses > 0))
            }
            StatisticsData::Binary { .. } => None,
        }
    }
}

mod i128_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_keep_their_values_through_json() {
        let stats = ColumnStatistics {
            column: "price".into(),
            data_type: "decimal(38,2)".into(),
            analyzed_time: Utc::now(),
            data: StatisticsData::Decimal {
                nulls: 3,
                distinct: 41,
                min: Some(DecimalValue {
                    unscaled: -170_141_183_460_469_231_731_687_303_715_884_105_728,
                    scale: 2,
                }),
                max: None,
            },
        };
        let text = serde_json::to_string(&stats).unwrap();
        assert!(text.contains(r#""type":"DECIMAL""#), "{text}");
        assert_eq!(
            serde_json::from_str::<ColumnStatistics>(&text).unwrap(),
            stats
        );
        assert_eq!(stats.data.kind(), "DECIMAL");
        let d = |unscaled, scale| DecimalValue { unscaled, scale }.to_string();
        assert_eq!(d(-1234, 2), "-12.34");
        assert_eq!(d(5, 3), "0.005");
        assert_eq!(d(42, 0), "42");
        assert_eq!(stats.data.distinct(), Some(41));
        let flags = StatisticsData::Boolean {
            nulls: 0,
            trues: 5,
            falses: 0,
        };
        assert_eq!(flags.distinct(), Some(1));
    }
}
