//! Sample events from `lambda/events/`, adjusted per test.

use serde_json::{Value, json};

pub fn event(name: &str) -> Value {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Set `pointer` in `v` to `value`.
pub fn set(v: &mut Value, pointer: &str, value: Value) {
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} is in the sample event")) = value;
}

/// The sample S3 `ObjectCreated` notification for `key` (URL-encoded as S3 sends it) in `bucket`.
#[allow(dead_code)] // each test binary uses its own subset
pub fn object_created(bucket: &str, key: &str) -> Value {
    let mut e = event("s3-object-created.json");
    set(&mut e, "/Records/0/s3/bucket/name", json!(bucket));
    set(&mut e, "/Records/0/s3/object/key", json!(key));
    e
}
