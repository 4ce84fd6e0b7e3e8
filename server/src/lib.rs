//! `quarry serve`: Amazon Athena's JSON API (awsJson1_1, `X-Amz-Target: AmazonAthena.<Op>`)
//! over Quarry's engine, so boto3, the AWS CLI, PyAthena and other Athena clients work
//! unchanged against a local or self-hosted lake: point them at the server with
//! `endpoint_url=` or `AWS_ENDPOINT_URL_ATHENA`.
//!
//! Requests are SigV4-verified against the key pairs of an AWS credentials file (when one is
//! given), executions run asynchronously with bounded concurrency, and executions and their
//! results are kept in the catalog file and a results folder, so they survive a restart.

pub mod api;
pub mod error;
pub mod output;
pub mod service;
pub mod sigv4;
pub mod values;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;

pub use api::{Api, ApiConfig};
pub use error::ApiError;
pub use service::Service;
pub use sigv4::Credentials;

/// Request bodies larger than this are refused (QueryString is at most 256 KiB).
pub const MAX_BODY: usize = 1 << 20;
/// Time allowed for a request's headers and, separately, its body; and for a TLS handshake.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 1024;

/// The server: the API, and the credentials requests must be signed with (`None`: unsigned
/// requests are accepted, for a server bound to the loopback interface).
pub struct Server {
    pub api: Api,
    pub credentials: Option<Credentials>,
}

fn respond(status: u16, body: &Value, request_id: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    r
}

impl Server {
    /// Answer one HTTP request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let request_id = uuid::Uuid::new_v4().to_string();
        match self.handle_inner(req).await {
            Ok(v) => respond(200, &v, &request_id),
            Err(e) => respond(e.status, &e.body(), &request_id),
        }
    }

    async fn handle_inner(&self, req: Request<Incoming>) -> Result<Value, ApiError> {
        let (parts, body) = req.into_parts();
        if parts.method != hyper::Method::POST || parts.uri.path() != "/" {
            return Err(ApiError {
                kind: "UnknownOperationException",
                message: format!(
                    "{} {}: this is an Athena API endpoint; send POST / with X-Amz-Target",
                    parts.method,
                    parts.uri.path()
                ),
                code: None,
                status: 404,
            });
        }
        let collected = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect())
            .await
            .map_err(|_| ApiError {
                kind: "RequestTimeoutException",
                message: format!(
                    "the request body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
                code: None,
                status: 408,
            })?;
        let body = collected
            .map_err(|e| {
                let too_large = e
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some();
                ApiError {
                    kind: "SerializationException",
                    message: if too_large {
                        format!("the request body is larger than {MAX_BODY} bytes")
                    } else {
                        format!("reading the request body: {e}")
                    },
                    code: None,
                    status: if too_large { 413 } else { 400 },
                }
            })?
            .to_bytes();
        if let Some(creds) = &self.credentials {
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            creds
                .verify(
                    parts.method.as_str(),
                    parts.uri.path(),
                    parts.uri.query().unwrap_or(""),
                    &headers,
                    &body,
                    chrono::Utc::now(),
                )
                .map_err(|e| ApiError::auth(e.code(), e.to_string()))?;
        }
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(operation) = target.strip_prefix("AmazonAthena.") else {
            return Err(ApiError {
                kind: "UnknownOperationException",
                message: format!(
                    "X-Amz-Target '{target}' is not an Athena operation (AmazonAthena.<Operation>)"
                ),
                code: None,
                status: 400,
            });
        };
        let input: Value = if body.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&body).map_err(|e| ApiError {
                kind: "SerializationException",
                message: format!("the request body is not valid JSON: {e}"),
                code: None,
                status: 400,
            })?
        };
        if !input.is_object() {
            return Err(ApiError {
                kind: "SerializationException",
                message: "the request body must be a JSON object".into(),
                code: None,
                status: 400,
            });
        }
        self.api.call(operation, input).await
    }
}

/// TLS for the listener, from PEM files.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("reading {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("reading {}: {e}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("reading {}: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("the certificate and key do not fit: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serve connections from `listener` until `shutdown` completes.
pub async fn serve(
    server: Arc<Server>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&connections).acquire_owned().await else {
            return Ok(());
        };
        let (stream, _peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // A failed accept (too many open files, a reset) must not stop the server.
                Err(_) => continue,
            },
        };
        let server = Arc::clone(&server);
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let server = Arc::clone(&server);
                async move { Ok::<_, std::convert::Infallible>(server.handle(req).await) }
            });
            let _permit = permit;
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // Without a timer hyper drops its header-read timeout: slow clients would hold
            // connections forever.
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(BODY_TIMEOUT);
            let _ = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(BODY_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => builder.serve_connection(TokioIo::new(s), service).await,
                        _ => return,
                    }
                }
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
        });
    }
}
