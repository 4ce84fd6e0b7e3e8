//! `quarry catalog` (federated data catalogs) and `quarry connector` (one protocol request).

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use quarry_catalog::SqliteCatalog;
use quarry_federation::client::{InProcess, Transport};
use quarry_federation::connector::Handler;
use quarry_query::federated::{self, DataCatalog, Source};

use crate::{Format, emit, grid, print_json};

pub(crate) const CATALOG_HELP: &str = "\
Examples:
  quarry catalog add pg --connector postgres --uri postgresql://app@db.internal:5432/shop
  quarry catalog add ddb --connector dynamodb           (AWS_REGION, credentials, AWS_ENDPOINT_URL)
  quarry catalog add cache --connector redis      (tables: TBLPROPERTIES ('redis-endpoint'='host:6379', ..))
  quarry catalog add athena-ddb --lambda athena-dynamodb-connector
  quarry catalog list
  quarry sql -c \"SELECT o.id, c.name FROM pg.public.orders o JOIN lake.customers c ON c.id = o.customer_id\"
  quarry sql -c 'SHOW TABLES IN pg.public'
  quarry sql -c 'SELECT * FROM \"lambda:athena-dynamodb-connector\".default.orders LIMIT 10'
  quarry catalog remove pg

A catalog is addressed as catalog.schema.table in SQL. --lambda catalogs invoke a connector
Lambda built on the Athena Query Federation SDK (Athena's own connectors, or Quarry's) through
the standard AWS environment (AWS_REGION, credentials, AWS_ENDPOINT_URL); --connector catalogs
run the connector inside quarry. The URI is kept in the catalog file; listings hide its password.";

#[derive(Subcommand)]
pub(crate) enum CatalogCommand {
    /// Register (or replace) a federated data catalog.
    Add {
        /// Catalog name, as written in SQL (lower case, digits, '_' and '-')
        name: String,
        #[command(flatten)]
        source: SourceArgs,
        /// A description kept with the catalog
        #[arg(long)]
        description: Option<String>,
    },
    /// List the registered data catalogs.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Remove a data catalog (nothing in the source is touched).
    Remove { name: String },
}

/// Where a catalog's tables come from: one of --lambda or --connector with --uri.
#[derive(Args)]
pub(crate) struct SourceArgs {
    /// A connector Lambda function (name, ARN or name:alias)
    #[arg(
        long,
        value_name = "FUNCTION",
        conflicts_with = "connector",
        required_unless_present = "connector"
    )]
    lambda: Option<String>,
    /// A connector linked into quarry: postgres, dynamodb, redis (its tables are declared in
    /// the catalog with the table property redis-endpoint, as in Athena)
    #[arg(long, value_name = "KIND")]
    connector: Option<String>,
    /// With --connector: the source's connection URI, e.g.
    /// postgresql://user[:password]@host:5432/db[?sslmode=require]; for dynamodb none (the
    /// standard AWS environment), or dynamodb://DATABASE to take table columns from that
    /// catalog database's tables of the same names
    #[arg(long, env = "QUARRY_CONNECTOR_URI", hide_env_values = true)]
    uri: Option<String>,
}

impl SourceArgs {
    fn source(self) -> Result<Source> {
        match (self.lambda, self.connector, self.uri) {
            (Some(function), None, _) => Ok(Source::Lambda { function }),
            (None, Some(connector), uri) => {
                if connector == "postgres" && uri.is_none() {
                    bail!("--connector postgres needs --uri postgresql://user@host:port/db");
                }
                Ok(Source::Connector {
                    connector,
                    uri: uri.unwrap_or_default(),
                })
            }
            _ => bail!("give one of --lambda FUNCTION or --connector KIND --uri URI"),
        }
    }
}

pub(crate) fn catalog(command: CatalogCommand, store: &SqliteCatalog) -> Result<()> {
    match command {
        CatalogCommand::Add {
            name,
            source,
            description,
        } => {
            let catalog = DataCatalog {
                name: name.clone(),
                source: source.source()?,
                description,
            };
            federated::add(store, &catalog)?;
            eprintln!("catalog {name} registered: {}", catalog.source.describe());
        }
        CatalogCommand::List { format } => {
            let catalogs = federated::list(store)?;
            if format == Format::Json {
                let rows: Vec<serde_json::Value> = catalogs
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "name": c.name,
                            "type": match c.source { Source::Lambda { .. } => "LAMBDA", Source::Connector { .. } => "FEDERATED" },
                            "source": c.source.describe(),
                            "description": c.description,
                        })
                    })
                    .collect();
                return print_json(&rows);
            }
            let mut g = grid(&["catalog", "type", "source", "description"]);
            for c in &catalogs {
                let kind = match c.source {
                    Source::Lambda { .. } => "LAMBDA",
                    Source::Connector { .. } => "FEDERATED",
                };
                g.add_row(vec![
                    c.name.clone(),
                    kind.to_owned(),
                    c.source.describe(),
                    c.description.clone().unwrap_or_default(),
                ]);
            }
            emit(g)?;
        }
        CatalogCommand::Remove { name } => {
            if !federated::remove(store, &name)? {
                bail!("no data catalog named {name}; `quarry catalog list` shows them");
            }
            eprintln!("catalog {name} removed");
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum ConnectorCommand {
    /// Send one protocol request (JSON on standard input) to a connector and print its answer.
    ///
    /// For debugging a connector, and for checking Quarry's answers against the Athena Query
    /// Federation SDK's examples: the answer is printed as the SDK writes its JSON.
    #[command(after_help = "Examples:\n  \
echo '{\"@type\":\"PingRequest\",\"identity\":{\"id\":\"UNKNOWN\",\"principal\":\"UNKNOWN\",\"account\":\"1\",\"arn\":\"a\",\"tags\":{},\"groups\":[]},\"catalogName\":\"pg\",\"queryId\":\"q\"}' \\\n    \
| quarry connector invoke --connector postgres --uri postgresql://app@localhost/shop\n  \
quarry connector invoke --lambda athena-dynamodb-connector < list-schemas.json")]
    Invoke {
        #[command(flatten)]
        source: SourceArgs,
    },
}

pub(crate) async fn connector(
    command: ConnectorCommand,
    catalog: Arc<dyn quarry_catalog::Catalog>,
) -> Result<()> {
    let ConnectorCommand::Invoke { source } = command;
    let mut request = Vec::new();
    std::io::stdin()
        .read_to_end(&mut request)
        .context("reading the request from standard input")?;
    let request = quarry_federation::wire::parse_request(&request)?;
    let payload = quarry_federation::wire::to_wire(&request)?;
    let transport: Arc<dyn Transport> = match source.source()? {
        Source::Lambda { function } => {
            Arc::new(quarry_federation::lambda::LambdaTransport::from_env(&function, None).await)
        }
        Source::Connector { connector, uri } => match connector.as_str() {
            "postgres" => {
                let pg = quarry_federation::postgres::Postgres::new(&uri)?;
                Arc::new(InProcess::new(connector, Handler::new(Arc::new(pg), None)))
            }
            "dynamodb" => {
                let ddb = quarry_federation::dynamodb::DynamoDb::from_env().await;
                Arc::new(InProcess::new(connector, Handler::new(Arc::new(ddb), None)))
            }
            "redis" => {
                let redis = quarry_federation::redis::Redis::new(catalog);
                Arc::new(InProcess::new(
                    connector,
                    Handler::new(Arc::new(redis), None),
                ))
            }
            other => bail!(
                "unknown connector '{other}'; quarry links in: {}",
                federated::CONNECTORS.join(", ")
            ),
        },
    };
    let answer = transport.invoke(payload).await?;
    let value: serde_json::Value =
        serde_json::from_slice(&answer).context("the connector's answer is not JSON")?;
    emit(quarry_federation::wire::to_jackson_pretty(&value)?)?;
    if value.get("errorMessage").is_some() {
        bail!("the connector answered with an error");
    }
    Ok(())
}
