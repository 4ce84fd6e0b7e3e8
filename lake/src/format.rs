//! Table formats and compressions, and how the catalog describes them: the mapping between
//! Quarry's [`FileFormat`] and Glue's SerDe / input format / output format, in both directions.

use std::io::Read;

use quarry_catalog::{Parameters, SerDeInfo, Table, keys};
use serde::{Deserialize, Serialize};

/// The SerDe parameter naming the text that stands for NULL in text files (Hive's default
/// for LazySimpleSerDe is `\N`).
pub const NULL_FORMAT: &str = "serialization.null.format";

/// Hive's text SerDe (CSV/TSV without quotes; `field.delim`).
pub const LAZY_SIMPLE_SERDE: &str = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe";
/// The quoted-CSV SerDe (`separatorChar`, `quoteChar`, `escapeChar`).
pub const OPEN_CSV_SERDE: &str = "org.apache.hadoop.hive.serde2.OpenCSVSerde";
/// The OpenX JSON SerDe, Athena's usual JSON lines SerDe.
pub const OPENX_JSON_SERDE: &str = "org.openx.data.jsonserde.JsonSerDe";
/// The Hive HCatalog JSON SerDe, the other one Athena reads.
pub const HIVE_JSON_SERDE: &str = "org.apache.hive.hcatalog.data.JsonSerDe";
pub const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
pub const PARQUET_INPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
pub const PARQUET_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
pub const TEXT_INPUT: &str = "org.apache.hadoop.mapred.TextInputFormat";
pub const TEXT_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Self::Gzip,
            [b'B', b'Z', b'h', ..] => Self::Bzip2,
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Self::Xz,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Self::Zstd,
            _ => Self::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Bzip2 => "bzip2",
            Self::Xz => "xz",
            Self::Zstd => "zstd",
        }
    }

    /// A reader that decompresses `input` (all members / frames of it).
    pub fn decoder<'a>(self, input: &'a [u8]) -> std::io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Self::None => Box::new(input),
            Self::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Self::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(input)),
            Self::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(input)),
            Self::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
        })
    }
}

/// How a CSV/TSV file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CsvDialect {
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileFormat {
    Parquet,
    Csv(CsvDialect),
    Json,
}

impl FileFormat {
    pub fn classification(&self) -> quarry_catalog::Classification {
        match self {
            Self::Parquet => quarry_catalog::Classification::Parquet,
            Self::Csv(_) => quarry_catalog::Classification::Csv,
            Self::Json => quarry_catalog::Classification::Json,
        }
    }

    /// A short description for reports: `parquet`, `csv (',' header)`, `json`.
    pub fn describe(&self) -> String {
        match self {
            Self::Csv(d) => format!(
                "csv ({} {})",
                delimiter_name(d.delimiter),
                if d.header { "with header" } else { "no header" }
            ),
            other => other.classification().as_str().to_string(),
        }
    }
}

pub fn delimiter_name(d: u8) -> String {
    match d {
        b'\t' => "tab".into(),
        other => format!("'{}'", other as char),
    }
}

/// The file format a table was catalogued with.
pub fn table_file_format(table: &Table) -> Option<FileFormat> {
    use quarry_catalog::Classification as C;
    let serde = &table.storage.serde_info;
    let lib = serde.serialization_library.to_ascii_lowercase();
    // Tables written by Glue's crawler, Athena DDL or Spark may lack `classification`: the SerDe
    // and input format say the same thing.
    let classification = table.classification().or_else(|| {
        let input = table.storage.input_format.to_ascii_lowercase();
        if lib.contains("parquet") || input.contains("parquet") {
            Some(C::Parquet)
        } else if lib.contains("json") {
            Some(C::Json)
        } else if lib.contains("opencsvserde") || lib.contains("lazysimpleserde") {
            Some(C::Csv)
        } else {
            None
        }
    })?;
    Some(match classification {
        C::Parquet => FileFormat::Parquet,
        C::Json => FileFormat::Json,
        C::Csv => {
            let p = &serde.parameters;
            let first = |keys: &[&str]| {
                keys.iter()
                    .find_map(|k| p.get(*k).and_then(|d| d.bytes().next()))
            };
            // OpenCSVSerde: separatorChar / quoteChar; LazySimpleSerDe: field.delim, falling
            // back to serialization.format like Hive, then Hive's default ^A.
            let delimiter = first(&["field.delim", "separatorChar", "serialization.format"])
                .or_else(|| {
                    table
                        .parameters
                        .get(keys::DELIMITER)
                        .and_then(|d| d.bytes().next())
                })
                .unwrap_or(1);
            let quote = first(&["quoteChar"]).unwrap_or(b'"');
            let header = [
                table.parameters.get(keys::SKIP_HEADER),
                p.get(keys::SKIP_HEADER),
            ]
            .into_iter()
            .flatten()
            .any(|v| v.trim() == "1");
            FileFormat::Csv(CsvDialect {
                delimiter,
                quote,
                header,
            })
        }
    })
}

/// A short label of a table's format and compression, e.g. `csv (',' with header), bzip2`.
pub fn table_format_label(table: &Table) -> String {
    let f = table_file_format(table).map_or_else(|| "unknown".into(), |f| f.describe());
    match table
        .parameters
        .get(keys::COMPRESSION_TYPE)
        .map(String::as_str)
    {
        None | Some("none") => f,
        Some(c) => format!("{f}, {c}"),
    }
}

/// How the catalog describes files of `format`: input format, output format and SerDe, as
/// Glue's crawler and Athena's DDL write them. Table-level parameters that go with it
/// (`classification`, `delimiter`, `skip.header.line.count`) are added to `parameters`.
pub fn storage_for(
    format: FileFormat,
    parameters: &mut Parameters,
) -> (&'static str, &'static str, SerDeInfo) {
    parameters.insert(
        keys::CLASSIFICATION.into(),
        format.classification().as_str().into(),
    );
    match format {
        FileFormat::Parquet => (
            PARQUET_INPUT,
            PARQUET_OUTPUT,
            SerDeInfo {
                serialization_library: PARQUET_SERDE.into(),
                parameters: [("serialization.format".to_string(), "1".to_string())].into(),
            },
        ),
        FileFormat::Csv(d) => {
            let delim = (d.delimiter as char).to_string();
            parameters.insert(keys::DELIMITER.into(), delim.clone());
            parameters.insert("columnsOrdered".into(), "true".into());
            if d.header {
                parameters.insert(keys::SKIP_HEADER.into(), "1".into());
            }
            (
                TEXT_INPUT,
                TEXT_OUTPUT,
                SerDeInfo {
                    serialization_library: LAZY_SIMPLE_SERDE.into(),
                    parameters: [
                        ("field.delim".to_string(), delim),
                        ("quoteChar".to_string(), (d.quote as char).to_string()),
                        ("serialization.format".to_string(), ",".to_string()),
                    ]
                    .into(),
                },
            )
        }
        FileFormat::Json => (
            TEXT_INPUT,
            TEXT_OUTPUT,
            SerDeInfo {
                serialization_library: OPENX_JSON_SERDE.into(),
                parameters: Default::default(),
            },
        ),
    }
}

/// The text a table's text files use for NULL, when its SerDe declares one.
pub fn table_null_text(table: &Table) -> Option<&str> {
    table
        .storage
        .serde_info
        .parameters
        .get(NULL_FORMAT)
        .map(String::as_str)
}
