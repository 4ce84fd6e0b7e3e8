//! Property tests of the parsers and codecs that read untrusted text (issue 16): they never
//! panic, and their round trips hold. A bounded number of cases runs in `scripts/test`; more on
//! demand:
//!
//!     PROPTEST_CASES=20000 cargo test -p quarry-tests --test integration properties
//!
//! A failing case is printed minimised; add it to the regression list of its property.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use proptest::prelude::*;
use quarry_lake::hive::{Segment, escape, unescape};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Statements to mutate: every kind the statement layer parses itself.
const STATEMENTS: [&str; 10] = [
    "CREATE EXTERNAL TABLE db.t (a int, b map<string,array<int>>) PARTITIONED BY (dt string) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://b/t/' TBLPROPERTIES ('projection.enabled'='true')",
    "ALTER TABLE t ADD IF NOT EXISTS PARTITION (dt='2024-01-01') LOCATION 's3://b/t/dt=2024-01-01/'",
    "CREATE TABLE x WITH (format = 'PARQUET', partitioned_by = ARRAY['dt']) AS SELECT * FROM t",
    "INSERT INTO t (a, b) SELECT a, b FROM u WHERE c = ?",
    "UNLOAD (SELECT * FROM t) TO 's3://b/out/' WITH (format = 'JSON')",
    "CREATE OR REPLACE VIEW v AS SELECT a FROM t CROSS JOIN UNNEST(arr) WITH ORDINALITY AS u(x, n)",
    "PREPARE q FROM SELECT * FROM t WHERE a = ? AND b = ?",
    "EXECUTE q USING 'x', 2",
    "SELECT try(CAST(j AS ARRAY(ROW(a INTEGER, b VARCHAR)))), transform(xs, x -> x + 1) FROM t",
    "SHOW VIEWS IN db LIKE 'a*'",
];

fn timestamp_units() -> impl Strategy<Value = TimeUnit> {
    prop_oneof![
        Just(TimeUnit::Second),
        Just(TimeUnit::Millisecond),
        Just(TimeUnit::Microsecond),
        Just(TimeUnit::Nanosecond),
    ]
}

/// The types a crawl infers and widens.
fn crawled_type() -> impl Strategy<Value = DataType> {
    let leaf = prop_oneof![
        Just(DataType::Null),
        Just(DataType::Boolean),
        Just(DataType::Int32),
        Just(DataType::Int64),
        Just(DataType::Float32),
        Just(DataType::Float64),
        Just(DataType::Utf8),
        Just(DataType::Date32),
        timestamp_units().prop_map(|u| DataType::Timestamp(u, None)),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|t| DataType::List(std::sync::Arc::new(
                    datafusion::arrow::datatypes::Field::new("item", t, true)
                ))),
            proptest::collection::vec(("[a-c]", inner), 1..3).prop_map(|fields| {
                let mut seen = std::collections::HashSet::new();
                DataType::Struct(
                    fields
                        .into_iter()
                        .filter(|(n, _)| seen.insert(n.clone()))
                        .map(|(n, t)| datafusion::arrow::datatypes::Field::new(n, t, true))
                        .collect(),
                )
            }),
        ]
    })
}

/// `t` with struct fields sorted by name, at every depth.
fn by_name(t: &DataType) -> DataType {
    use datafusion::arrow::datatypes::Field;
    match t {
        DataType::Struct(fields) => {
            let mut f: Vec<Field> = fields
                .iter()
                .map(|f| f.as_ref().clone().with_data_type(by_name(f.data_type())))
                .collect();
            f.sort_by(|a, b| a.name().cmp(b.name()));
            DataType::Struct(f.into())
        }
        DataType::List(f) => DataType::List(std::sync::Arc::new(
            f.as_ref().clone().with_data_type(by_name(f.data_type())),
        )),
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any partition value survives the folder name it is written as.
    #[test]
    fn hive_values_round_trip(value in "\\PC*") {
        let folder = format!("k={}", escape(&value));
        prop_assert!(!escape(&value).contains('/'));
        prop_assert_eq!(unescape(&escape(&value)), value.clone());
        let expected = (value != quarry_lake::HIVE_DEFAULT_PARTITION).then_some(value.as_str());
        let segment = Segment::parse(&folder);
        prop_assert_eq!(segment.value(), expected);
    }

    /// Any folder name parses to a segment without panicking.
    #[test]
    fn folder_names_never_panic(folder in "\\PC*") {
        let _ = Segment::parse(&folder);
        let _ = unescape(&folder);
    }

    /// The statement parser answers every input with a statement or an error, also for
    /// statements mangled by deleting, repeating or inserting characters.
    #[test]
    fn statements_never_panic(
        pick in 0..STATEMENTS.len(),
        at in any::<prop::sample::Index>(),
        len in 0usize..12,
        insert in "[ ,()'\"=?;<>:a-z0-9\\-]{0,6}",
        noise in "\\PC{0,80}",
    ) {
        let s = STATEMENTS[pick];
        let cut = at.index(s.len() + 1);
        let cut = (0..=cut).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        let end = (cut + len).min(s.len());
        let end = (end..=s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(s.len());
        let mangled = format!("{}{insert}{}", &s[..cut], &s[end..]);
        let _ = quarry_query::statement::parse(&mangled, "generic");
        let _ = quarry_query::statement::parse(&noise, "generic");
    }

    /// Text inference (CSV dialect and header sniffing, JSON lines) never panics on any bytes.
    #[test]
    fn text_inference_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), complete in any::<bool>()) {
        let _ = quarry_crawler::inspect::inspect_text(&bytes, complete);
    }

    /// CSV-ish and JSON-ish text, closer to real files, never panics either.
    #[test]
    fn structured_text_never_panics(
        text in "([a-z0-9\",;\t|{}\\[\\]: .\\-]{0,20}\r?\n){0,12}",
        complete in any::<bool>(),
    ) {
        let _ = quarry_crawler::inspect::inspect_text(text.as_bytes(), complete);
    }

    /// Widening is order-free: a column's type does not depend on the order files are read
    /// (struct fields keep the first file's order, so they are compared by name).
    #[test]
    fn widening_is_commutative_and_absorbing(a in crawled_type(), b in crawled_type()) {
        use quarry_crawler::schema::widen;
        let ab = widen(&a, &b);
        prop_assert_eq!(by_name(&ab), by_name(&widen(&b, &a)));
        prop_assert_eq!(by_name(&widen(&ab, &a)), by_name(&ab));
        prop_assert_eq!(by_name(&widen(&ab, &b)), by_name(&ab));
    }

    /// Hive type strings read back as the types they were written from.
    #[test]
    fn hive_types_round_trip(t in crawled_type()) {
        use quarry_catalog::types::{from_hive, to_hive};
        let t = quarry_crawler::schema::finalize(&t);
        let hive = to_hive(&t);
        let back = from_hive(&hive).expect("a type Quarry wrote reads back");
        prop_assert_eq!(to_hive(&back), hive);
    }

    /// Any text read as a Hive type is a type or an error.
    #[test]
    fn hive_type_text_never_panics(text in "[a-z<>(),: 0-9]{0,40}") {
        let _ = quarry_catalog::types::from_hive(&text);
    }

    /// Billing: at least the minimum, never less than scanned, rounded to whole MiB.
    #[test]
    fn billing_rounds_up_to_the_policy(scanned in any::<u64>()) {
        let p = quarry_query::billing::BillingPolicy::default();
        let billed = p.billed_bytes(scanned);
        prop_assert!(billed >= p.minimum_bytes);
        prop_assert!(billed >= scanned.min(u64::MAX - p.rounding_bytes));
        prop_assert_eq!(billed % p.rounding_bytes, 0);
        prop_assert!(p.billed_bytes(scanned.saturating_add(1)) >= billed);
        prop_assert!(p.cost_usd(billed) >= 0.0);
    }

    /// View definitions and parameter values from outside are read or refused, never a panic.
    #[test]
    fn view_text_and_parameters_never_panic(text in "\\PC{0,120}") {
        let _ = quarry_query::view::PrestoView::decode(&text);
        let _ = quarry_query::view::PrestoView::decode(&format!("/* Presto View: {text} */"));
        let _ = quarry_query::prepared::parse_values(&[text], "generic");
    }

    /// Federation protocol messages from a connector or an engine: parsed or refused, never a
    /// panic, whatever the bytes (JSON-shaped or not).
    #[test]
    fn federation_messages_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        kind in prop_oneof![Just("PingResponse"), Just("ReadRecordsResponse"), Just("GetSplitsRequest"), Just("ReadRecordsRequest")],
        body in "\\PC{0,80}",
    ) {
        let _ = quarry_federation::wire::parse_request(&bytes);
        let _ = quarry_federation::wire::parse_response(&bytes);
        let shaped = format!("{{\"@type\":\"{kind}\",\"catalogName\":\"c\",\"records\":{{\"aId\":\"a\",\"schema\":\"{body}\",\"records\":\"{body}\"}}}}");
        if let Ok(quarry_federation::wire::Response::ReadRecordsResponse(r)) = quarry_federation::wire::parse_response(shaped.as_bytes()) {
            let _ = r.records.decode();
        }
        let _ = quarry_federation::ipc::decode_block(&body, &body);
    }

    /// Constraint values survive the wire exactly, in either framing.
    #[test]
    fn constraint_domains_round_trip(
        values in proptest::collection::vec(any::<i64>(), 0..8),
        null_allowed in any::<bool>(),
        legacy in any::<bool>(),
    ) {
        use quarry_federation::constraints::{Domain, Range, Value, Values};
        let framing = if legacy { quarry_federation::ipc::Framing::Legacy } else { quarry_federation::ipc::Framing::Continuation };
        let domain = Domain {
            data_type: DataType::Int64,
            values: Values::Ranges(values.into_iter().map(|v| Range::single(Value::Int(v))).collect()),
            null_allowed,
        };
        let set = domain.to_value_set(framing).expect("encode");
        let text = serde_json::to_string(&set).expect("json");
        let back: quarry_federation::wire::ValueSet = serde_json::from_str(&text).expect("parse");
        prop_assert_eq!(Domain::from_value_set("c", &back).expect("decode"), domain);
    }

    /// Decimal text from PostgreSQL or DynamoDB: parsed exactly or refused, never a panic; at
    /// scale 0 an integer reads as itself.
    #[test]
    fn decimal_text_never_panics(text in "[-+]?[0-9]{0,45}(\\.[0-9]{0,45})?([eE][-+]?[0-9]{1,4})?", n in any::<i64>()) {
        let _ = quarry_federation::decimal::parse(&text, 9);
        prop_assert_eq!(quarry_federation::decimal::parse(&n.to_string(), 0), Some(i128::from(n)));
    }
}

/// Requests of the Athena API (`quarry serve`): every operation, with JSON of any shape under
/// the member names the operations read.
const OPERATIONS: [&str; 18] = [
    "StartQueryExecution",
    "GetQueryExecution",
    "BatchGetQueryExecution",
    "ListQueryExecutions",
    "StopQueryExecution",
    "GetQueryResults",
    "GetQueryRuntimeStatistics",
    "ListDataCatalogs",
    "GetDataCatalog",
    "CreateDataCatalog",
    "DeleteDataCatalog",
    "ListDatabases",
    "GetDatabase",
    "ListTableMetadata",
    "GetTableMetadata",
    "CreateWorkGroup",
    "GetWorkGroup",
    "ListWorkGroups",
];

const MEMBERS: [&str; 22] = [
    "QueryString",
    "QueryExecutionId",
    "QueryExecutionIds",
    "QueryExecutionContext",
    "Database",
    "Catalog",
    "CatalogName",
    "DatabaseName",
    "TableName",
    "ResultConfiguration",
    "OutputLocation",
    "ExecutionParameters",
    "WorkGroup",
    "Name",
    "Type",
    "Parameters",
    "Configuration",
    "BytesScannedCutoffPerQuery",
    "NextToken",
    "MaxResults",
    "StatementName",
    "ClientRequestToken",
];

/// JSON of any shape, its object keys mostly the API's member names.
fn api_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("SELECT 1"),
            Just("s3://bucket/out/"),
            Just("primary"),
            Just("awsdatacatalog"),
            Just("lambda:f"),
            Just("00000000-0000-0000-0000-000000000000"),
            Just("../../etc"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![
            proptest::sample::select(MEMBERS.to_vec()).prop_map(str::to_string),
            "\\PC{0,8}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An Athena API over an empty embedded catalog, results in a temporary folder.
fn api() -> (quarry_server::Api, tempfile::TempDir) {
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog =
        Arc::new(quarry_catalog::SqliteCatalog::open(dir.path().join("c.db")).expect("catalog"));
    let stores = Arc::new(quarry_query::ObjectStores::new());
    let engine = quarry_query::Engine::new(
        catalog.clone(),
        Arc::clone(&stores),
        quarry_query::EngineConfig::default(),
    )
    .with_history(catalog.clone());
    let service =
        quarry_server::Service::new(engine, stores, catalog, dir.path().join("results"), 2)
            .expect("service");
    let api = quarry_server::Api::new(service, quarry_server::ApiConfig::default()).expect("api");
    (api, dir)
}

proptest! {
    #![proptest_config(config())]

    /// Any operation with any JSON body answers (a result or an Athena error), never a panic.
    #[test]
    fn api_requests_never_panic(
        operation in proptest::sample::select(OPERATIONS.to_vec()),
        input in api_json(),
    ) {
        thread_local! {
            static API: (tokio::runtime::Runtime, quarry_server::Api, tempfile::TempDir) = {
                let runtime = tokio::runtime::Runtime::new().expect("runtime");
                let (api, dir) = runtime.block_on(async { api() });
                (runtime, api, dir)
            };
        }
        let input = match input {
            serde_json::Value::Object(m) => serde_json::Value::Object(m),
            other => serde_json::json!({ "QueryString": other }),
        };
        API.with(|(runtime, api, _)| {
            let _ = runtime.block_on(api.call(operation, input));
        });
    }

    /// Signature headers and credentials files of any text: verified or refused, never a panic.
    #[test]
    fn sigv4_never_panics(
        authorization in "(AWS4-HMAC-SHA256 Credential=[a-zA-Z0-9/_-]{0,60}, SignedHeaders=[a-z;-]{0,30}, Signature=[0-9a-f]{0,64}|\\PC{0,120})",
        date in "(20[0-9]{6}T[0-9]{6}Z|\\PC{0,20})",
        path in "\\PC{0,30}",
        query in "\\PC{0,30}",
        file in "\\PC{0,200}",
    ) {
        let _ = quarry_server::Credentials::parse(&file);
        let credentials = quarry_server::Credentials::parse(
            "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = secret\n",
        )
        .expect("credentials");
        let headers = vec![
            ("authorization".to_string(), authorization),
            ("x-amz-date".to_string(), date),
            ("host".to_string(), "localhost".to_string()),
        ];
        let _ = credentials.verify("POST", &path, &query, &headers, b"{}", chrono::Utc::now());
    }
}
