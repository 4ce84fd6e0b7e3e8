//! Federated queries against a real PostgreSQL server (a throw-away cluster, see
//! `quarry_tests::postgres`): the connector through the protocol, and the engine joining a lake
//! table with a PostgreSQL table. Pushdown is checked on the server side, in the statements
//! PostgreSQL logged.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use quarry_catalog::SqliteCatalog;
use quarry_crawler::{CrawlConfig, Crawler};
use quarry_federation::client::{Client, InProcess};
use quarry_federation::connector::{Connector, Handler};
use quarry_federation::constraints::{Domain, Value, Values};
use quarry_federation::ipc::Framing;
use quarry_federation::postgres::Postgres;
use quarry_federation::wire::{Constraints, TableName};
use quarry_query::federated::{DataCatalog, Source};
use quarry_query::{Engine, EngineConfig, ObjectStores, OutputFormat, QueryRequest, render};
use quarry_tests::{Backend, Lake, postgres, unique_name};

/// A schema of test tables: customers (every mapped type), a partitioned events table, a table
/// with hostile identifiers and one with an unsupported column.
fn create_schema(hint: &str) -> String {
    let schema = unique_name(hint);
    postgres().exec(&format!(
        r#"
        CREATE SCHEMA {schema};
        CREATE TABLE {schema}.customers (
            id int PRIMARY KEY, name text, "Tier" varchar(10), balance numeric(10,2), born date,
            seen timestamptz, active boolean, tags text[], score double precision, payload jsonb,
            uid uuid, big bigint, small smallint, raw bytea, plain numeric);
        INSERT INTO {schema}.customers VALUES
          (1, 'Smith, Jane', 'gold', 1234.56, '1990-05-01', '2026-01-02 03:04:05.678+00', true,
           ARRAY['a','b'], 1.5, '{{"k": 1}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 9000000000, 7, '\x0102', 1.25),
          (2, 'Bo', 'silver', -5.00, NULL, NULL, false, ARRAY[]::text[], NULL, NULL, NULL, NULL, NULL, NULL, NULL),
          (3, 'Eve', NULL, 0.10, '2000-02-29', '2025-12-31 23:59:59.999+00', NULL, NULL, 3.25, '[1,2]', NULL, -1, -2, '', 0.333333333333333333333333),
          (4, 'x''); DROP TABLE {schema}.customers; --', 'gold', 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        CREATE TABLE {schema}.events (id bigint, kind text, at timestamp) PARTITION BY RANGE (at);
        CREATE TABLE {schema}.events_2025 PARTITION OF {schema}.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE {schema}.events_2026 PARTITION OF {schema}.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        INSERT INTO {schema}.events SELECT g, CASE WHEN g % 3 = 0 THEN 'click' ELSE 'view' END,
          TIMESTAMP '2025-12-31 00:00:00' + g * INTERVAL '1 hour' FROM generate_series(1, 48) g;
        CREATE TABLE {schema}."we""ird" (id int, "na""me" text);
        INSERT INTO {schema}."we""ird" VALUES (1, 'quoted');
        CREATE TABLE {schema}.geo (id int, p point);
        "#
    ));
    schema
}

/// The rows of `splits` of `table`, read one after the other with `constraints`.
async fn read_splits(
    client: &Client,
    query: &str,
    table: &quarry_federation::client::RemoteTable,
    splits: &[quarry_federation::wire::Split],
    constraints: &Constraints,
) -> Vec<datafusion::arrow::record_batch::RecordBatch> {
    let mut batches = Vec::new();
    for split in splits {
        let records = client
            .read(query, &table.name, &table.schema, split, constraints)
            .await
            .expect("read");
        batches.extend(records.batches);
    }
    batches
}

fn row_count(batches: &[datafusion::arrow::record_batch::RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

fn client(uri: &str, catalog: &str) -> Client {
    let pg = Postgres::new(uri).expect("uri");
    let transport = InProcess::new("postgres", Handler::new(Arc::new(pg), None));
    Client::new(Arc::new(transport), catalog, Duration::from_secs(30))
}

#[tokio::test]
async fn the_postgres_connector_answers_the_protocol() {
    let pg = postgres();
    let schema = create_schema("fed_proto");
    let client = client(&pg.uri, "pg");
    assert_eq!(client.version().await.expect("ping"), 4);
    assert!(client.takes_limit().await.expect("capabilities"));
    assert!(
        client
            .list_schemas()
            .await
            .expect("schemas")
            .contains(&schema)
    );
    let mut tables: Vec<String> = client
        .list_tables(&schema)
        .await
        .expect("tables")
        .into_iter()
        .map(|t| t.table_name)
        .collect();
    tables.sort();
    // Child partitions are not tables of their own.
    assert_eq!(tables, ["customers", "events", "geo", "we\"ird"]);
    // Paging: two at a time, every table once.
    let connector = Postgres::new(&pg.uri).expect("uri");
    let (first, token) = connector
        .list_tables(Some(&schema), None, Some(2))
        .await
        .expect("page 1");
    assert_eq!(first.len(), 2);
    let (second, token) = connector
        .list_tables(Some(&schema), token.as_deref(), Some(2))
        .await
        .expect("page 2");
    assert_eq!(second.len(), 2);
    assert!(
        token.is_none()
            || connector
                .list_tables(Some(&schema), token.as_deref(), Some(2))
                .await
                .expect("p3")
                .0
                .is_empty()
    );

    // Types, as Athena's PostgreSQL connector maps them.
    let customers = client
        .get_table(&TableName::new(&schema, "customers"))
        .await
        .expect("customers");
    let t = |name: &str| {
        customers
            .schema
            .field_with_name(name)
            .expect(name)
            .data_type()
            .clone()
    };
    assert_eq!(t("id"), DataType::Int32);
    assert_eq!(t("tier"), DataType::Utf8);
    assert_eq!(t("balance"), DataType::Decimal128(10, 2));
    assert_eq!(t("plain"), DataType::Decimal128(38, 18));
    assert_eq!(t("born"), DataType::Date32);
    assert_eq!(t("seen"), DataType::Date64);
    assert_eq!(t("payload"), DataType::Utf8);
    assert_eq!(t("uid"), DataType::Utf8);
    assert_eq!(t("raw"), DataType::Binary);
    assert!(matches!(t("tags"), DataType::List(f) if f.data_type() == &DataType::Utf8));
    assert_eq!(
        customers.partition_columns,
        ["partition_schema_name", "partition_name"]
    );

    // An unsupported column is named, with the way out.
    let err = client
        .get_table(&TableName::new(&schema, "geo"))
        .await
        .expect_err("point")
        .to_string();
    assert!(
        err.contains("column p of") && err.contains("point") && err.contains("view"),
        "{err}"
    );
    // A missing table says so.
    let err = client
        .get_table(&TableName::new(&schema, "nope"))
        .await
        .expect_err("missing")
        .to_string();
    assert!(err.contains("does not exist"), "{err}");

    // A partitioned table: one split per child table, all rows read.
    let events = client
        .get_table(&TableName::new(&schema, "events"))
        .await
        .expect("events");
    let splits = client
        .splits("q1", &events, &Constraints::default())
        .await
        .expect("splits");
    assert_eq!(splits.len(), 2);
    let mut rows = 0;
    for split in &splits {
        let records = client
            .read(
                "q1",
                &events.name,
                &events.schema,
                split,
                &Constraints::default(),
            )
            .await
            .expect("read");
        assert!(records.bytes > 0);
        rows += records.batches.iter().map(|b| b.num_rows()).sum::<usize>();
    }
    assert_eq!(rows, 48);

    // Hostile identifiers are quoted; hostile literals are parameters.
    let weird = client
        .get_table(&TableName::new(&schema, "we\"ird"))
        .await
        .expect("weird");
    let splits = client
        .splits("q2", &weird, &Constraints::default())
        .await
        .expect("splits");
    let read = read_splits(&client, "q2", &weird, &splits, &Constraints::default()).await;
    assert_eq!(row_count(&read), 1);
    let hostile = format!("x'); DROP TABLE {schema}.customers; --");
    let mut constraints = Constraints::default();
    let domain = Domain {
        data_type: DataType::Utf8,
        values: Values::Set {
            values: vec![Value::Text(hostile.clone())],
            white_list: true,
        },
        null_allowed: false,
    };
    constraints.summary.insert(
        "name".into(),
        domain.to_value_set(Framing::Continuation).expect("encode"),
    );
    constraints.limit = Some(5);
    let mark = pg.log_mark();
    let splits = client
        .splits("q3", &customers, &constraints)
        .await
        .expect("splits");
    let records = client
        .read(
            "q3",
            &customers.name,
            &customers.schema,
            &splits[0],
            &constraints,
        )
        .await
        .expect("read");
    let batch = &records.batches[0];
    assert_eq!(
        batch.num_rows(),
        1,
        "exactly the row whose name is the hostile text"
    );
    let names = batch
        .column_by_name("name")
        .expect("name")
        .as_string::<i32>();
    assert_eq!(names.value(0), hostile);
    let logged = pg.statements_since(mark);
    let select = logged
        .lines()
        .find(|l| l.contains("FROM \"") && l.contains("customers"))
        .unwrap_or_else(|| panic!("no SELECT logged:\n{logged}"));
    assert!(
        select.contains("WHERE") && select.contains("$1") && select.contains("LIMIT 5"),
        "{select}"
    );
    assert!(
        !select.contains("DROP TABLE"),
        "the literal travelled as a parameter: {select}"
    );
    // And the table is still there.
    assert!(
        client
            .get_table(&TableName::new(&schema, "customers"))
            .await
            .is_ok()
    );

    // Values arrive as they are in PostgreSQL.
    let splits = client
        .splits("q4", &customers, &Constraints::default())
        .await
        .expect("splits");
    let read = read_splits(&client, "q4", &customers, &splits, &Constraints::default()).await;
    let batch =
        datafusion::arrow::compute::concat_batches(&customers.schema, &read).expect("concat");
    let text = datafusion::arrow::util::pretty::pretty_format_batches(std::slice::from_ref(&batch))
        .expect("pretty")
        .to_string();
    assert!(
        text.contains("1234.56")
            && text.contains("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
            && text.contains("9000000000"),
        "{text}"
    );
    // Unconstrained numeric keeps 18 places, rounded half-even.
    assert!(text.contains("0.333333333333333333"), "{text}");
    let seen = batch.column_by_name("seen").expect("seen");
    let engine = quarry_federation::types::to_engine_batch(
        &batch,
        &quarry_federation::types::to_engine_schema(&customers.schema),
    )
    .expect("engine");
    let engine_seen = engine.column_by_name("seen").expect("seen");
    assert_eq!(
        engine_seen.data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, None)
    );
    assert_eq!(seen.null_count(), 2);
}

struct Setup {
    _lake: Lake,
    engine: Engine,
    schema: String,
}

async fn engine_setup(hint: &str) -> Setup {
    let pg = postgres();
    let schema = create_schema(hint);
    let lake = Lake::sample(Backend::Local).await;
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    Crawler::new(catalog.clone(), CrawlConfig::new("demo"))
        .crawl(&lake.location)
        .await
        .expect("crawl");
    quarry_query::federated::add(
        &catalog,
        &DataCatalog {
            name: "pg".into(),
            source: Source::Connector {
                connector: "postgres".into(),
                uri: pg.uri.clone(),
            },
            description: None,
        },
    )
    .expect("register");
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, lake.location.store.clone());
    let config = EngineConfig {
        warehouse: Some(lake.table_url("warehouse")),
        ..EngineConfig::default()
    };
    let engine = Engine::new(catalog.clone(), stores, config).with_history(catalog);
    Setup {
        _lake: lake,
        engine,
        schema,
    }
}

impl Setup {
    async fn csv(&self, sql: &str) -> String {
        let out = self
            .engine
            .run(QueryRequest::new(sql).with_database(Some("demo".into())))
            .await;
        assert!(out.succeeded(), "{sql}: {:?}", out.record.error);
        render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv")
    }

    async fn error(&self, request: QueryRequest) -> String {
        let out = self
            .engine
            .run(request.with_database(Some("demo".into())))
            .await;
        assert!(!out.succeeded(), "{} should fail", out.record.sql);
        out.record.error.unwrap_or_default()
    }
}

#[tokio::test]
async fn sql_joins_the_lake_with_postgres_and_pushes_filters_to_the_server() {
    let pg = postgres();
    let s = engine_setup("fed_sql").await;
    let schema = &s.schema;
    assert!(
        s.csv("SHOW DATABASES IN pg")
            .await
            .lines()
            .any(|l| l == schema)
    );
    assert_eq!(
        s.csv(&format!("SHOW TABLES IN pg.{schema} 'c*'")).await,
        "tab_name\ncustomers\n"
    );
    let describe = s.csv(&format!("DESCRIBE pg.{schema}.customers")).await;
    assert!(
        describe.contains("balance,\"decimal(10,2)\",") && describe.contains("seen,timestamp(3),"),
        "{describe}"
    );
    assert!(
        !describe.contains("partition_name"),
        "pseudo-columns stay hidden: {describe}"
    );

    // One statement over a lake table and a PostgreSQL table.
    assert_eq!(
        s.csv(&format!(
            "SELECT c.name, c.tier, sum(s.amount) AS spent FROM sales s JOIN pg.{schema}.customers c ON c.name = s.customer \
             GROUP BY c.name, c.tier ORDER BY c.name"
        ))
        .await,
        "name,tier,spent\nBo,silver,7.0\nEve,,1.0\n\"Smith, Jane\",gold,12.5\n"
    );

    // Filters and LIMIT reach PostgreSQL as SQL with parameters.
    let mark = pg.log_mark();
    assert_eq!(
        s.csv(&format!("SELECT id, tier FROM pg.{schema}.customers WHERE id >= 2 AND tier <> 'silver' AND active IS NULL ORDER BY id LIMIT 1")).await,
        // Eve's NULL tier is not <> 'silver' (SQL's three-valued logic), as in PostgreSQL.
        "id,tier\n4,gold\n"
    );
    let logged = pg.statements_since(mark);
    let select = logged
        .lines()
        .find(|l| l.contains("SELECT") && l.contains("customers\""))
        .unwrap_or_else(|| panic!("{logged}"));
    assert!(
        select.contains("\"id\" >= $1::int8") && select.contains("\"active\" IS NULL"),
        "{select}"
    );

    let mark = pg.log_mark();
    assert_eq!(
        s.csv(&format!(
            "SELECT id FROM pg.{schema}.customers WHERE tier = 'gold' LIMIT 1"
        ))
        .await
        .lines()
        .count(),
        2
    );
    let logged = pg.statements_since(mark);
    assert!(logged.contains("LIMIT 1"), "the LIMIT was pushed: {logged}");

    // A filter the connector cannot take is applied by Quarry: the answer is still right.
    assert_eq!(
        s.csv(&format!(
            "SELECT id FROM pg.{schema}.customers WHERE length(name) = 3 ORDER BY id"
        ))
        .await,
        "id\n3\n"
    );
    // Timestamps and dates filter and print like lake ones.
    assert_eq!(
        s.csv(&format!(
            "SELECT kind, count(*) AS n FROM pg.{schema}.events WHERE at >= TIMESTAMP '2026-01-01 00:00:00' GROUP BY kind ORDER BY kind"
        ))
        .await,
        "kind,n\nclick,9\nview,16\n"
    );
    // EXPLAIN says what was pushed and how many splits were read.
    let explain = s
        .csv(&format!(
            "EXPLAIN SELECT id FROM pg.{schema}.events WHERE kind = 'click'"
        ))
        .await;
    assert!(
        explain.contains("federated scan through catalog pg")
            && explain.contains("2 split(s)")
            && explain.contains("constraints pushed"),
        "{explain}"
    );

    // Bytes received are billed and limited like lake bytes.
    let out = s
        .engine
        .run(
            QueryRequest::new(format!("SELECT * FROM pg.{schema}.events"))
                .with_database(Some("demo".into())),
        )
        .await;
    assert!(
        out.succeeded() && out.record.bytes_scanned > 0,
        "{:?}",
        out.record.error
    );
    let mut limited = QueryRequest::new(format!("SELECT * FROM pg.{schema}.events"));
    limited.max_bytes_scanned = Some(10);
    let err = s.error(limited).await;
    assert!(err.contains("max-bytes-scanned"), "{err}");

    // An empty range is no rows, not an error; IN and NOT IN travel as sorted ranges.
    assert_eq!(
        s.csv(&format!(
            "SELECT count(*) AS n FROM pg.{schema}.customers WHERE id BETWEEN 3 AND 1"
        ))
        .await,
        "n\n0\n"
    );
    assert_eq!(
        s.csv(&format!("SELECT id FROM pg.{schema}.customers WHERE id IN (3, 1, 3) AND id NOT IN (2) ORDER BY id")).await,
        "id\n1\n3\n"
    );
    // A split larger than a Lambda answer is fine in process (nothing to spill).
    pg.exec(&format!(
        "CREATE TABLE {schema}.big (id int, note text);
         INSERT INTO {schema}.big SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 100000) g;"
    ));
    assert_eq!(
        s.csv(&format!(
            "SELECT count(note) AS n, max(id) AS m FROM pg.{schema}.big"
        ))
        .await,
        "n,m\n100000,100000\n"
    );

    // CTAS from PostgreSQL into the lake, in one statement.
    s.csv(&format!("CREATE TABLE demo.customer_copy WITH (format = 'PARQUET') AS SELECT id, name, balance FROM pg.{schema}.customers")).await;
    assert_eq!(
        s.csv("SELECT count(*) AS n, sum(balance) AS b FROM demo.customer_copy")
            .await,
        "n,b\n4,1230.66\n"
    );
    // And INSERT INTO from PostgreSQL.
    s.csv(&format!("INSERT INTO demo.customer_copy SELECT id, name, balance FROM pg.{schema}.customers WHERE id = 1")).await;
    assert_eq!(
        s.csv("SELECT count(*) AS n FROM demo.customer_copy WHERE id = 1")
            .await,
        "n\n2\n"
    );
}

#[tokio::test]
async fn an_unreachable_or_unknown_catalog_is_a_clear_error() {
    let s = engine_setup("fed_err").await;
    let err = s
        .error(QueryRequest::new("SELECT * FROM nosuch.public.t"))
        .await;
    assert!(
        err.contains("catalog nosuch does not exist") && err.contains("quarry catalog add"),
        "{err}"
    );
    // A server that is down: the error names the catalog and the connector.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    quarry_query::federated::add(
        &catalog,
        &DataCatalog {
            name: "down".into(),
            source: Source::Connector {
                connector: "postgres".into(),
                uri: format!("postgresql://quarry:hunter2@127.0.0.1:{closed}/x"),
            },
            description: None,
        },
    )
    .expect("register");
    let engine = Engine::new(
        catalog.clone(),
        Arc::new(ObjectStores::new()),
        EngineConfig::default(),
    )
    .with_history(catalog);
    let out = engine
        .run(QueryRequest::new("SELECT * FROM down.public.t"))
        .await;
    let err = out.record.error.unwrap_or_default();
    assert!(
        err.contains("catalog down") && err.contains("cannot connect"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password never shows: {err}");
}

/// A DynamoDB table on moto: hash key `customer`, range key `order_id`, 30 items of mixed shapes.
async fn dynamodb_table(hint: &str) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue as A, BillingMode, KeySchemaElement, KeyType,
        ScalarAttributeType,
    };
    let ddb = quarry_tests::dynamodb();
    let name = unique_name(hint);
    ddb.create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("customer")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("order_id")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .expect("attr"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("customer")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("order_id")
                .key_type(KeyType::Range)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("create table");
    for i in 0..30 {
        let mut item = std::collections::HashMap::from([
            ("customer".to_owned(), A::S(format!("c{}", i % 5))),
            ("order_id".to_owned(), A::N(i.to_string())),
            ("amount".to_owned(), A::N(format!("{}.25", i))),
            (
                "status".to_owned(),
                A::S(if i % 3 == 0 { "shipped" } else { "open" }.into()),
            ),
        ]);
        if i % 2 == 0 {
            item.insert("tags".into(), A::Ss(vec!["a".into(), format!("t{i}")]));
            item.insert(
                "details".into(),
                A::M(std::collections::HashMap::from([(
                    "k".to_owned(),
                    A::N(i.to_string()),
                )])),
            );
        }
        ddb.put_item()
            .table_name(&name)
            .set_item(Some(item))
            .send()
            .await
            .expect("put");
    }
    name
}

fn text_domain(values: &[&str]) -> Domain {
    Domain {
        data_type: DataType::Utf8,
        values: Values::Set {
            values: values.iter().map(|v| Value::Text((*v).into())).collect(),
            white_list: true,
        },
        null_allowed: false,
    }
}

#[tokio::test]
async fn the_dynamodb_connector_queries_by_hash_key_and_scans_in_segments() {
    use quarry_federation::constraints::{Endpoint, Range};
    let table = dynamodb_table("ddb_proto").await;
    let connector =
        quarry_federation::dynamodb::DynamoDb::new(quarry_tests::dynamodb()).with_segments(3);
    let transport = InProcess::new("dynamodb", Handler::new(Arc::new(connector), None));
    let client = Client::new(Arc::new(transport), "ddb", Duration::from_secs(30));
    assert_eq!(client.list_schemas().await.expect("schemas"), ["default"]);
    let tables = client.list_tables("default").await.expect("tables");
    assert!(tables.iter().any(|t| t.table_name == table.to_lowercase()));

    // Inferred from a sample: the keys first, N as decimal(38,9), sets as arrays, maps as JSON.
    let remote = client
        .get_table(&TableName::new("default", &table))
        .await
        .expect("table");
    let names: Vec<&str> = remote
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(
        names,
        [
            "customer", "order_id", "amount", "details", "status", "tags"
        ]
    );
    let t = |n: &str| {
        remote
            .schema
            .field_with_name(n)
            .expect(n)
            .data_type()
            .clone()
    };
    assert_eq!(t("order_id"), DataType::Decimal128(38, 9));
    assert_eq!(t("details"), DataType::Utf8);
    assert!(matches!(t("tags"), DataType::List(f) if f.data_type() == &DataType::Utf8));

    // No key constraint: three parallel Scan segments that together read every item once.
    let scan = client
        .splits("q1", &remote, &Constraints::default())
        .await
        .expect("splits");
    assert_eq!(scan.len(), 3);
    assert!(scan.iter().all(|s| s.properties["kind"] == "scan"));
    let read = read_splits(&client, "q1", &remote, &scan, &Constraints::default()).await;
    assert_eq!(row_count(&read), 30);

    // Hash key IN (..): one Query per value; a range-key constraint joins the key condition, and
    // another column's becomes a FilterExpression, applied by DynamoDB (the connector returns
    // only matching items; nothing else filters them here).
    let mut constraints = Constraints::default();
    constraints.summary.insert(
        "customer".into(),
        text_domain(&["c1", "c2"])
            .to_value_set(Framing::Continuation)
            .expect("enc"),
    );
    let range = Domain {
        data_type: DataType::Decimal128(38, 9),
        values: Values::Ranges(vec![Range {
            low: Some(Endpoint {
                value: Value::Int(10),
                inclusive: false,
            }),
            high: None,
        }]),
        null_allowed: false,
    };
    constraints.summary.insert(
        "order_id".into(),
        range.to_value_set(Framing::Continuation).expect("enc"),
    );
    constraints.summary.insert(
        "status".into(),
        text_domain(&["open"])
            .to_value_set(Framing::Continuation)
            .expect("enc"),
    );
    let queries = client
        .splits("q2", &remote, &constraints)
        .await
        .expect("splits");
    assert_eq!(queries.len(), 2);
    assert!(queries.iter().all(|s| s.properties["kind"] == "query"));
    let read = read_splits(&client, "q2", &remote, &queries, &constraints).await;
    // customer c1/c2 (i % 5 in 1, 2), order_id > 10, not a multiple of 3: 11, 16, 22, 26, 17(=c2) ...
    let expected = (11..30)
        .filter(|i| (i % 5 == 1 || i % 5 == 2) && i % 3 != 0)
        .count();
    assert_eq!(row_count(&read), expected);

    // A hostile value is only ever a placeholder value.
    let mut hostile = Constraints::default();
    hostile.summary.insert(
        "status".into(),
        text_domain(&["open) OR (attribute_exists(customer)"])
            .to_value_set(Framing::Continuation)
            .expect("enc"),
    );
    let read = read_splits(&client, "q3", &remote, &scan, &hostile).await;
    assert_eq!(row_count(&read), 0);

    // LIMIT with a pushed filter stops after enough matching items.
    let mut limited = Constraints::default();
    limited.summary.insert(
        "status".into(),
        text_domain(&["shipped"])
            .to_value_set(Framing::Continuation)
            .expect("enc"),
    );
    limited.limit = Some(2);
    let records = client
        .read("q4", &remote.name, &remote.schema, &scan[0], &limited)
        .await
        .expect("read");
    let n: usize = records.batches.iter().map(|b| b.num_rows()).sum();
    assert!(n <= 2, "{n}");

    // Columns declared by a catalog table of the same name win over inference.
    use quarry_catalog::Catalog;
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    let declared = quarry_tests::redis_table(
        "ddb",
        &table.to_lowercase(),
        &[
            ("customer", "string"),
            ("order_id", "bigint"),
            ("amount", "double"),
            ("status", "string"),
        ],
        &[],
    );
    catalog
        .commit(quarry_catalog::CatalogWrite {
            databases: vec![quarry_catalog::Database::new("ddb")],
            tables: vec![quarry_catalog::TableWrite {
                table: declared,
                expected_version: None,
            }],
            ..Default::default()
        })
        .await
        .expect("declare");
    let connector = quarry_federation::dynamodb::DynamoDb::new(quarry_tests::dynamodb())
        .with_schemas(quarry_federation::dynamodb::SchemaSource {
            catalog: catalog as Arc<dyn Catalog>,
            database: "ddb".into(),
        });
    let transport = InProcess::new("dynamodb", Handler::new(Arc::new(connector), None));
    let client = Client::new(Arc::new(transport), "ddb", Duration::from_secs(30));
    let remote = client
        .get_table(&TableName::new("default", &table))
        .await
        .expect("declared");
    let types: Vec<DataType> = remote
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types,
        [
            DataType::Utf8,
            DataType::Int64,
            DataType::Float64,
            DataType::Utf8
        ]
    );
    let splits = client
        .splits("q5", &remote, &Constraints::default())
        .await
        .expect("splits");
    let mut total = 0.0;
    for split in &splits {
        let records = client
            .read(
                "q5",
                &remote.name,
                &remote.schema,
                split,
                &Constraints::default(),
            )
            .await
            .expect("read");
        for batch in &records.batches {
            let amounts = batch
                .column_by_name("amount")
                .expect("amount")
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            total += amounts.iter().flatten().sum::<f64>();
        }
    }
    // sum(i + 0.25) for i in 0..30
    assert!((total - 442.5).abs() < 1e-9, "{total}");
}

#[tokio::test]
async fn redis_tables_declared_in_the_catalog_join_the_lake() {
    use quarry_catalog::Catalog;
    let redis = quarry_tests::redis();
    let prefix = unique_name("r");
    for (i, (name, age)) in [("Bo", "41"), ("Eve", "29"), ("Smith, Jane", "35")]
        .iter()
        .enumerate()
    {
        redis.cmd(&[
            "HSET",
            &format!("{prefix}:user:{i}"),
            "Name",
            name,
            "age",
            age,
        ]);
    }
    redis.cmd(&["SET", &format!("{prefix}:hits:home"), "12"]);
    redis.cmd(&["SET", &format!("{prefix}:hits:about"), "3"]);
    redis.cmd(&[
        "ZADD",
        &format!("{prefix}:active"),
        "1",
        &format!("{prefix}:user:0"),
        "2",
        &format!("{prefix}:user:2"),
    ]);
    redis.cmd(&[
        "HSET",
        &format!("{prefix}:bad:0"),
        "name",
        "x",
        "age",
        "old",
    ]);
    redis.cmd(&["ZADD", &format!("{prefix}:tags:a"), "1", "red", "2", "blue"]);

    let lake = Lake::sample(Backend::Local).await;
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    Crawler::new(catalog.clone(), CrawlConfig::new("demo"))
        .crawl(&lake.location)
        .await
        .expect("crawl");
    let endpoint = format!("127.0.0.1:{}", redis.port);
    let hash = |keys: (&'static str, String)| {
        vec![
            ("redis-endpoint", endpoint.clone()),
            ("redis-value-type", "hash".to_owned()),
            (keys.0, keys.1),
        ]
    };
    let tables = vec![
        quarry_tests::redis_table(
            "cache",
            "users",
            &[("name", "string"), ("age", "int")],
            &hash(("redis-key-prefix", format!("{prefix}:user:*"))),
        ),
        quarry_tests::redis_table(
            "cache",
            "active_users",
            &[("name", "string"), ("age", "int")],
            &hash(("redis-keys-zset", format!("{prefix}:active"))),
        ),
        quarry_tests::redis_table(
            "cache",
            "bad",
            &[("name", "string"), ("age", "int")],
            &hash(("redis-key-prefix", format!("{prefix}:bad:"))),
        ),
        quarry_tests::redis_table(
            "cache",
            "tags",
            &[("tag", "string")],
            &[
                ("redis-endpoint", endpoint.clone()),
                ("redis-value-type", "zset".to_owned()),
                ("redis-key-prefix", format!("{prefix}:tags:")),
            ],
        ),
        quarry_tests::redis_table(
            "cache",
            "hits",
            &[("hits", "bigint")],
            &[
                ("redis-endpoint", endpoint.clone()),
                ("redis-value-type", "literal".to_owned()),
                ("redis-key-prefix", format!("{prefix}:hits:")),
            ],
        ),
    ];
    catalog
        .commit(quarry_catalog::CatalogWrite {
            databases: vec![quarry_catalog::Database::new("cache")],
            tables: tables
                .into_iter()
                .map(|table| quarry_catalog::TableWrite {
                    table,
                    expected_version: None,
                })
                .collect(),
            ..Default::default()
        })
        .await
        .expect("declare tables");
    quarry_query::federated::add(
        &catalog,
        &DataCatalog {
            name: "kv".into(),
            source: Source::Connector {
                connector: "redis".into(),
                uri: String::new(),
            },
            description: None,
        },
    )
    .expect("register");
    let engine = Engine::new(
        catalog.clone(),
        Arc::new(ObjectStores::new()),
        EngineConfig::default(),
    )
    .with_history(catalog);
    let s = Setup {
        _lake: lake,
        engine,
        schema: String::new(),
    };

    assert!(s.csv("SHOW DATABASES IN kv").await.contains("cache"));
    assert_eq!(
        s.csv("SHOW TABLES IN kv.cache").await,
        "tab_name\nactive_users\nbad\nhits\ntags\nusers\n"
    );
    // Hash fields are columns (matched ignoring case), with the key beside them.
    assert_eq!(
        s.csv("SELECT name, age, _key_ LIKE '%:user:%' AS k FROM kv.cache.users WHERE age > 30 ORDER BY name").await,
        "name,age,k\nBo,41,true\n\"Smith, Jane\",35,true\n"
    );
    // Keys from a sorted set.
    assert_eq!(
        s.csv("SELECT name FROM kv.cache.active_users ORDER BY name")
            .await,
        "name\nBo\n\"Smith, Jane\"\n"
    );
    // Sorted-set values: one row per member.
    assert_eq!(
        s.csv("SELECT tag FROM kv.cache.tags ORDER BY tag").await,
        "tag\nblue\nred\n"
    );
    // Literal values.
    assert_eq!(
        s.csv("SELECT sum(hits) AS h, count(*) AS n FROM kv.cache.hits")
            .await,
        "h,n\n15,2\n"
    );
    // A join with a lake table.
    assert_eq!(
        s.csv("SELECT s.customer, u.age, s.amount FROM sales s JOIN kv.cache.users u ON u.name = s.customer ORDER BY 1").await,
        "customer,age,amount\nBo,41,7.0\nEve,29,1.0\n\"Smith, Jane\",35,12.5\n"
    );
    // A value that is not its column's type names the column and the key.
    let err = s
        .error(QueryRequest::new("SELECT * FROM kv.cache.bad"))
        .await;
    assert!(
        err.contains("age") && err.contains(&format!("{prefix}:bad:0")) && err.contains("\"old\""),
        "{err}"
    );
}

#[tokio::test]
async fn a_large_table_is_read_in_primary_key_ranges_without_overlap() {
    let pg = postgres();
    let schema = unique_name("fed_ranges");
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (id bigint PRIMARY KEY, v int);
         INSERT INTO {schema}.t SELECT g, g % 7 FROM generate_series(-50, 949) g; ANALYZE {schema}.t;"
    ));
    let connector = Postgres::new(&pg.uri)
        .expect("uri")
        .with_rows_per_split(300);
    let transport = InProcess::new("postgres", Handler::new(Arc::new(connector), None));
    let client = Client::new(Arc::new(transport), "pg", Duration::from_secs(30));
    let remote = client
        .get_table(&TableName::new(&schema, "t"))
        .await
        .expect("table");
    let splits = client
        .splits("q", &remote, &Constraints::default())
        .await
        .expect("splits");
    assert_eq!(splits.len(), 4, "1,000 rows at 300 a range");
    let mut ids = Vec::new();
    for split in &splits {
        assert!(split.properties.contains_key("pk_column"));
        let records = client
            .read(
                "q",
                &remote.name,
                &remote.schema,
                split,
                &Constraints::default(),
            )
            .await
            .expect("read");
        for batch in &records.batches {
            let column = batch.column_by_name("id").expect("id");
            let values = column.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            ids.extend(values.iter().flatten());
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (-50..950).collect::<Vec<i64>>(), "every row once");
}
