//! The query function: `{ "sql", "database", "output_location"?, "max_bytes_scanned"? }` in,
//! an Athena-like execution summary out (id, state, the first rows inline, result location,
//! bytes scanned, billed bytes, cost, error). The same JSON also arrives over HTTP from an API
//! Gateway (payload 2.0) or a Lambda function URL, answered as an HTTP response.

use aws_lambda_events::encodings::Base64Data;
use quarry_catalog::QueryState;
use quarry_query::results::{ResultFiles, write_result};
use quarry_query::{OutputFormat, QueryOutput, QueryRequest, render};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{FunctionError, Resources};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryEvent {
    pub sql: String,
    #[serde(default)]
    pub database: Option<String>,
    /// `s3://bucket/results/` for `<query_id>.csv` + `<query_id>.metadata.json`; defaults to
    /// `QUARRY_RESULTS_LOCATION`.
    #[serde(default)]
    pub output_location: Option<String>,
    #[serde(default)]
    pub max_bytes_scanned: Option<u64>,
    /// Rows returned inline (default `QUARRY_INLINE_ROWS`, 100).
    #[serde(default)]
    pub max_rows: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueryResponse {
    pub query_id: String,
    pub state: QueryState,
    pub columns: Vec<ColumnInfo>,
    /// The first rows, as JSON objects.
    pub rows: Vec<Value>,
    pub row_count: u64,
    /// Whether `rows` holds fewer rows than the result.
    pub truncated: bool,
    pub result_location: Option<ResultFiles>,
    pub bytes_scanned: u64,
    pub billed_bytes: u64,
    pub cost_usd: f64,
    pub elapsed_ms: u64,
    pub error: Option<String>,
    /// Athena's category of the error (`USER`, `INTERNAL`, `RETRYABLE`, `LIMIT_EXCEEDED`,
    /// `CANCELLED`), so a caller can tell its mistake from a failure worth retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_category: Option<String>,
    /// What a CTAS / INSERT / UNLOAD wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<quarry_query::WriteSummary>,
}

/// Run one statement. SQL errors and scan-limit cancellations are answered (state FAILED or
/// CANCELLED, with the error), not raised: the caller's request was handled.
pub async fn run(res: &Resources, event: QueryEvent) -> Result<QueryResponse, FunctionError> {
    let mut request = QueryRequest::new(event.sql).with_database(event.database);
    request.max_bytes_scanned = event.max_bytes_scanned.or(res.settings.max_bytes_scanned);
    let out = res.engine.run(request).await;
    let location = event
        .output_location
        .or_else(|| res.settings.results_location.clone());
    let result_location =
        match (&location, out.succeeded()) {
            (Some(loc), true) => Some(write_result(&res.stores, loc, &out).await.map_err(|e| {
                FunctionError::Object {
                    object: loc.clone(),
                    reason: crate::chain(&e),
                    retryable: true,
                }
            })?),
            _ => None,
        };
    let limit = event.max_rows.unwrap_or(res.settings.inline_rows);
    response(&out, limit, result_location)
}

fn response(
    out: &QueryOutput,
    limit: usize,
    result_location: Option<ResultFiles>,
) -> Result<QueryResponse, FunctionError> {
    let columns = out
        .schema
        .fields()
        .iter()
        .map(|f| ColumnInfo {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
        })
        .collect();
    let mut head = Vec::new();
    let mut taken = 0;
    for b in &out.batches {
        if taken >= limit {
            break;
        }
        let n = b.num_rows().min(limit - taken);
        head.push(b.slice(0, n));
        taken += n;
    }
    let r = &out.record;
    let unrenderable = |reason: String| FunctionError::Object {
        object: format!("the result of query {}", r.query_id),
        reason: format!("cannot be returned as JSON: {reason}"),
        retryable: false,
    };
    let json =
        render(&out.schema, &head, OutputFormat::Json).map_err(|e| unrenderable(e.to_string()))?;
    let rows: Vec<Value> = serde_json::from_str(&json).map_err(|e| unrenderable(e.to_string()))?;
    Ok(QueryResponse {
        query_id: r.query_id.clone(),
        state: r.state,
        columns,
        truncated: (taken as u64) < r.rows,
        rows,
        row_count: r.rows,
        result_location,
        bytes_scanned: r.bytes_scanned,
        billed_bytes: r.billed_bytes,
        cost_usd: r.cost_usd,
        elapsed_ms: out.elapsed_ms(),
        error: r.error.clone(),
        error_category: out.error_category.map(|c| c.as_str().to_string()),
        written: out.written.clone(),
    })
}

/// The function's entry point: a direct invocation, or an HTTP event from API Gateway v2 or a
/// function URL (recognised by its `requestContext.http`).
pub async fn handle(res: &Resources, event: Value) -> Result<Value, FunctionError> {
    if event.pointer("/requestContext/http").is_some() {
        return Ok(http(res, &event).await);
    }
    let event: QueryEvent = serde_json::from_value(event).map_err(|e| {
        FunctionError::BadEvent(format!(
            "{e}; expected {{\"sql\": \"...\", \"database\": \"...\"}}"
        ))
    })?;
    let response = run(res, event).await?;
    serde_json::to_value(response).map_err(|e| FunctionError::BadEvent(e.to_string()))
}

fn http_response(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "isBase64Encoded": false,
        "body": body.to_string(),
    })
}

async fn http(res: &Resources, event: &Value) -> Value {
    let body = event.get("body").and_then(Value::as_str).unwrap_or("");
    let body = if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        // Base64Data decodes with the base64 crate as it deserializes.
        match serde_json::from_value::<Base64Data>(Value::String(body.to_string())) {
            Ok(b) => String::from_utf8_lossy(&b.0).into_owned(),
            Err(_) => {
                return http_response(400, &json!({"error": "body is not valid base64"}));
            }
        }
    } else {
        body.to_string()
    };
    // A GET carries the statement in the query string (?sql=...&database=...).
    let parsed = if body.trim().is_empty() {
        let q = event
            .get("queryStringParameters")
            .cloned()
            .unwrap_or(Value::Null);
        serde_json::from_value::<QueryEvent>(q)
    } else {
        serde_json::from_str::<QueryEvent>(&body)
    };
    let request = match parsed {
        Ok(r) => r,
        Err(e) => {
            return http_response(
                400,
                &json!({"error": format!("{e}; send {{\"sql\": \"...\", \"database\": \"...\"}}")}),
            );
        }
    };
    match run(res, request).await {
        Ok(r) => {
            let status = match r.state {
                QueryState::Succeeded => 200,
                _ => 400,
            };
            http_response(status, &serde_json::to_value(r).unwrap_or(Value::Null))
        }
        Err(e) => http_response(
            if e.retryable() { 503 } else { 500 },
            &json!({"error": e.to_string(), "retryable": e.retryable()}),
        ),
    }
}
