//! AWS Signature Version 4 verification of incoming requests, against the key pairs of an AWS
//! shared-credentials file.
//!
//! The server rebuilds the canonical request from what it received (method, path, query,
//! the headers the client says it signed, the body's SHA-256), derives the signing key from
//! the secret of the access key named in `Credential=`, and compares signatures in constant
//! time. Requests more than 15 minutes from the server's clock are refused, as AWS does.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};
use ring::hmac;

/// Allowed key pairs: access key id -> secret.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    keys: HashMap<String, String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "the request is not signed (no Authorization header); sign it with SigV4 (any AWS SDK does)"
    )]
    Missing,
    #[error("malformed Authorization header: {0}")]
    Malformed(String),
    #[error("the access key {0} is not one this server knows")]
    UnknownKey(String),
    #[error("the request signature does not match for access key {0}; check the secret key")]
    BadSignature(String),
    #[error("the request time {0} is more than 15 minutes from the server's time")]
    Expired(String),
}

impl AuthError {
    /// The AWS error code clients recognise.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "MissingAuthenticationTokenException",
            Self::Malformed(_) => "IncompleteSignatureException",
            Self::UnknownKey(_) => "UnrecognizedClientException",
            Self::BadSignature(_) => "InvalidSignatureException",
            Self::Expired(_) => "InvalidSignatureException",
        }
    }
}

impl Credentials {
    /// Read every profile's `aws_access_key_id` / `aws_secret_access_key` from an AWS
    /// shared-credentials file (`[name]` sections, `key = value` lines, `#` / `;` comments).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read credentials file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = HashMap::new();
        let mut section: Option<String> = None;
        let (mut id, mut secret): (Option<String>, Option<String>) = (None, None);
        let mut flush = |section: &Option<String>,
                         id: &mut Option<String>,
                         secret: &mut Option<String>|
         -> Result<(), String> {
            match (id.take(), secret.take()) {
                (Some(i), Some(s)) => {
                    keys.insert(i, s);
                    Ok(())
                }
                (None, None) => Ok(()),
                _ => Err(format!(
                    "profile [{}] needs both aws_access_key_id and aws_secret_access_key",
                    section.clone().unwrap_or_default()
                )),
            }
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                flush(&section, &mut id, &mut secret)?;
                section = Some(name.trim().to_string());
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!("line {}: expected key = value", n + 1));
            };
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_string()),
                "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                _ => {}
            }
        }
        flush(&section, &mut id, &mut secret)?;
        if keys.is_empty() {
            return Err("no profile with aws_access_key_id and aws_secret_access_key".into());
        }
        Ok(Self { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verify a request; `headers` with lower-case names. Returns the access key id.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(String, String)],
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<String, AuthError> {
        let header = |name: &str| -> Vec<&str> {
            headers
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let auth = header("authorization")
            .first()
            .map(|s| s.to_string())
            .ok_or(AuthError::Missing)?;
        let rest = auth
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or_else(|| AuthError::Malformed("expected AWS4-HMAC-SHA256".into()))?;
        let mut credential = None;
        let mut signed = None;
        let mut signature = None;
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature)
        else {
            return Err(AuthError::Malformed(
                "Credential, SignedHeaders and Signature are required".into(),
            ));
        };
        let scope: Vec<&str> = credential.split('/').collect();
        let [key_id, date, region, service, terminator] = scope[..] else {
            return Err(AuthError::Malformed(format!(
                "bad credential scope '{credential}'"
            )));
        };
        if terminator != "aws4_request" {
            return Err(AuthError::Malformed(format!(
                "bad credential scope '{credential}'"
            )));
        }
        let secret = self
            .keys
            .get(key_id)
            .ok_or_else(|| AuthError::UnknownKey(key_id.to_string()))?;
        let amz_date = header("x-amz-date")
            .first()
            .map(|s| s.to_string())
            .ok_or_else(|| AuthError::Malformed("no X-Amz-Date header".into()))?;
        let when = NaiveDateTime::parse_from_str(&amz_date, "%Y%m%dT%H%M%SZ")
            .map_err(|_| AuthError::Malformed(format!("bad X-Amz-Date '{amz_date}'")))?
            .and_utc();
        if (now - when).num_seconds().abs() > 15 * 60 {
            return Err(AuthError::Expired(amz_date));
        }
        if amz_date.get(..8) != Some(date) {
            return Err(AuthError::Malformed(
                "the credential date and X-Amz-Date differ".into(),
            ));
        }
        let names: Vec<&str> = signed.split(';').collect();
        // The host, the date and every x-amz-* header sent (the operation is X-Amz-Target) must
        // be signed, or a captured request could be replayed as another operation.
        for (name, _) in headers {
            let must = name == "x-amz-date"
                || (name.starts_with("x-amz-") && name != "x-amz-content-sha256");
            if must && !names.contains(&name.as_str()) {
                return Err(AuthError::Malformed(format!(
                    "the {name} header must be signed"
                )));
            }
        }
        if !names.contains(&"host") {
            return Err(AuthError::Malformed(
                "the host header must be signed".into(),
            ));
        }
        let mut canonical_headers = String::new();
        for name in &names {
            let values: Vec<String> = header(name)
                .iter()
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
        }
        let canonical_request = format!(
            "{method}\n{}\n{}\n{canonical_headers}\n{signed}\n{}",
            canonical_path(path),
            canonical_query(query),
            hex::encode(ring::digest::digest(&ring::digest::SHA256, body))
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
            hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                canonical_request.as_bytes()
            ))
        );
        let sign = |key: &[u8], data: &str| -> Vec<u8> {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
                .as_ref()
                .to_vec()
        };
        let k_date = sign(format!("AWS4{secret}").as_bytes(), date);
        let k_region = sign(&k_date, region);
        let k_service = sign(&k_region, service);
        let k_signing = sign(&k_service, "aws4_request");
        let bad = || AuthError::BadSignature(key_id.to_string());
        let expected = hex::decode(signature).map_err(|_| bad())?;
        hmac::verify(
            &hmac::Key::new(hmac::HMAC_SHA256, &k_signing),
            string_to_sign.as_bytes(),
            &expected,
        )
        .map_err(|_| bad())?;
        Ok(key_id.to_string())
    }
}

fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        "/".into()
    } else {
        path.to_string()
    }
}

/// Query parameters sorted by name (values as sent, already URI-encoded by the client).
fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut parts: Vec<(&str, &str)> = query
        .split('&')
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    parts.sort();
    parts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example request of AWS's SigV4 test suite (`get-vanilla`), signed with its test key.
    #[test]
    fn the_aws_test_suite_example_verifies() {
        let creds = Credentials::parse(
            "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n",
        )
        .unwrap();
        let headers = vec![
            ("host".to_string(), "example.amazonaws.com".to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
            (
                "authorization".to_string(),
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".to_string(),
            ),
        ];
        let at = "2015-08-30T12:40:00Z".parse().unwrap();
        assert_eq!(
            creds.verify("GET", "/", "", &headers, b"", at),
            Ok("AKIDEXAMPLE".to_string())
        );
        // Any change breaks it.
        assert_eq!(
            creds.verify("POST", "/", "", &headers, b"", at),
            Err(AuthError::BadSignature("AKIDEXAMPLE".into()))
        );
        assert_eq!(
            creds.verify("GET", "/", "", &headers, b"x", at),
            Err(AuthError::BadSignature("AKIDEXAMPLE".into()))
        );
        let mut unsigned_target = headers.clone();
        unsigned_target.push((
            "x-amz-target".into(),
            "AmazonAthena.StopQueryExecution".into(),
        ));
        assert!(matches!(
            creds.verify("GET", "/", "", &unsigned_target, b"", at),
            Err(AuthError::Malformed(m)) if m.contains("x-amz-target")
        ));
        let late = "2015-08-30T13:00:00Z".parse().unwrap();
        assert!(matches!(
            creds.verify("GET", "/", "", &headers, b"", late),
            Err(AuthError::Expired(_))
        ));
        let other =
            Credentials::parse("[x]\naws_access_key_id = OTHER\naws_secret_access_key = s\n")
                .unwrap();
        assert_eq!(
            other.verify("GET", "/", "", &headers, b"", at),
            Err(AuthError::UnknownKey("AKIDEXAMPLE".into()))
        );
        assert_eq!(
            creds.verify("GET", "/", "", &headers[..2], b"", at),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn credential_files_are_read_profile_by_profile() {
        let c = Credentials::parse(
            "# test\n[a]\naws_access_key_id=A\naws_secret_access_key = sa\n\n[b]\naws_access_key_id = B\naws_secret_access_key = sb\nregion = x\n",
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert!(
            Credentials::parse("[a]\naws_access_key_id = A\n")
                .unwrap_err()
                .contains("[a]")
        );
        assert!(Credentials::parse("").is_err());
        assert!(
            Credentials::parse("[a]\nnonsense\n")
                .unwrap_err()
                .contains("line 2")
        );
    }
}
