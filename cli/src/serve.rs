//! `quarry serve`: the Athena API on a local endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use quarry_catalog::{Catalog, SqliteCatalog};
use quarry_query::{Engine, EngineConfig, ObjectStores};
use quarry_server::{Api, ApiConfig, Credentials, Server, Service};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; 127.0.0.1 unless told otherwise
    #[arg(long, default_value = "127.0.0.1:8989", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// AWS shared-credentials file: every profile's key pair may call the API (requests must
    /// be SigV4-signed with one). Without it, unsigned requests are accepted, on loopback only
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate (chain) ...
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// ... and this PEM private key
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Executions run at once; the others wait QUEUED
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Where results are kept [default: results/ beside the catalog]
    #[arg(long, value_name = "DIR")]
    results_dir: Option<PathBuf>,
    /// Write result files (<id>.csv, <id>.txt) to OutputLocations under this root (repeatable:
    /// an s3:// URL or a folder). Without it OutputLocation is accepted and results stay with
    /// the server (Athena's managed query results)
    #[arg(long, value_name = "URL")]
    output_root: Vec<String>,
    /// Where CREATE TABLE .. AS SELECT puts a table without external_location
    #[arg(long, env = "QUARRY_WAREHOUSE", value_name = "URL")]
    warehouse: Option<String>,
    /// Let clients' CTAS (external_location), INSERT and UNLOAD write under this root
    /// (repeatable: an s3:// URL or a folder). Clients write only there and in --warehouse;
    /// anywhere else, and any path with '..', is refused
    #[arg(long, value_name = "URL")]
    write_root: Vec<String>,
    /// Keep executions and their results this long (Athena keeps 45 days)
    #[arg(long, default_value = "45d", value_parser = retention)]
    retention: std::time::Duration,
    /// Refuse a statement once it scanned more than this (e.g. 10GB); workgroups can set less
    #[arg(long, env = "QUARRY_MAX_BYTES_SCANNED", value_name = "SIZE", value_parser = crate::sql::parse_bytes)]
    max_bytes_scanned: Option<u64>,
    /// Memory all running statements may hold together (e.g. 8GB): past it, joins, sorts and
    /// aggregations spill to temporary files; a statement that still does not fit fails
    #[arg(long, env = "QUARRY_MEMORY_LIMIT", value_name = "SIZE", value_parser = crate::sql::parse_bytes)]
    memory_limit: Option<u64>,
}

fn retention(s: &str) -> std::result::Result<std::time::Duration, String> {
    quarry_jobs::spec::parse_duration(s)
}

pub const AFTER_HELP: &str = "\
Clients need only the endpoint:
  aws athena start-query-execution --endpoint-url http://127.0.0.1:8989 --query-string 'SELECT 1'
  AWS_ENDPOINT_URL_ATHENA=http://127.0.0.1:8989 python -c \"import boto3; print(boto3.client('athena').list_work_groups())\"
  pyathena.connect(endpoint_url='http://127.0.0.1:8989', work_group='primary', region_name='us-east-1')

Examples:
  quarry serve                                     loopback, unsigned requests accepted
  quarry serve --listen 0.0.0.0:8989 --credentials ~/.aws/credentials --tls-cert c.pem --tls-key k.pem
  quarry serve --output-root s3://results-bucket/athena/";

pub async fn serve(
    args: ServeArgs,
    catalog: Arc<dyn Catalog>,
    store: Arc<SqliteCatalog>,
    catalog_path: PathBuf,
) -> Result<()> {
    if !args.listen.ip().is_loopback() && args.credentials.is_none() {
        bail!(
            "--listen {} is reachable from other machines: pass --credentials FILE so that requests must be signed",
            args.listen
        );
    }
    let credentials = args
        .credentials
        .as_deref()
        .map(Credentials::load)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(quarry_server::tls_acceptor(c, k).map_err(anyhow::Error::msg)?),
        _ => None,
    };
    let mut config = EngineConfig {
        max_bytes_scanned: args.max_bytes_scanned,
        memory_limit: args.memory_limit.map(|m| m as usize),
        // One engine serves every client: a SET from one would change the others' plans.
        session_settings: false,
        ..EngineConfig::default()
    };
    config.warehouse = args
        .warehouse
        .as_deref()
        .map(quarry_lake::location_url)
        .transpose()
        .context("--warehouse / QUARRY_WAREHOUSE")?;
    // A server writes only where it was told to: its warehouse and the --write-root folders.
    let mut write_roots = args
        .write_root
        .iter()
        .map(|r| quarry_lake::location_url(r).map(|u| quarry_lake::folder_url(&u)))
        .collect::<Result<Vec<_>, _>>()
        .context("--write-root")?;
    write_roots.extend(config.warehouse.as_deref().map(quarry_lake::folder_url));
    config.write_roots = Some(write_roots);
    let stores = Arc::new(ObjectStores::new());
    let engine = Engine::new(catalog, Arc::clone(&stores), config).with_history(Arc::clone(&store));
    let results = args.results_dir.unwrap_or_else(|| {
        catalog_path
            .parent()
            .map(|p| p.join("results"))
            .unwrap_or_else(|| PathBuf::from("results"))
    });
    let service = Service::new(engine, stores, store, results.clone(), args.concurrency)?;
    let output_roots = args
        .output_root
        .iter()
        .map(|r| quarry_lake::location_url(r).map(|u| quarry_lake::folder_url(&u)))
        .collect::<Result<Vec<_>, _>>()
        .context("--output-root")?;
    let pruned = service.prune(args.retention)?;
    if pruned > 0 {
        eprintln!("quarry serve: forgot {pruned} execution(s) older than the retention");
    }
    {
        let service = Arc::clone(&service);
        let retention = args.retention;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                if let Err(e) = service.prune(retention) {
                    eprintln!("warning: pruning old executions: {e}");
                }
            }
        });
    }
    let api = Api::new(service, ApiConfig { output_roots })?;
    let server = Arc::new(Server { api, credentials });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!(
        "quarry serve: Athena API on {scheme}://{local} (results in {}; {})",
        results.display(),
        match &server.credentials {
            Some(c) => format!("SigV4 with {} key pair(s)", c.len()),
            None => "unsigned requests accepted".into(),
        }
    );
    let shutdown = crate::shutdown_signal();
    quarry_server::serve(server, listener, tls, shutdown).await?;
    eprintln!("quarry serve: stopped");
    Ok(())
}
