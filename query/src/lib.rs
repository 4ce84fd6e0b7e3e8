//! Quarry's query engine: Apache DataFusion over the Quarry catalog.
//!
//! This crate pins the one DataFusion (and through it the one arrow / parquet / object_store)
//! that the whole workspace uses. So far it maps catalog tables to Arrow schemas; the
//! `TableProvider`s, partition pruning and scan metering build on this.
//!
//! ```
//! use quarry_catalog::{Column, Table};
//! # fn t() -> Table { serde_json::from_str(r#"{"database":"d","name":"t","table_type":"EXTERNAL_TABLE",
//! #  "storage":{"location":"file:///t/","columns":[],"input_format":"","output_format":"","serde_info":{"serialization_library":""},"compressed":false},
//! #  "partition_keys":[],"parameters":{},"create_time":"2024-01-01T00:00:00Z","update_time":"2024-01-01T00:00:00Z"}"#).unwrap() }
//! let mut table = t();
//! table.storage.columns.push(Column::new("id", "bigint"));
//! table.partition_keys.push(Column::new("dt", "date"));
//! let schema = quarry_query::table_schema(&table).unwrap();
//! assert_eq!(schema.fields().len(), 2);
//! ```

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use quarry_catalog::Table;
use quarry_catalog::types::from_hive;

/// The Arrow schema a query sees for `table`: its data columns, then its partition keys.
pub fn table_schema(table: &Table) -> quarry_catalog::Result<SchemaRef> {
    let fields = table
        .storage
        .columns
        .iter()
        .chain(&table.partition_keys)
        .map(|c| Ok(Field::new(&c.name, from_hive(&c.data_type)?, true)))
        .collect::<quarry_catalog::Result<Vec<_>>>()?;
    Ok(Arc::new(Schema::new(fields)))
}
