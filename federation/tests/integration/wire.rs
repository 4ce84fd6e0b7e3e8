//! The wire format. The fixtures under `tests/fixtures` are Quarry's own, written in the text the
//! SDK's Jackson mapper produces (its golden files use `INDENT_OUTPUT`); the field orders below
//! are read from the SDK's `serde/v2..v6` classes (`assertFieldName` sequences), not from Quarry's
//! structs, so a reordered struct fails here.

use std::sync::Arc;

use arrow::array::{Float64Array, Int32Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use indexmap::IndexMap;
use quarry_federation::constraints::{Domain, Endpoint, Range, Value, Values};
use quarry_federation::ipc::Framing;
use quarry_federation::wire::*;
use serde_json::Value as Json;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim_end()
        .to_owned()
}

fn identity() -> Identity {
    Identity::new(
        Some("111122223333".into()),
        Some("arn:aws:iam::111122223333:user/quarry".into()),
    )
}

/// Parses the fixture, checks it re-serializes to the same text, and returns the value.
fn golden<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    name: &str,
    expected: &T,
) {
    let text = fixture(name);
    let parsed: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(&parsed, expected, "{name}: parsed value");
    assert_eq!(
        to_jackson_pretty(expected).expect("serialize"),
        text,
        "{name}: serialized text"
    );
}

#[test]
fn messages_without_arrow_match_their_golden_text_both_ways() {
    golden(
        "PingRequest.json",
        &Request::PingRequest(PingRequest {
            identity: identity(),
            catalog_name: "lambda:quarry-pg".into(),
            query_id: "q-0001".into(),
        }),
    );
    golden(
        "PingResponse.json",
        &Response::PingResponse(PingResponse {
            catalog_name: "lambda:quarry-pg".into(),
            query_id: "q-0001".into(),
            source_type: "postgres".into(),
            capabilities: 24,
            ser_de_version: 4,
        }),
    );
    golden(
        "ListTablesRequest.json",
        &Request::ListTablesRequest(ListTablesRequest {
            identity: identity(),
            query_id: "q-0001".into(),
            catalog_name: "lambda:quarry-pg".into(),
            schema_name: Some("public".into()),
            next_token: None,
            page_size: 1000,
        }),
    );
    golden(
        "ListTablesResponse.json",
        &Response::ListTablesResponse(ListTablesResponse {
            tables: vec![
                TableName::new("public", "customers"),
                TableName::new("public", "orders"),
            ],
            catalog_name: "lambda:quarry-pg".into(),
            next_token: Some("\"public\".orders".into()),
        }),
    );
    let get_table = Request::GetTableRequest(GetTableRequest {
        identity: identity(),
        query_id: "q-0001".into(),
        catalog_name: "lambda:quarry-pg".into(),
        table_name: TableName::new("public", "orders"),
        query_passthrough_arguments: None,
    });
    golden("GetTableRequest.v5.json", &get_table.clone().at_version(5));
    // Before version 5 the field does not exist: a v4 connector would refuse it.
    assert!(
        !to_jackson_pretty(&get_table.at_version(4))
            .expect("v4")
            .contains("queryPassthroughArguments")
    );
    golden(
        "GetSplitsResponse.json",
        &Response::GetSplitsResponse(GetSplitsResponse {
            catalog_name: "lambda:quarry-pg".into(),
            splits: vec![
                Split {
                    spill_location: SpillLocation::S3SpillLocation {
                        bucket: "quarry-spill".into(),
                        key: "athena-federation-spill/q-0001/3b1d".into(),
                        directory: true,
                    },
                    encryption_key: Some(EncryptionKey {
                        key: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
                        nonce: "AAECAwQFBgcICQoL".into(),
                    }),
                    properties: IndexMap::from([
                        ("partition_schema_name".to_owned(), "public".to_owned()),
                        ("partition_name".to_owned(), "orders_2026".to_owned()),
                    ]),
                },
                Split {
                    spill_location: SpillLocation::S3SpillLocation {
                        bucket: "quarry-spill".into(),
                        key: "athena-federation-spill/q-0001/9f02".into(),
                        directory: true,
                    },
                    encryption_key: None,
                    properties: IndexMap::new(),
                },
            ],
            continuation_token: Some("1000".into()),
        }),
    );
    let sub = |t: &str| OptimizationSubType {
        sub_type: t.into(),
        properties: vec![],
    };
    golden(
        "GetDataSourceCapabilitiesResponse.json",
        &Response::GetDataSourceCapabilitiesResponse(GetDataSourceCapabilitiesResponse {
            catalog_name: "lambda:quarry-pg".into(),
            capabilities: IndexMap::from([
                (
                    "supports_filter_pushdown".to_owned(),
                    vec![sub("sorted_range_set")],
                ),
                (
                    "supports_limit_pushdown".to_owned(),
                    vec![sub("integer_constant")],
                ),
            ]),
        }),
    );
}

#[test]
fn a_function_error_is_read_as_the_connectors_error() {
    let err =
        parse_response(fixture("FunctionError.json").as_bytes()).expect_err("an error payload");
    assert!(
        err.to_string()
            .contains("relation \"public.missing\" does not exist"),
        "{err}"
    );
}

#[test]
fn unknown_trailing_fields_are_ignored() {
    let mut text = fixture("PingResponse.json");
    text.truncate(text.len() - 2);
    text.push_str(",\n  \"newField\" : \"later SDKs may add this\"\n}");
    let parsed = parse_response(text.as_bytes()).expect("forwards compatible");
    assert!(matches!(
        parsed,
        Response::PingResponse(PingResponse {
            ser_de_version: 4,
            ..
        })
    ));
    // A serde-1 connector has no serDeVersion.
    let old = r#"{"@type":"PingResponse","catalogName":"c","queryId":"q","sourceType":"t","capabilities":23}"#;
    assert!(matches!(
        parse_response(old.as_bytes()).expect("v1"),
        Response::PingResponse(PingResponse {
            ser_de_version: 1,
            ..
        })
    ));
}

/// The SDK's field order per object, by `@type` or, for untyped objects, by the key they sit under.
fn java_order(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "identity" => &[
            "id",
            "principal",
            "account",
            "arn",
            "tags",
            "groups",
            "configOptions",
        ],
        "tableName" => &["schemaName", "tableName"],
        "PingRequest" => &["@type", "identity", "catalogName", "queryId"],
        "PingResponse" => &[
            "@type",
            "catalogName",
            "queryId",
            "sourceType",
            "capabilities",
            "serDeVersion",
        ],
        "ListSchemasRequest" | "GetDataSourceCapabilitiesRequest" => {
            &["@type", "identity", "queryId", "catalogName"]
        }
        "ListTablesRequest" => &[
            "@type",
            "identity",
            "queryId",
            "catalogName",
            "schemaName",
            "nextToken",
            "pageSize",
        ],
        "ListTablesResponse" => &["@type", "tables", "catalogName", "nextToken"],
        "GetTableResponse" => &[
            "@type",
            "catalogName",
            "tableName",
            "schema",
            "partitionColumns",
        ],
        "GetTableLayoutRequest" => &[
            "@type",
            "identity",
            "queryId",
            "catalogName",
            "tableName",
            "constraints",
            "schema",
            "partitionColumns",
        ],
        "GetTableLayoutResponse" => &["@type", "catalogName", "tableName", "partitions"],
        "GetSplitsRequest" => &[
            "@type",
            "identity",
            "queryId",
            "catalogName",
            "tableName",
            "partitions",
            "partitionColumns",
            "constraints",
            "continuationToken",
        ],
        "GetSplitsResponse" => &["@type", "catalogName", "splits", "continuationToken"],
        "ReadRecordsRequest" => &[
            "@type",
            "identity",
            "queryId",
            "catalogName",
            "tableName",
            "schema",
            "split",
            "constraints",
            "maxBlockSize",
            "maxInlineBlockSize",
        ],
        "ReadRecordsResponse" => &["@type", "catalogName", "records"],
        "RemoteReadRecordsResponse" => &[
            "@type",
            "catalogName",
            "schema",
            "remoteBlocks",
            "encryptionKey",
        ],
        "split" | "splits" => &["spillLocation", "encryptionKey", "properties"],
        "S3SpillLocation" => &["@type", "bucket", "key", "directory"],
        "encryptionKey" => &["key", "nonce"],
        "partitions" | "records" | "valueBlock" => &["aId", "schema", "records"],
        "EquatableValueSet" => &["@type", "valueBlock", "whiteList", "nullAllowed"],
        "SortedRangeSet" => &["@type", "type", "ranges", "nullAllowed"],
        "AllOrNoneValueSet" => &["@type", "type", "all", "nullAllowed"],
        "ranges" => &["low", "high"],
        "low" | "high" => &["valueBlock", "bound", "nullValue"],
        "Int" => &["@type", "bitWidth", "isSigned"],
        "FloatingPoint" => &["@type", "precision"],
        "Decimal" => &["@type", "precision", "scale"],
        "Timestamp" => &["@type", "unit", "timezone"],
        _ => return None,
    })
}

/// Checks every object's keys against the SDK's order (constraints by version), returning how
/// many objects were checked.
fn check_order(value: &Json, under: &str, version: u32, path: &str) -> usize {
    let mut checked = 0;
    match value {
        Json::Object(map) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            let kind = map.get("@type").and_then(Json::as_str).unwrap_or(under);
            let expected: Option<Vec<&str>> = if under == "constraints" {
                let mut c = vec!["summary"];
                if version >= 4 {
                    c.extend(["expression", "orderByClause", "limit"]);
                }
                if version >= 5 {
                    c.push("queryPassthroughArguments");
                }
                if version >= 6 {
                    c.push("queryPlan");
                }
                Some(c)
            } else {
                java_order(kind).map(<[&str]>::to_vec)
            };
            if let Some(expected) = expected {
                assert_eq!(keys, expected, "{path} ({kind}) at serde {version}");
                checked += 1;
            }
            for (k, v) in map {
                // Maps keyed by data (summary, properties, tags) hold their values under the map's key.
                let child_under = if under == "summary" { "" } else { k.as_str() };
                checked += check_order(v, child_under, version, &format!("{path}.{k}"));
            }
        }
        Json::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                checked += check_order(v, under, version, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
    checked
}

fn sample_batch() -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("year", DataType::Int32, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int32Array::from(vec![2016, 2017])),
            Arc::new(StringArray::from(vec![Some("a"), None])),
            Arc::new(Float64Array::from(vec![1.5, -2.0])),
        ],
    )
    .expect("batch")
}

fn sample_constraints(framing: Framing) -> Constraints {
    let ranges = Domain {
        data_type: DataType::Float64,
        values: Values::Ranges(vec![Range {
            low: Some(Endpoint {
                value: Value::Float(-10000.0),
                inclusive: false,
            }),
            high: None,
        }]),
        null_allowed: false,
    };
    let set = Domain {
        data_type: DataType::Utf8,
        values: Values::Set {
            values: vec![Value::Text("a".into())],
            white_list: false,
        },
        null_allowed: true,
    };
    let none = Domain {
        data_type: DataType::Int32,
        values: Values::AllOrNone(false),
        null_allowed: true,
    };
    Constraints {
        summary: IndexMap::from([
            (
                "score".to_owned(),
                ranges.to_value_set(framing).expect("ranges"),
            ),
            ("name".to_owned(), set.to_value_set(framing).expect("set")),
            ("year".to_owned(), none.to_value_set(framing).expect("none")),
        ]),
        ..Default::default()
    }
}

#[test]
fn every_message_keeps_the_sdk_field_order_at_every_version() {
    for version in MIN_SERDE_VERSION..=SERDE_VERSION {
        let framing = Framing::of(version);
        let batch = sample_batch();
        let block = Block::encode(&batch, framing).expect("block");
        let schema =
            quarry_federation::ipc::encode_schema(batch.schema_ref(), framing).expect("schema");
        let split = Split {
            spill_location: SpillLocation::S3SpillLocation {
                bucket: "b".into(),
                key: "k".into(),
                directory: true,
            },
            encryption_key: Some(quarry_federation::ipc::new_key()),
            properties: IndexMap::from([("p".to_owned(), "1".to_owned())]),
        };
        let table = TableName::new("s", "t");
        let messages: Vec<Json> = vec![
            serde_json::to_value(
                Request::GetTableLayoutRequest(GetTableLayoutRequest {
                    identity: identity(),
                    query_id: "q".into(),
                    catalog_name: "c".into(),
                    table_name: table.clone(),
                    constraints: sample_constraints(framing),
                    schema: schema.clone(),
                    partition_columns: vec!["year".into()],
                })
                .at_version(version),
            ),
            serde_json::to_value(
                Request::GetSplitsRequest(GetSplitsRequest {
                    identity: identity(),
                    query_id: "q".into(),
                    catalog_name: "c".into(),
                    table_name: table.clone(),
                    partitions: block.clone(),
                    partition_columns: vec!["year".into()],
                    constraints: sample_constraints(framing),
                    continuation_token: None,
                })
                .at_version(version),
            ),
            serde_json::to_value(
                Request::ReadRecordsRequest(ReadRecordsRequest {
                    identity: identity(),
                    query_id: "q".into(),
                    catalog_name: "c".into(),
                    table_name: table.clone(),
                    schema: schema.clone(),
                    split: split.clone(),
                    constraints: sample_constraints(framing),
                    max_block_size: MAX_BLOCK_SIZE,
                    max_inline_block_size: MAX_INLINE_BLOCK_SIZE,
                })
                .at_version(version),
            ),
            serde_json::to_value(Response::GetTableResponse(GetTableResponse {
                catalog_name: "c".into(),
                table_name: table.clone(),
                schema: schema.clone(),
                partition_columns: vec![],
            })),
            serde_json::to_value(Response::GetTableLayoutResponse(GetTableLayoutResponse {
                catalog_name: "c".into(),
                table_name: table.clone(),
                partitions: block.clone(),
            })),
            serde_json::to_value(Response::ReadRecordsResponse(ReadRecordsResponse {
                catalog_name: "c".into(),
                records: block.clone(),
            })),
            serde_json::to_value(Response::RemoteReadRecordsResponse(
                RemoteReadRecordsResponse {
                    catalog_name: "c".into(),
                    schema: schema.clone(),
                    remote_blocks: vec![SpillLocation::S3SpillLocation {
                        bucket: "b".into(),
                        key: "k.0".into(),
                        directory: false,
                    }],
                    encryption_key: split.encryption_key.clone(),
                },
            )),
        ]
        .into_iter()
        .map(|m| m.expect("json"))
        .collect();
        for message in &messages {
            let checked = check_order(message, "", version, "$");
            assert!(checked >= 2, "too few objects checked in {message}");
            // The sizes are strings, as Java writes them.
            if let Some(size) = message.get("maxBlockSize") {
                assert_eq!(size, &Json::String(MAX_BLOCK_SIZE.to_string()));
            }
            // And the message parses back to what was sent, Arrow included.
            let text = serde_json::to_vec(message).expect("bytes");
            if message["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("Request"))
            {
                let back = parse_request(&text).expect("request parses");
                assert_eq!(
                    back.version().max(3),
                    version.max(3),
                    "version inferred from {}",
                    message["@type"]
                );
            } else {
                parse_response(&text).expect("response parses");
            }
        }
        // Blocks keep their rows through either framing.
        assert_eq!(block.decode().expect("decode"), batch);
        assert_eq!(
            quarry_federation::ipc::framing_of(&block.schema).expect("framing"),
            framing
        );
    }
}

/// The SDK's own golden files, when a checkout of awslabs/aws-athena-query-federation is named
/// by `QUARRY_SDK_FIXTURES` (its `athena-federation-sdk/src/test/resources/serde` folder): each
/// parses, its Arrow payloads decode, and it serializes back to the same JSON value (Arrow
/// payloads compared after decoding, since arrow-rs lays flatbuffers out differently).
#[test]
fn the_sdks_own_fixtures_when_present() {
    let Ok(root) = std::env::var("QUARRY_SDK_FIXTURES") else {
        eprintln!("QUARRY_SDK_FIXTURES not set: the SDK's fixtures were not checked");
        return;
    };
    let mut checked = 0;
    for entry in walk(std::path::Path::new(&root)) {
        let name = entry.display().to_string();
        if name.contains("UserDefinedFunction") || name.ends_with("LambdaFunctionException.json") {
            continue;
        }
        let text = std::fs::read_to_string(&entry).expect("read");
        let original: Json = serde_json::from_str(&text).expect("json");
        let is_request = original["@type"]
            .as_str()
            .is_some_and(|t| t.ends_with("Request"));
        let reserialized = if is_request {
            serde_json::to_value(
                parse_request(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}")),
            )
            .expect("value")
        } else {
            serde_json::to_value(
                parse_response(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}")),
            )
            .expect("value")
        };
        if name.contains("ForwardsCompatible") {
            // Parsed with the unknown trailing field ignored, as the SDK does.
            checked += 1;
            continue;
        }
        assert_eq!(reserialized, original, "{name}");
        decode_arrow(&reserialized, &name);
        let text_again = to_jackson_pretty(&reserialized).expect("pretty");
        assert_eq!(text_again.trim_end(), text.trim_end(), "{name}: text");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures found under {root}");
}

/// Decodes every Arrow payload of a message (blocks and schemas).
fn decode_arrow(value: &Json, name: &str) {
    match value {
        Json::Object(map) => {
            if let (Some(Json::String(schema)), Some(Json::String(records))) =
                (map.get("schema"), map.get("records"))
            {
                quarry_federation::ipc::decode_block(schema, records)
                    .unwrap_or_else(|e| panic!("{name}: block: {e}"));
            } else if let Some(Json::String(schema)) = map.get("schema") {
                quarry_federation::ipc::decode_schema(schema)
                    .unwrap_or_else(|e| panic!("{name}: schema: {e}"));
            }
            map.values().for_each(|v| decode_arrow(v, name));
        }
        Json::Array(items) => items.iter().for_each(|v| decode_arrow(v, name)),
        _ => {}
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("fixture folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    out.sort();
    out
}
