//! Arrow on the wire: one IPC message per base64 string, no stream or file wrapper.
//!
//! Serde version 2 writes the *legacy* framing (an int32 metadata length, metadata version V4);
//! version 3 and later the current one (`0xFFFFFFFF`, then the length, metadata V5). Both are read.
//! Spilled blocks are one legacy-framed record batch message each, AES-256-GCM encrypted with
//! the tag appended, as the SDK's `AesGcmBlockCrypto` writes them.

use std::io::Cursor;
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::MetadataVersion;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions, write_message};
use arrow::record_batch::RecordBatch;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::wire::EncryptionKey;
use crate::{Error, Result};

/// How an IPC message is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Arrow before 0.15 (serde 2, spill files): length prefix only, metadata V4.
    Legacy,
    /// `0xFFFFFFFF` continuation marker, metadata V5 (serde 3 and later).
    Continuation,
}

impl Framing {
    /// The framing a serde version writes.
    pub fn of(version: u32) -> Framing {
        if version <= 2 {
            Framing::Legacy
        } else {
            Framing::Continuation
        }
    }

    fn options(self) -> Result<IpcWriteOptions> {
        let (legacy, version) = match self {
            Framing::Legacy => (true, MetadataVersion::V4),
            Framing::Continuation => (false, MetadataVersion::V5),
        };
        IpcWriteOptions::try_new(8, legacy, version).map_err(|e| arrow_error("IPC options", e))
    }
}

fn arrow_error(what: &str, source: arrow::error::ArrowError) -> Error {
    Error::Arrow {
        what: what.to_owned(),
        source,
    }
}

fn protocol(what: &str, message: impl Into<String>) -> Error {
    Error::Protocol {
        what: what.to_owned(),
        message: message.into(),
    }
}

/// A schema as one base64 IPC schema message. Custom metadata is kept.
pub fn encode_schema(schema: &Schema, framing: Framing) -> Result<String> {
    let options = framing.options()?;
    let mut tracker = DictionaryTracker::new(false);
    let encoded =
        IpcDataGenerator {}.schema_to_bytes_with_dictionary_tracker(schema, &mut tracker, &options);
    let mut out = Vec::new();
    write_message(&mut out, encoded, &options).map_err(|e| arrow_error("schema message", e))?;
    Ok(STANDARD.encode(out))
}

/// A batch as one base64 IPC record batch message (no dictionaries: the SDK uses none).
pub fn encode_batch(batch: &RecordBatch, framing: Framing) -> Result<String> {
    Ok(STANDARD.encode(batch_message(batch, framing)?))
}

fn batch_message(batch: &RecordBatch, framing: Framing) -> Result<Vec<u8>> {
    let options = framing.options()?;
    let mut tracker = DictionaryTracker::new(false);
    let (dictionaries, encoded) = IpcDataGenerator {}
        .encode(batch, &mut tracker, &options, &mut Default::default())
        .map_err(|e| arrow_error("record batch message", e))?;
    if !dictionaries.is_empty() {
        return Err(protocol(
            "record batch",
            "dictionary-encoded columns cannot be sent; cast them to their value type",
        ));
    }
    let mut out = Vec::new();
    write_message(&mut out, encoded, &options)
        .map_err(|e| arrow_error("record batch message", e))?;
    Ok(out)
}

fn decode_base64(what: &str, text: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(text.trim())
        .map_err(|e| protocol(what, format!("not base64: {e}")))
}

/// The framing of a base64 IPC message.
pub fn framing_of(base64: &str) -> Result<Framing> {
    let bytes = decode_base64("Arrow message", base64)?;
    Ok(if bytes.starts_with(&[0xFF, 0xFF, 0xFF, 0xFF]) {
        Framing::Continuation
    } else {
        Framing::Legacy
    })
}

/// Decodes a base64 IPC schema message.
pub fn decode_schema(base64: &str) -> Result<SchemaRef> {
    let bytes = decode_base64("schema", base64)?;
    let reader = StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| arrow_error("schema message", e))?;
    Ok(reader.schema())
}

/// Decodes a block: its schema message and, unless empty, its record batch message.
pub fn decode_block(schema: &str, records: &str) -> Result<RecordBatch> {
    let mut bytes = decode_base64("block schema", schema)?;
    if records.trim().is_empty() {
        let schema = decode_schema(schema)?;
        return Ok(RecordBatch::new_empty(schema));
    }
    bytes.extend(decode_base64("block records", records)?);
    read_one(bytes, "block")
}

fn read_one(bytes: Vec<u8>, what: &str) -> Result<RecordBatch> {
    let mut reader =
        StreamReader::try_new(Cursor::new(bytes), None).map_err(|e| arrow_error(what, e))?;
    let schema = reader.schema();
    match reader.next() {
        Some(batch) => batch.map_err(|e| arrow_error(what, e)),
        None => Ok(RecordBatch::new_empty(schema)),
    }
}

/// Encrypts a batch the way the SDK spills it: a legacy-framed record batch message,
/// AES-256-GCM with the key's nonce and the 16-byte tag appended; plain when there is no key.
pub fn seal_spill(batch: &RecordBatch, key: Option<&EncryptionKey>) -> Result<Vec<u8>> {
    let plain = batch_message(batch, Framing::Legacy)?;
    let Some(key) = key else { return Ok(plain) };
    let (cipher, nonce) = cipher_of(key)?;
    cipher
        .encrypt(Nonce::from_slice(&nonce), plain.as_slice())
        .map_err(|_| protocol("spilled block", "could not encrypt"))
}

/// Reads a spilled block: decrypts it when there is a key, then reads it against `schema`.
pub fn open_spill(
    schema: &SchemaRef,
    bytes: &[u8],
    key: Option<&EncryptionKey>,
    object: &str,
) -> Result<RecordBatch> {
    let plain = match key {
        None => bytes.to_vec(),
        Some(key) => {
            let (cipher, nonce) = cipher_of(key)?;
            cipher.decrypt(Nonce::from_slice(&nonce), bytes).map_err(|_| {
                protocol(
                    object,
                    "spilled block does not decrypt with the split's key (wrong key, or the object was changed or truncated)",
                )
            })?
        }
    };
    let mut stream = STANDARD
        .decode(encode_schema(schema, Framing::Legacy)?)
        .map_err(|e| protocol(object, e.to_string()))?;
    stream.extend(plain);
    read_one(stream, object)
}

fn cipher_of(key: &EncryptionKey) -> Result<(Aes256Gcm, Vec<u8>)> {
    let raw = decode_base64("encryption key", &key.key)?;
    let nonce = decode_base64("encryption nonce", &key.nonce)?;
    if nonce.len() != 12 {
        return Err(protocol(
            "encryption key",
            format!("the nonce has {} bytes; AES-GCM needs 12", nonce.len()),
        ));
    }
    let cipher = Aes256Gcm::new_from_slice(&raw).map_err(|_| {
        protocol(
            "encryption key",
            format!("the key has {} bytes; AES-256 needs 32", raw.len()),
        )
    })?;
    Ok((cipher, nonce))
}

/// A fresh random key and nonce for spilling, as the SDK's `LocalKeyFactory` makes them.
pub fn new_key() -> EncryptionKey {
    let key = Aes256Gcm::generate_key(aes_gcm::aead::OsRng);
    let nonce = Aes256Gcm::generate_nonce(aes_gcm::aead::OsRng);
    EncryptionKey {
        key: STANDARD.encode(key),
        nonce: STANDARD.encode(nonce),
    }
}

/// The batch with its schema replaced by `schema` when they differ only in metadata.
pub fn with_schema(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    RecordBatch::try_new(Arc::clone(schema), batch.columns().to_vec())
        .map_err(|e| arrow_error("record batch", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::{DataType, Field};
    use std::collections::HashMap;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("year", DataType::Int32, true),
            Field::new("name", DataType::Utf8, true),
        ])
        .with_metadata(HashMap::from([(
            "redis-endpoint".to_owned(),
            "localhost:6379".to_owned(),
        )]));
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int32Array::from(vec![Some(2016), None])),
                Arc::new(StringArray::from(vec![Some("a"), Some("b")])),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn both_framings_round_trip_with_metadata() {
        for framing in [Framing::Legacy, Framing::Continuation] {
            let b = batch();
            let schema = encode_schema(b.schema_ref(), framing).expect("schema");
            let records = encode_batch(&b, framing).expect("records");
            assert_eq!(framing_of(&schema).expect("framing"), framing);
            let back = decode_block(&schema, &records).expect("decode");
            assert_eq!(back, b);
            assert_eq!(
                back.schema()
                    .metadata()
                    .get("redis-endpoint")
                    .map(String::as_str),
                Some("localhost:6379")
            );
            let empty = decode_block(&schema, "").expect("empty");
            assert_eq!(empty.num_rows(), 0);
            assert_eq!(empty.schema(), b.schema());
        }
    }

    #[test]
    fn spills_seal_and_open_and_refuse_the_wrong_key() {
        let b = batch();
        let key = new_key();
        let sealed = seal_spill(&b, Some(&key)).expect("seal");
        // AES-GCM: ciphertext is the plaintext length plus the 16-byte tag.
        assert_eq!(
            sealed.len(),
            seal_spill(&b, None).expect("plain").len() + 16
        );
        assert_eq!(
            open_spill(b.schema_ref(), &sealed, Some(&key), "s3://b/k.0").expect("open"),
            b
        );
        let other = new_key();
        let err = open_spill(b.schema_ref(), &sealed, Some(&other), "s3://b/k.0")
            .expect_err("wrong key")
            .to_string();
        assert!(
            err.contains("s3://b/k.0") && err.contains("does not decrypt"),
            "{err}"
        );
        let mut cut = sealed.clone();
        cut.truncate(sealed.len() - 3);
        assert!(open_spill(b.schema_ref(), &cut, Some(&key), "s3://b/k.0").is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_schema("not base64!").is_err());
        assert!(decode_schema(&STANDARD.encode(b"\x10\x00\x00\x00garbage-garbage!")).is_err());
        let key = EncryptionKey {
            key: STANDARD.encode([0u8; 5]),
            nonce: STANDARD.encode([0u8; 12]),
        };
        assert!(
            open_spill(batch().schema_ref(), b"xx", Some(&key), "o")
                .expect_err("short key")
                .to_string()
                .contains("32")
        );
    }
}
