//! Athena DDL over the catalog: databases, external tables, partitions, properties, MSCK
//! REPAIR, SHOW CREATE TABLE. Every change is one atomic catalog write with the optimistic
//! version checks of the objects it read; DDL reads no data and is never billed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use quarry_catalog::types::from_hive;
use quarry_catalog::{
    Catalog, CatalogWrite, Column, Database, DatabaseDrop, Partition, PartitionDrop,
    PartitionFilter, PartitionWrite, SerDeInfo, StorageDescriptor, Table, TableDrop, TableWrite,
    keys,
};
use quarry_lake::format::{
    HIVE_JSON_SERDE, LAZY_SIMPLE_SERDE, OPEN_CSV_SERDE, OPENX_JSON_SERDE, PARQUET_INPUT,
    PARQUET_OUTPUT, PARQUET_SERDE, TEXT_INPUT, TEXT_OUTPUT,
};
use quarry_lake::hive::{Segment, partition_label, partition_path};
use quarry_lake::{ObjectStores, folder_url, is_hidden, location_url};

use crate::error::{Error, Result};
use crate::statement::{
    ColumnDef, ExternalTable, PartitionSpec, RowFormat, Statement, StoredAs, TableName,
};

/// A statement's result: a schema and its rows (empty for most DDL, as in Athena).
pub(crate) type Rows = (SchemaRef, Vec<RecordBatch>);

pub(crate) fn string_rows(columns: &[(&str, Vec<String>)]) -> Rows {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, _)| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|(_, v)| Arc::new(StringArray::from(v.clone())) as ArrayRef)
        .collect();
    match RecordBatch::try_new(Arc::clone(&schema), arrays) {
        Ok(b) => (schema, vec![b]),
        Err(_) => (schema, Vec::new()),
    }
}

fn no_rows() -> Rows {
    (Arc::new(Schema::empty()), Vec::new())
}

/// `db.t` of a statement's table name, with the session's database for a bare name.
pub(crate) fn resolve(name: &TableName, default_db: Option<&str>) -> Result<(String, String)> {
    if let Some(c) = &name.catalog
        && !c.eq_ignore_ascii_case(crate::provider::DEFAULT_CATALOG)
    {
        return Err(Error::user(format!(
            "catalog '{c}' does not exist; Quarry's catalog is {}",
            crate::provider::DEFAULT_CATALOG
        )));
    }
    let db = match (&name.database, default_db) {
        (Some(db), _) => db.clone(),
        (None, Some(db)) => db.to_string(),
        (None, None) => {
            return Err(Error::user(format!(
                "no database selected for table {}: write db.{} or pass -d db",
                name.table, name.table
            )));
        }
    };
    Ok((db, name.table.clone()))
}

/// The table `name`, which must exist.
pub(crate) async fn existing_table(
    catalog: &Arc<dyn Catalog>,
    name: &TableName,
    default_db: Option<&str>,
) -> Result<Table> {
    let (db, t) = resolve(name, default_db)?;
    catalog
        .get_table(&db, &t)
        .await?
        .ok_or_else(|| Error::user(format!("table {db}.{t} does not exist")))
}

pub(crate) async fn require_database(catalog: &Arc<dyn Catalog>, db: &str) -> Result<()> {
    if catalog.get_database(db).await?.is_none() {
        return Err(Error::user(format!(
            "database {db} does not exist; create it with CREATE DATABASE {db}"
        )));
    }
    Ok(())
}

/// Run one DDL statement.
pub(crate) async fn run(
    catalog: &Arc<dyn Catalog>,
    stores: &ObjectStores,
    statement: Statement,
    default_db: Option<&str>,
    warehouse: Option<&str>,
) -> Result<Rows> {
    match statement {
        Statement::CreateDatabase {
            name,
            if_not_exists,
            comment,
            location,
            properties,
        } => {
            if catalog.get_database(&name).await?.is_some() {
                if if_not_exists {
                    return Ok(no_rows());
                }
                return Err(Error::user(format!("database {name} already exists")));
            }
            let mut db = Database::new(&name);
            db.description = comment;
            db.location = location.as_deref().map(location_url).transpose()?;
            db.parameters = properties.into_iter().collect();
            apply(
                catalog,
                CatalogWrite {
                    databases: vec![db],
                    ..Default::default()
                },
            )
            .await
        }
        Statement::DropDatabase {
            name,
            if_exists,
            cascade,
        } => {
            if catalog.get_database(&name).await?.is_none() {
                if if_exists {
                    return Ok(no_rows());
                }
                return Err(Error::user(format!("database {name} does not exist")));
            }
            apply(
                catalog,
                CatalogWrite {
                    drop_databases: vec![DatabaseDrop { name, cascade }],
                    ..Default::default()
                },
            )
            .await
        }
        Statement::CreateExternalTable(def) => {
            create_table(catalog, *def, default_db, warehouse).await
        }
        Statement::DropTable { name, if_exists } => {
            let (db, t) = resolve(&name, default_db)?;
            let Some(table) = catalog.get_table(&db, &t).await? else {
                if if_exists {
                    return Ok(no_rows());
                }
                return Err(Error::user(format!("table {db}.{t} does not exist")));
            };
            if table.is_view() {
                return Err(Error::user(format!(
                    "{db}.{t} is a view, not a table; use DROP VIEW"
                )));
            }
            // External tables: the catalog entry goes, the data stays (Athena's rule).
            apply(
                catalog,
                CatalogWrite {
                    drop_tables: vec![TableDrop {
                        database: db,
                        table: t,
                        expected_version: Some(table.version),
                    }],
                    ..Default::default()
                },
            )
            .await
        }
        Statement::AddPartitions {
            table,
            if_not_exists,
            partitions,
        } => {
            let t = existing_table(catalog, &table, default_db).await?;
            let mut writes = Vec::new();
            let mut seen = BTreeSet::new();
            for (spec, location) in partitions {
                let values = spec_values(&t, &spec)?;
                if !seen.insert(values.clone()) {
                    continue;
                }
                if find_partition(catalog, &t, &values).await?.is_some() {
                    if if_not_exists {
                        continue;
                    }
                    return Err(Error::user(format!(
                        "partition {} of {} already exists; use ADD IF NOT EXISTS",
                        show_spec(&t, &values),
                        t.qualified_name()
                    )));
                }
                let location = location.map_or_else(
                    || {
                        Ok(format!(
                            "{}{}",
                            folder_url(&t.storage.location),
                            partition_path(&key_names(&t), &values)
                        ))
                    },
                    |l| location_url(&l),
                )?;
                writes.push(new_partition(&t, Partition::new(values, location)));
            }
            apply(
                catalog,
                CatalogWrite {
                    partitions: writes,
                    ..Default::default()
                },
            )
            .await
        }
        Statement::DropPartitions {
            table,
            if_exists,
            partitions,
        } => {
            let t = existing_table(catalog, &table, default_db).await?;
            let mut drops = Vec::new();
            for spec in partitions {
                let values = spec_values(&t, &spec)?;
                match find_partition(catalog, &t, &values).await? {
                    Some(p) => drops.push(PartitionDrop {
                        database: t.database.clone(),
                        table: t.name.clone(),
                        values,
                        expected_version: Some(p.version),
                    }),
                    None if if_exists => {}
                    None => {
                        return Err(Error::user(format!(
                            "partition {} of {} does not exist",
                            show_spec(&t, &values),
                            t.qualified_name()
                        )));
                    }
                }
            }
            apply(
                catalog,
                CatalogWrite {
                    drop_partitions: drops,
                    ..Default::default()
                },
            )
            .await
        }
        Statement::SetPartitionLocation {
            table,
            partition,
            location,
        } => {
            let t = existing_table(catalog, &table, default_db).await?;
            let values = spec_values(&t, &partition)?;
            let Some(mut p) = find_partition(catalog, &t, &values).await? else {
                return Err(Error::user(format!(
                    "partition {} of {} does not exist",
                    show_spec(&t, &values),
                    t.qualified_name()
                )));
            };
            let expected = Some(p.version);
            p.location = location_url(&location)?;
            p.update_time = Utc::now();
            apply(
                catalog,
                CatalogWrite {
                    partitions: vec![PartitionWrite {
                        database: t.database.clone(),
                        table: t.name.clone(),
                        partition: p,
                        expected_version: expected,
                    }],
                    ..Default::default()
                },
            )
            .await
        }
        Statement::SetTableProperties { table, properties } => {
            let mut t = existing_table(catalog, &table, default_db).await?;
            t.parameters.extend(properties);
            update_table(catalog, t).await
        }
        Statement::AddColumns { table, columns } => {
            let mut t = existing_table(catalog, &table, default_db).await?;
            for c in columns {
                let exists = t
                    .storage
                    .columns
                    .iter()
                    .chain(&t.partition_keys)
                    .any(|x| x.name.eq_ignore_ascii_case(&c.name));
                if exists {
                    return Err(Error::user(format!(
                        "column {} already exists in {}",
                        c.name,
                        t.qualified_name()
                    )));
                }
                t.storage.columns.push(column(&c));
            }
            update_table(catalog, t).await
        }
        Statement::ReplaceColumns { table, columns } => {
            let mut t = existing_table(catalog, &table, default_db).await?;
            t.storage.columns = columns.iter().map(column).collect();
            update_table(catalog, t).await
        }
        Statement::MsckRepair { table } => {
            let t = existing_table(catalog, &table, default_db).await?;
            msck_repair(catalog, stores, &t).await
        }
        Statement::DropView { name, if_exists } => {
            let (db, v) = resolve(&name, default_db)?;
            let Some(view) = catalog.get_table(&db, &v).await? else {
                if if_exists {
                    return Ok(no_rows());
                }
                return Err(Error::user(format!("view {db}.{v} does not exist")));
            };
            if !view.is_view() {
                return Err(Error::user(format!(
                    "{db}.{v} is a table, not a view; use DROP TABLE"
                )));
            }
            apply(
                catalog,
                CatalogWrite {
                    drop_tables: vec![TableDrop {
                        database: db,
                        table: v,
                        expected_version: Some(view.version),
                    }],
                    ..Default::default()
                },
            )
            .await
        }
        Statement::ShowViews { database, like } => {
            let db = match database.as_deref().or(default_db) {
                Some(db) => db.to_string(),
                None => {
                    return Err(Error::user(
                        "SHOW VIEWS needs a database: SHOW VIEWS IN db, or pass -d db",
                    ));
                }
            };
            if catalog.get_database(&db).await?.is_none() {
                return Err(Error::user(format!("database {db} does not exist")));
            }
            let views: Vec<String> = catalog
                .list_tables(&db)
                .await?
                .into_iter()
                .filter(|t| t.is_view())
                .map(|t| t.name)
                .filter(|n| {
                    like.as_deref()
                        .is_none_or(|p| crate::engine::athena_like(p, n))
                })
                .collect();
            Ok(string_rows(&[("views", views)]))
        }
        Statement::ShowCreateView { view } => {
            let t = existing_table(catalog, &view, default_db).await?;
            if !t.is_view() {
                return Err(Error::user(format!(
                    "{} is a table, not a view; use SHOW CREATE TABLE",
                    t.qualified_name()
                )));
            }
            let def = crate::view::definition(&t)?;
            let name = TableName {
                catalog: None,
                database: Some(t.database.clone()),
                table: t.name.clone(),
            };
            Ok(string_rows(&[(
                "Create View",
                vec![format!("CREATE VIEW {name} AS\n{}", def.original_sql)],
            )]))
        }
        Statement::ShowCreateTable { table } => {
            let t = existing_table(catalog, &table, default_db).await?;
            Ok(string_rows(&[(
                "createtab_stmt",
                vec![show_create_table(&t)],
            )]))
        }
        Statement::ShowTableProperties { table, key } => {
            let t = existing_table(catalog, &table, default_db).await?;
            let (mut names, mut values) = (Vec::new(), Vec::new());
            for (k, v) in &t.parameters {
                if key.as_ref().is_none_or(|want| want == k) {
                    names.push(k.clone());
                    values.push(v.clone());
                }
            }
            if let Some(k) = key
                && names.is_empty()
            {
                return Err(Error::user(format!(
                    "table {} has no property '{k}'",
                    t.qualified_name()
                )));
            }
            Ok(string_rows(&[("prpt_name", names), ("prpt_value", values)]))
        }
        other => Err(Error::internal(format!("not a DDL statement: {other:?}"))),
    }
}

/// Commit `write`; the statement returns no rows, as Athena's DDL.
async fn apply(catalog: &Arc<dyn Catalog>, write: CatalogWrite) -> Result<Rows> {
    commit(catalog, write).await?;
    Ok(no_rows())
}

async fn commit(catalog: &Arc<dyn Catalog>, write: CatalogWrite) -> Result<()> {
    if write.is_empty() {
        return Ok(());
    }
    catalog.commit(write).await?;
    Ok(())
}

/// The write that adds `partition` to `t`.
pub(crate) fn new_partition(t: &Table, partition: Partition) -> PartitionWrite {
    PartitionWrite {
        database: t.database.clone(),
        table: t.name.clone(),
        partition,
        expected_version: None,
    }
}

async fn update_table(catalog: &Arc<dyn Catalog>, mut t: Table) -> Result<Rows> {
    let expected = Some(t.version);
    t.update_time = Utc::now();
    apply(
        catalog,
        CatalogWrite {
            tables: vec![TableWrite {
                table: t,
                expected_version: expected,
            }],
            ..Default::default()
        },
    )
    .await
}

fn column(c: &ColumnDef) -> Column {
    Column {
        name: c.name.clone(),
        data_type: c.data_type.clone(),
        comment: c.comment.clone(),
    }
}

fn key_names(t: &Table) -> Vec<String> {
    t.partition_keys.iter().map(|k| k.name.clone()).collect()
}

/// `(dt='2024-01-01', hour=3)` as values in key order; every key named once, nothing else.
fn spec_values(t: &Table, spec: &PartitionSpec) -> Result<Vec<Option<String>>> {
    let keys = key_names(t);
    let mismatch = || {
        Error::user(format!(
            "partition ({}) does not match keys ({}) of {}",
            spec.0
                .iter()
                .map(|(k, v)| format!("{k}='{v}'"))
                .collect::<Vec<_>>()
                .join(", "),
            keys.join(", "),
            t.qualified_name()
        ))
    };
    if spec.0.len() != keys.len() {
        return Err(mismatch());
    }
    let mut values = vec![None; keys.len()];
    for (k, v) in &spec.0 {
        let i = keys
            .iter()
            .position(|key| key.eq_ignore_ascii_case(k))
            .ok_or_else(mismatch)?;
        if values[i].is_some() {
            return Err(mismatch());
        }
        let ty = &t.partition_keys[i].data_type;
        let ok = v == quarry_lake::HIVE_DEFAULT_PARTITION || value_fits(ty, v);
        if !ok {
            return Err(Error::user(format!(
                "partition value {k}='{v}' is not a valid {ty} (the type of partition key {k} of {})",
                t.qualified_name()
            )));
        }
        // Hive's name for NULL, as SHOW PARTITIONS prints it.
        values[i] = (v != quarry_lake::HIVE_DEFAULT_PARTITION).then(|| v.clone());
    }
    Ok(values)
}

/// Whether a partition value reads as the key's type (queries fail on one that does not).
fn value_fits(ty: &str, v: &str) -> bool {
    match from_hive(ty) {
        Ok(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) | Err(_) => true,
        Ok(DataType::Date32) => chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok(),
        Ok(DataType::Boolean) => matches!(v.to_ascii_lowercase().as_str(), "true" | "false"),
        Ok(t) => {
            let text: ArrayRef = Arc::new(StringArray::from(vec![v]));
            let options = datafusion::arrow::compute::CastOptions {
                safe: false,
                ..Default::default()
            };
            datafusion::arrow::compute::cast_with_options(&text, &t, &options).is_ok()
        }
    }
}

fn show_spec(t: &Table, values: &[Option<String>]) -> String {
    let parts: Vec<String> = t
        .partition_keys
        .iter()
        .zip(values)
        .map(|(k, v)| match v {
            Some(v) => format!("{}='{v}'", k.name),
            None => format!("{}=NULL", k.name),
        })
        .collect();
    format!("({})", parts.join(", "))
}

async fn find_partition(
    catalog: &Arc<dyn Catalog>,
    t: &Table,
    values: &[Option<String>],
) -> Result<Option<Partition>> {
    let mut filter = PartitionFilter::all();
    for (k, v) in t.partition_keys.iter().zip(values) {
        if let Some(v) = v {
            filter = filter.eq(&k.name, v);
        }
    }
    let found = catalog
        .get_partitions(&t.database, &t.name, &filter)
        .await?;
    Ok(found.into_iter().find(|p| p.values == values))
}

/// The table a CREATE [EXTERNAL] TABLE statement describes, as Athena would record it.
async fn create_table(
    catalog: &Arc<dyn Catalog>,
    def: ExternalTable,
    default_db: Option<&str>,
    warehouse: Option<&str>,
) -> Result<Rows> {
    let (db, name) = resolve(&def.name, default_db)?;
    require_database(catalog, &db).await?;
    if catalog.get_table(&db, &name).await?.is_some() {
        if def.if_not_exists {
            return Ok(no_rows());
        }
        return Err(Error::user(format!("table {db}.{name} already exists")));
    }
    if let Some((_, kind)) = def
        .table_properties
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("table_type") && !v.eq_ignore_ascii_case("HIVE"))
    {
        return Err(Error::user(format!(
            "table {db}.{name}: table_type '{kind}' is not supported; Quarry reads and writes Hive tables"
        )));
    }
    if let Some((cols, n)) = &def.clustered_by {
        return Err(Error::user(format!(
            "CLUSTERED BY ({}) INTO {n} BUCKETS: bucketed tables are not supported yet; remove the clause",
            cols.join(", ")
        )));
    }
    if def.columns.is_empty() {
        return Err(Error::user(format!(
            "table {db}.{name} needs at least one column"
        )));
    }
    let mut names = BTreeSet::new();
    for c in def.columns.iter().chain(&def.partitioned_by) {
        if !names.insert(c.name.to_ascii_lowercase()) {
            return Err(Error::user(format!(
                "column {} is declared twice in {db}.{name}",
                c.name
            )));
        }
        from_hive(&c.data_type)
            .map_err(|e| Error::user(format!("column {} of {db}.{name}: {e}", c.name)))?;
    }
    let location = match (&def.location, warehouse) {
        (Some(l), _) => location_url(l)?,
        (None, Some(w)) => format!("{}{db}/{name}/", location_url(w)?),
        (None, None) => {
            return Err(Error::user(format!(
                "table {db}.{name} needs a LOCATION 's3://bucket/path/' (or set QUARRY_WAREHOUSE / --warehouse)"
            )));
        }
    };
    let mut parameters: BTreeMap<String, String> = def.table_properties.iter().cloned().collect();
    parameters.insert("EXTERNAL".into(), "TRUE".into());
    let serde_params: BTreeMap<String, String> = def.serde_properties.iter().cloned().collect();
    let (input, output, serde) = storage(&def, serde_params, &db, &name)?;
    if !parameters.contains_key(keys::CLASSIFICATION) {
        let lib = serde.serialization_library.to_ascii_lowercase();
        let class = if lib.contains("parquet") {
            "parquet"
        } else if lib.contains("json") {
            "json"
        } else {
            "csv"
        };
        parameters.insert(keys::CLASSIFICATION.into(), class.into());
    }
    let now = Utc::now();
    let table = Table {
        view: None,
        database: db,
        name,
        description: def.comment.clone(),
        table_type: if def.external {
            "EXTERNAL_TABLE".into()
        } else {
            "MANAGED_TABLE".into()
        },
        storage: StorageDescriptor {
            location,
            columns: def.columns.iter().map(column).collect(),
            input_format: input,
            output_format: output,
            compressed: parameters
                .get(keys::COMPRESSION_TYPE)
                .is_some_and(|c| !c.eq_ignore_ascii_case("none")),
            serde_info: serde,
            parameters: Default::default(),
        },
        partition_keys: def.partitioned_by.iter().map(column).collect(),
        parameters,
        create_time: now,
        update_time: now,
        version: 0,
    };
    apply(
        catalog,
        CatalogWrite {
            tables: vec![TableWrite {
                table,
                expected_version: None,
            }],
            ..Default::default()
        },
    )
    .await
}

/// Input format, output format and SerDe from ROW FORMAT / STORED AS, with Hive's defaults
/// (TEXTFILE with LazySimpleSerDe and `\x01` between fields).
fn storage(
    def: &ExternalTable,
    mut serde_params: BTreeMap<String, String>,
    db: &str,
    name: &str,
) -> Result<(String, String, SerDeInfo)> {
    let unsupported = |what: &str| {
        Error::user(format!(
            "{db}.{name}: {what} is not supported; Quarry reads PARQUET, TEXTFILE (CSV/TSV) and JSON tables"
        ))
    };
    let mut lib = match &def.row_format {
        Some(RowFormat::Serde(class)) => Some(class.clone()),
        Some(RowFormat::Delimited {
            fields_terminated_by,
            escaped_by,
            collection_items_terminated_by,
            map_keys_terminated_by,
            lines_terminated_by,
            null_defined_as,
        }) => {
            let mut put = |k: &str, v: &Option<String>| {
                if let Some(v) = v {
                    serde_params.insert(k.to_string(), v.clone());
                }
            };
            put("field.delim", fields_terminated_by);
            put("escape.delim", escaped_by);
            put("collection.delim", collection_items_terminated_by);
            put("mapkey.delim", map_keys_terminated_by);
            put("line.delim", lines_terminated_by);
            put("serialization.null.format", null_defined_as);
            if let Some(d) = fields_terminated_by {
                serde_params
                    .entry("serialization.format".into())
                    .or_insert_with(|| d.clone());
            }
            Some(LAZY_SIMPLE_SERDE.to_string())
        }
        None => None,
    };
    let (input, output) = match &def.stored_as {
        Some(StoredAs::Formats { input, output }) => (input.clone(), output.clone()),
        Some(StoredAs::Named(n)) => match n.as_str() {
            "PARQUET" | "PARQUETFILE" => {
                lib.get_or_insert_with(|| PARQUET_SERDE.to_string());
                (PARQUET_INPUT.to_string(), PARQUET_OUTPUT.to_string())
            }
            "TEXTFILE" => (TEXT_INPUT.to_string(), TEXT_OUTPUT.to_string()),
            "JSONFILE" | "JSON" => {
                lib.get_or_insert_with(|| HIVE_JSON_SERDE.to_string());
                (TEXT_INPUT.to_string(), TEXT_OUTPUT.to_string())
            }
            other => return Err(unsupported(&format!("STORED AS {other}"))),
        },
        None => (TEXT_INPUT.to_string(), TEXT_OUTPUT.to_string()),
    };
    let lib = lib.unwrap_or_else(|| LAZY_SIMPLE_SERDE.to_string());
    let lower = lib.to_ascii_lowercase();
    if lower.contains("orc")
        || lower.contains("avro")
        || lower.contains("ion") && !lower.contains("json")
    {
        return Err(unsupported(&format!("SerDe {lib}")));
    }
    if lib == LAZY_SIMPLE_SERDE && !serde_params.contains_key("field.delim") {
        // Hive's default field separator.
        serde_params.insert("field.delim".into(), "\u{1}".into());
        serde_params
            .entry("serialization.format".into())
            .or_insert_with(|| "\u{1}".into());
    }
    let known = [
        LAZY_SIMPLE_SERDE,
        OPEN_CSV_SERDE,
        OPENX_JSON_SERDE,
        HIVE_JSON_SERDE,
        PARQUET_SERDE,
    ];
    if !known.contains(&lib.as_str()) && !lower.contains("parquet") {
        return Err(unsupported(&format!("SerDe {lib}")));
    }
    Ok((
        input,
        output,
        SerDeInfo {
            serialization_library: lib,
            parameters: serde_params,
        },
    ))
}

/// A string literal that this parser reads back as `s`: quotes doubled, backslashes and
/// control characters escaped the Hive way (`\\`, `\t`, `\n`, `\001`).
fn quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Athena's `SHOW CREATE TABLE`: a statement that re-creates the table when run.
pub(crate) fn show_create_table(t: &Table) -> String {
    let cols = |cols: &[Column]| {
        cols.iter()
            .map(|c| {
                let comment = c
                    .comment
                    .as_deref()
                    .map(|x| format!(" COMMENT {}", quote_str(x)))
                    .unwrap_or_default();
                format!("  `{}` {}{comment}", c.name, c.data_type)
            })
            .collect::<Vec<_>>()
            .join(",\n")
    };
    let mut out = format!(
        "CREATE EXTERNAL TABLE `{}`.`{}`(\n{})\n",
        t.database,
        t.name,
        cols(&t.storage.columns)
    );
    if let Some(c) = &t.description {
        out.push_str(&format!("COMMENT {}\n", quote_str(c)));
    }
    if !t.partition_keys.is_empty() {
        out.push_str(&format!("PARTITIONED BY (\n{})\n", cols(&t.partition_keys)));
    }
    let serde = &t.storage.serde_info;
    out.push_str(&format!(
        "ROW FORMAT SERDE\n  {}\n",
        quote_str(&serde.serialization_library)
    ));
    if !serde.parameters.is_empty() {
        let props: Vec<String> = serde
            .parameters
            .iter()
            .map(|(k, v)| format!("  {}={}", quote_str(k), quote_str(v)))
            .collect();
        out.push_str(&format!("WITH SERDEPROPERTIES (\n{})\n", props.join(",\n")));
    }
    out.push_str(&format!(
        "STORED AS INPUTFORMAT\n  {}\nOUTPUTFORMAT\n  {}\n",
        quote_str(&t.storage.input_format),
        quote_str(&t.storage.output_format)
    ));
    out.push_str(&format!("LOCATION\n  {}\n", quote_str(&t.storage.location)));
    let props: Vec<String> = t
        .parameters
        .iter()
        .filter(|(k, _)| k.as_str() != "EXTERNAL")
        .map(|(k, v)| format!("  {}={}", quote_str(k), quote_str(v)))
        .collect();
    if !props.is_empty() {
        out.push_str(&format!("TBLPROPERTIES (\n{})", props.join(",\n")));
    }
    out
}

/// MSCK REPAIR TABLE: add the `key=value` folders under the table's location that are not yet
/// partitions, in one catalog write. Folders that do not fit the keys are reported, not added.
async fn msck_repair(catalog: &Arc<dyn Catalog>, stores: &ObjectStores, t: &Table) -> Result<Rows> {
    if t.partition_keys.is_empty() {
        return Err(Error::user(format!(
            "table {} is not partitioned; MSCK REPAIR TABLE adds partitions",
            t.qualified_name()
        )));
    }
    let root_url = folder_url(&t.storage.location);
    let (store, root) = stores.resolve(&root_url)?;
    let keys = key_names(t);
    let depth = keys.len();
    // One listing of the whole table (a page per 1,000 objects on S3) rather than one per folder.
    let objects: Vec<_> = store
        .list(Some(&root))
        .try_collect()
        .await
        .map_err(|source| {
            Error::Lake(quarry_lake::Error::Object {
                operation: "listing",
                url: root_url.clone(),
                source,
            })
        })?;
    let mut found: BTreeMap<Vec<Option<String>>, String> = BTreeMap::new();
    let mut misfits: BTreeSet<(String, String)> = BTreeSet::new();
    let root_parts = root.parts().count();
    for o in &objects {
        let parts: Vec<String> = o
            .location
            .parts()
            .skip(root_parts)
            .map(|p| p.as_ref().to_string())
            .collect();
        if is_hidden(&parts) || parts.len() <= 1 {
            continue;
        }
        let dirs = &parts[..parts.len() - 1];
        if dirs.len() < depth {
            misfits.insert((
                dirs.join("/"),
                format!("skipped: not partition keys ({})", keys.join(", ")),
            ));
            continue;
        }
        let mut values = Vec::with_capacity(depth);
        let mut misfit = None;
        for ((key, dir), k) in keys.iter().zip(dirs).zip(&t.partition_keys) {
            match Segment::parse(dir) {
                Segment::Hive { key: name, value } if name.eq_ignore_ascii_case(key) => {
                    if let Some(v) = &value
                        && !value_fits(&k.data_type, v)
                    {
                        misfit = Some(format!("skipped: '{v}' is not of type {}", k.data_type));
                        break;
                    }
                    values.push(value);
                }
                _ => {
                    misfit = Some(format!("skipped: not partition keys ({})", keys.join(", ")));
                    break;
                }
            }
        }
        if let Some(reason) = misfit {
            misfits.insert((dirs[..depth].join("/"), reason));
            continue;
        }
        let folder: String = dirs[..depth].iter().map(|d| format!("{d}/")).collect();
        found.entry(values).or_insert(folder);
    }
    let existing: BTreeSet<Vec<Option<String>>> = catalog
        .get_partitions(&t.database, &t.name, &PartitionFilter::all())
        .await?
        .into_iter()
        .map(|p| p.values)
        .collect();
    let mut added = Vec::new();
    let mut writes = Vec::new();
    for (values, folder) in found {
        if existing.contains(&values) {
            continue;
        }
        added.push(partition_label(&keys, &values));
        writes.push(new_partition(
            t,
            Partition::new(values, format!("{root_url}{folder}")),
        ));
    }
    commit(
        catalog,
        CatalogWrite {
            partitions: writes,
            ..Default::default()
        },
    )
    .await?;
    let mut kinds = Vec::new();
    let mut items = Vec::new();
    for a in added {
        kinds.push("added".to_string());
        items.push(a);
    }
    for (folder, reason) in misfits {
        kinds.push(reason);
        items.push(folder);
    }
    Ok(string_rows(&[("result", kinds), ("partition", items)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::parse;

    #[test]
    fn show_create_table_reads_back_the_same_strings() {
        let now = Utc::now();
        let awkward = "it's a \\ back\tslash\u{1}";
        let table = Table {
            database: "db".into(),
            name: "t".into(),
            description: Some(awkward.into()),
            table_type: "EXTERNAL_TABLE".into(),
            view: None,
            storage: StorageDescriptor {
                location: "s3://b/t/".into(),
                columns: vec![Column {
                    name: "a".into(),
                    data_type: "map<string,array<int>>".into(),
                    comment: Some("O'Brien".into()),
                }],
                input_format: TEXT_INPUT.into(),
                output_format: TEXT_OUTPUT.into(),
                serde_info: SerDeInfo {
                    serialization_library: OPEN_CSV_SERDE.into(),
                    parameters: [
                        ("separatorChar".to_string(), "\u{1}".to_string()),
                        ("quoteChar".to_string(), "'".to_string()),
                        ("escapeChar".to_string(), "\\".to_string()),
                    ]
                    .into(),
                },
                compressed: false,
                parameters: Default::default(),
            },
            partition_keys: vec![Column::new("dt", "date")],
            parameters: [("delimiter".to_string(), "\u{1}".to_string())].into(),
            create_time: now,
            update_time: now,
            version: 0,
        };
        let ddl = show_create_table(&table);
        let Ok(Statement::CreateExternalTable(def)) = parse(&ddl, "generic") else {
            panic!("does not parse back: {ddl}");
        };
        assert_eq!(def.comment.as_deref(), Some(awkward));
        assert_eq!(def.columns[0].comment.as_deref(), Some("O'Brien"));
        assert_eq!(def.columns[0].data_type, "map<string,array<int>>");
        let serde: BTreeMap<_, _> = def.serde_properties.into_iter().collect();
        assert_eq!(serde, table.storage.serde_info.parameters);
        let props: BTreeMap<_, _> = def.table_properties.into_iter().collect();
        assert_eq!(props, table.parameters);
    }
}
