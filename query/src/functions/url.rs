//! URL functions (Trino `functions/url.md`). Trino parses with `java.net.URI` (RFC 2396): a
//! string that is not a valid URI gives NULL; a valid one without the part asked for gives
//! `''` (NULL for the port and for a missing parameter). Path, query and fragment come back
//! percent-decoded, as `URI.getPath()` and friends return them.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::ScalarUDF;

use super::{Call, Udf, is_string};

pub(super) fn functions() -> Vec<ScalarUDF> {
    let one = |t: &[DataType]| super::all_as(t, &[1], is_string, DataType::Utf8);
    let mut all: Vec<ScalarUDF> = [
        "url_extract_protocol",
        "url_extract_host",
        "url_extract_path",
        "url_extract_query",
        "url_extract_fragment",
    ]
    .into_iter()
    .map(|name| {
        Udf::new(
            name,
            "url_extract_*(varchar)",
            one,
            |_| Ok(DataType::Utf8),
            extract,
        )
        .udf()
    })
    .collect();
    all.extend([
        Udf::new(
            "url_extract_port",
            "url_extract_port(varchar)",
            one,
            |_| Ok(DataType::Int64),
            extract_port,
        )
        .udf(),
        Udf::new(
            "url_extract_parameter",
            "url_extract_parameter(varchar, varchar)",
            |t| super::all_as(t, &[2], is_string, DataType::Utf8),
            |_| Ok(DataType::Utf8),
            extract_parameter,
        )
        .udf(),
        Udf::new(
            "url_encode",
            "url_encode(varchar)",
            one,
            |_| Ok(DataType::Utf8),
            url_encode,
        )
        .udf(),
        Udf::new(
            "url_decode",
            "url_decode(varchar)",
            one,
            |_| Ok(DataType::Utf8),
            url_decode,
        )
        .udf(),
    ]);
    all
}

/// The parts of a URI, raw (still percent-encoded).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Uri<'a> {
    pub scheme: Option<&'a str>,
    pub host: Option<&'a str>,
    pub port: Option<i64>,
    pub path: Option<&'a str>,
    pub query: Option<&'a str>,
    pub fragment: Option<&'a str>,
}

/// Characters `java.net.URI` accepts outside a host (besides `%XX`): unreserved, reserved and
/// any non-ASCII character that is not a control or space character.
fn legal(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "-_.!~*'();/?:@&=+$,".contains(c)
        || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
}

fn legal_part(s: &str) -> bool {
    let b = s.as_bytes();
    s.char_indices().all(|(i, c)| {
        if c == '%' {
            b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        } else {
            legal(c)
        }
    })
}

/// `java.net.URI`'s server-based host: an IPv6 reference, or a host name / IPv4 address whose
/// last label starts with a letter unless it is all digits and dots.
fn server_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || ":.".contains(c));
    }
    if host.is_empty() {
        return false;
    }
    let ipv4 = host.split('.').count() == 4
        && host.split('.').all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|v| v <= 255)
        });
    if ipv4 {
        return true;
    }
    let labels: Vec<&str> = host.strip_suffix('.').unwrap_or(host).split('.').collect();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    labels.iter().all(|l| label_ok(l))
        && (labels.len() == 1
            || labels
                .last()
                .is_some_and(|l| l.as_bytes()[0].is_ascii_alphabetic()))
}

/// Splits `s` as `java.net.URI` does; `None` when it is not a valid URI.
pub(crate) fn parse_uri(s: &str) -> Option<Uri<'_>> {
    if s.is_empty() {
        return Some(Uri {
            path: Some(""),
            ..Uri::default()
        });
    }
    let (rest, fragment) = match s.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (s, None),
    };
    if fragment.is_some_and(|f| !legal_part(f)) {
        return None;
    }
    let mut uri = Uri {
        fragment,
        ..Uri::default()
    };
    // A scheme is a prefix before ':' with no '/', '?' before it.
    let mut rest = rest;
    if let Some(colon) = rest.find(':') {
        let prefix = &rest[..colon];
        if !prefix.contains(['/', '?']) {
            let mut chars = prefix.chars();
            let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if !scheme_ok {
                return None;
            }
            uri.scheme = Some(prefix);
            rest = &rest[colon + 1..];
            if rest.is_empty() {
                return None;
            }
            if !rest.starts_with('/') {
                // Opaque (mailto:a@b): no host, path or query.
                return legal_part(rest).then_some(uri);
            }
        }
    }
    let (hier, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    if query.is_some_and(|q| !legal_part(q)) {
        return None;
    }
    uri.query = query;
    let path = if let Some(after) = hier.strip_prefix("//") {
        let end = after.find('/').unwrap_or(after.len());
        let authority = &after[..end];
        if authority.is_empty() && end == after.len() && query.is_none() && fragment.is_none() {
            return None;
        }
        if !authority.is_empty() {
            let host_port = match authority.rsplit_once('@') {
                Some((user, _)) if !legal_part(user) => return None,
                Some((_, host_port)) => host_port,
                None => authority,
            };
            let (host, port) = match host_port.rfind(':') {
                Some(i) if !host_port[i..].contains(']') => {
                    (&host_port[..i], Some(&host_port[i + 1..]))
                }
                _ => (host_port, None),
            };
            let port_ok = port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit()));
            if server_host(host) && port_ok {
                uri.host = Some(host);
                uri.port = port.filter(|p| !p.is_empty()).and_then(|p| p.parse().ok());
            } else if !legal_part(authority) || authority.contains(['[', ']']) {
                return None;
            }
            // Otherwise a registry-based authority: no host, no port.
        }
        &after[end..]
    } else {
        hier
    };
    if !legal_part(path) {
        return None;
    }
    uri.path = Some(path);
    Some(uri)
}

/// Percent-decoding as `URI.getPath()` does it (invalid UTF-8 becomes U+FFFD).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| hex(*c)),
                b.get(i + 2).and_then(|c| hex(*c)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn extract(call: &Call) -> Result<ArrayRef> {
    let urls = call.args[0].as_string::<i32>();
    let part = call.name;
    let out: StringArray = urls
        .iter()
        .map(|u| {
            let uri = parse_uri(u?)?;
            Some(match part {
                "url_extract_protocol" => uri.scheme.unwrap_or("").to_string(),
                "url_extract_host" => uri.host.unwrap_or("").to_string(),
                "url_extract_path" => decode(uri.path.unwrap_or("")),
                "url_extract_query" => decode(uri.query.unwrap_or("")),
                _ => decode(uri.fragment.unwrap_or("")),
            })
        })
        .collect();
    Ok(Arc::new(out))
}

fn extract_port(call: &Call) -> Result<ArrayRef> {
    let urls = call.args[0].as_string::<i32>();
    let out: Int64Array = urls.iter().map(|u| parse_uri(u?)?.port).collect();
    Ok(Arc::new(out))
}

fn extract_parameter(call: &Call) -> Result<ArrayRef> {
    let urls = call.args[0].as_string::<i32>();
    let names = call.args[1].as_string::<i32>();
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        if super::null_at(&call.args, i) {
            out.push(None);
            continue;
        }
        let Some(query) = parse_uri(urls.value(i)).and_then(|u| u.query) else {
            out.push(None);
            continue;
        };
        let name = names.value(i);
        let value = query
            .split('&')
            .map(|arg| arg.split_once('=').unwrap_or((arg, "")))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| form_decode(v))
            .transpose()?;
        out.push(value);
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// `java.net.URLDecoder.decode(s, UTF-8)`: `+` is a space, `%XX` a byte; a malformed escape
/// is an error.
fn form_decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        DataFusionError::Execution(format!(
                            "URLDecoder: Illegal hex characters in escape (%) pattern: {s}"
                        ))
                    })?;
                out.push(byte);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn url_encode(call: &Call) -> Result<ArrayRef> {
    let texts = call.args[0].as_string::<i32>();
    let out: StringArray = texts
        .iter()
        .map(|t| {
            t.map(|t| {
                let mut out = String::with_capacity(t.len());
                for byte in t.bytes() {
                    match byte {
                        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                            out.push(byte as char)
                        }
                        b' ' => out.push('+'),
                        _ => out.push_str(&format!("%{byte:02X}")),
                    }
                }
                out
            })
        })
        .collect();
    Ok(Arc::new(out))
}

fn url_decode(call: &Call) -> Result<ArrayRef> {
    let texts = call.args[0].as_string::<i32>();
    let out = texts
        .iter()
        .map(|t| t.map(form_decode).transpose())
        .collect::<Result<StringArray>>()?;
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_java_net_uri() {
        let u = parse_uri("https://user@example.com:8080/a%20b/c?x=1&y=2#frag").unwrap();
        assert_eq!(
            u,
            Uri {
                scheme: Some("https"),
                host: Some("example.com"),
                port: Some(8080),
                path: Some("/a%20b/c"),
                query: Some("x=1&y=2"),
                fragment: Some("frag"),
            }
        );
        assert_eq!(parse_uri("http://my_host/x").unwrap().host, None);
        assert_eq!(parse_uri("mailto:a@b.com").unwrap().path, None);
        assert_eq!(
            parse_uri("/relative/path").unwrap().path,
            Some("/relative/path")
        );
        assert!(parse_uri("http://a b/").is_none());
        assert!(parse_uri("http://").is_none());
        assert!(parse_uri("http://x/%zz").is_none());
        assert_eq!(decode("/a%20b"), "/a b");
    }
}
