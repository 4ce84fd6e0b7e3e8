//! Result files in Athena's formats under an `OutputLocation`: `<id>.csv` (header row, every
//! value double-quoted, NULL as an empty unquoted field) for queries, `<id>.txt` (tab-separated,
//! no header) for DDL and utility statements, and `<id>.csv.metadata` / `.txt.metadata` (the
//! column information as JSON; Athena's own is binary and no client reads it).

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use object_store::ObjectStoreExt;
use object_store::PutPayload;

use crate::service::Execution;
use crate::values;

/// Write `e`'s results under `location`; returns the URL of the result file.
pub async fn write(
    stores: &quarry_lake::ObjectStores,
    location: &str,
    e: &Execution,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<String, String> {
    let folder = quarry_lake::folder_url(
        &quarry_lake::location_url(location).map_err(|err| err.to_string())?,
    );
    let csv = e.header || e.update_count.is_some();
    let name = if csv {
        format!("{}.csv", e.id)
    } else {
        format!("{}.txt", e.id)
    };
    let mut text = String::new();
    let quote = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
    if csv && e.update_count.is_none() {
        let header: Vec<String> = schema.fields().iter().map(|f| quote(f.name())).collect();
        text.push_str(&header.join(","));
        text.push('\n');
    }
    for b in batches {
        for row in values::rows(b.columns(), 0, b.num_rows()) {
            let cells: Vec<String> = row
                .iter()
                .map(|v| match v {
                    None => String::new(),
                    Some(v) if csv => quote(v),
                    Some(v) => v.clone(),
                })
                .collect();
            text.push_str(&cells.join(if csv { "," } else { "\t" }));
            text.push('\n');
        }
    }
    let url = format!("{folder}{name}");
    let (store, path) = stores.resolve(&url).map_err(|err| err.to_string())?;
    store
        .put(&path, PutPayload::from(text.into_bytes()))
        .await
        .map_err(|err| format!("writing {url}: {err}"))?;
    let meta = serde_json::to_vec(&e.columns).map_err(|err| err.to_string())?;
    let meta_url = format!("{url}.metadata");
    let (store, path) = stores.resolve(&meta_url).map_err(|err| err.to_string())?;
    store
        .put(&path, PutPayload::from(meta))
        .await
        .map_err(|err| format!("writing {meta_url}: {err}"))?;
    Ok(url)
}
