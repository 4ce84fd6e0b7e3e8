//! A corpus of hostile files (issue 16), each with its expected outcome: the crawl catalogues it
//! (and queries read it right) or skips it with a reason naming what is wrong; never a panic,
//! never a silently wrong column or value. One lake, one crawl, then a query per table.

use std::io::Write;
use std::sync::Arc;

use quarry_catalog::{Catalog, SqliteCatalog};
use quarry_crawler::{CrawlConfig, Crawler};
use quarry_query::{Engine, EngineConfig, ObjectStores, OutputFormat, QueryRequest, render};
use quarry_tests::{Backend, Lake};

/// The length of the long line's value.
const LONG_LINE: usize = 200 << 20;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// A small valid Parquet file (id bigint, name string) from the sample lake's metrics table.
fn parquet() -> Vec<u8> {
    std::fs::read(quarry_tests::sample_data().join("metrics/year=2024/month=1/part-0.parquet"))
        .expect("sample parquet")
}

struct Corpus {
    _lake: Lake,
    engine: Engine,
    report: quarry_crawler::CrawlReport,
    catalog: Arc<SqliteCatalog>,
    bomb_rows: usize,
    /// The size it decompresses to.
    bomb_bytes: usize,
}

impl Corpus {
    async fn csv(&self, sql: &str) -> Result<String, String> {
        let out = self
            .engine
            .run(QueryRequest::new(sql).with_database(Some("h".into())))
            .await;
        match out.record.error {
            Some(e) => Err(e),
            None => Ok(render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv")),
        }
    }

    fn skipped(&self, table: &str) -> Option<String> {
        self.report
            .skipped
            .iter()
            .find(|s| s.url.contains(&format!("/{table}/")))
            .map(|s| format!("{:?}: {}", s.reason, s.detail))
    }

    async fn columns(&self, table: &str) -> Vec<(String, String)> {
        let t = self
            .catalog
            .get_table("h", table)
            .await
            .expect("catalog")
            .unwrap_or_else(|| panic!("{table} was not catalogued: {:?}", self.skipped(table)));
        t.storage
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.data_type.clone()))
            .collect()
    }
}

async fn corpus() -> Corpus {
    let lake = Lake::empty(Backend::Local).await;
    // UTF-8 byte-order mark before the header.
    lake.put(
        "bom_csv/part-0.csv",
        b"\xEF\xBB\xBFid,name\n1,a\n2,b\n".to_vec(),
    )
    .await;
    // UTF-16 text (little-endian, with its mark).
    let utf16: Vec<u8> = "id,name\n1,a\n"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    lake.put("utf16_csv/part-0.csv", [vec![0xFF, 0xFE], utf16].concat())
        .await;
    // CRLF and mixed line ends.
    lake.put(
        "crlf_csv/part-0.csv",
        b"id,name\r\n1,a\r\n2,b\n3,c\r\n".to_vec(),
    )
    .await;
    // A gzip bomb: 64 MiB of one repeated line in about 64 KiB (1000:1).
    let line = b"1,aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";
    let mut big = b"id,name\n".to_vec();
    while big.len() < 64 << 20 {
        big.extend_from_slice(line);
    }
    let rows = (big.len() - 8) / line.len();
    let bomb_bytes = big.len();
    lake.put("bomb_csv/part-0.csv.gz", gzip(&big)).await;
    drop(big);
    // Deeply nested JSON.
    let deep = format!(
        "{{\"id\":1,\"x\":{}1{}}}\n",
        "{\"a\":".repeat(5000),
        "}".repeat(5000)
    );
    lake.put("deep_json/part-0.json", deep.into_bytes()).await;
    // Duplicate keys in a JSON object.
    lake.put(
        "dup_json/part-0.json",
        b"{\"id\":1,\"name\":\"a\",\"name\":\"b\"}\n{\"id\":2,\"name\":\"c\"}\n".to_vec(),
    )
    .await;
    // Parquet with its footer cut off, and with a page overwritten.
    let good = parquet();
    lake.put(
        "cut_parquet/part-0.parquet",
        good[..good.len() - 20].to_vec(),
    )
    .await;
    let mut bad_page = good.clone();
    for b in bad_page.iter_mut().skip(8).take(64) {
        *b = 0xAB;
    }
    lake.put("page_parquet/part-0.parquet", bad_page).await;
    // A name that lies about the content: CSV called .parquet.
    lake.put("liar/part-0.parquet", b"id,name\n1,a\n".to_vec())
        .await;
    // Text that is not UTF-8: Latin-1 in a CSV, a cut sequence inside a gzipped JSON string.
    lake.put(
        "latin1_csv/part-0.csv",
        b"id,name\n1,caf\xE9\n2,ok\n3,\xFF\xFE\n".to_vec(),
    )
    .await;
    lake.put(
        "cut_utf8_json/part-0.json.gz",
        gzip(b"{\"id\":1,\"name\":\"a\xC3(\"}\n{\"id\":2,\"name\":\"b\"}\n"),
    )
    .await;
    // A 200 MB line (one field) between two short ones.
    let mut long = b"id,blob\n0,x\n1,".to_vec();
    long.resize(long.len() + LONG_LINE, b'a');
    long.extend_from_slice(b"\n2,b\n");
    lake.put("long_line/part-0.csv", long).await;
    // A CSV with a header and no columns (empty lines only).
    lake.put("empty_header/part-0.csv", b"\n\n\n".to_vec())
        .await;

    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    let report = Crawler::new(catalog.clone(), CrawlConfig::new("h"))
        .crawl(&lake.location)
        .await
        .expect("the crawl finishes");
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, lake.location.store.clone());
    let engine =
        Engine::new(catalog.clone(), stores, EngineConfig::default()).with_history(catalog.clone());
    assert!(rows > 2_000_000);
    Corpus {
        _lake: lake,
        engine,
        report,
        catalog,
        bomb_rows: rows,
        bomb_bytes,
    }
}

#[tokio::test]
async fn every_hostile_file_is_read_right_or_refused_with_a_reason() {
    let c = corpus().await;

    // A UTF-8 mark is not part of the first column's name.
    assert_eq!(c.columns("bom_csv").await[0].0, "id");
    assert_eq!(
        c.csv("SELECT sum(id) AS s FROM bom_csv").await.as_deref(),
        Ok("s\n3\n")
    );

    // UTF-16 is refused, saying so.
    let why = c
        .skipped("utf16_csv")
        .unwrap_or_else(|| panic!("utf16 was catalogued: {:?}", c.report));
    assert!(why.contains("UTF-16"), "{why}");

    // CRLF: no carriage return in any value.
    assert_eq!(
        c.csv("SELECT string_agg(name, '|' ORDER BY id) AS n FROM crlf_csv")
            .await
            .as_deref(),
        Ok("n\na|b|c\n")
    );

    // The gzip bomb: inferred from a bounded sample, every row counted.
    assert_eq!(
        c.columns("bomb_csv").await,
        [
            ("id".to_owned(), "bigint".to_owned()),
            ("name".to_owned(), "string".to_owned())
        ]
    );
    let counted = c
        .csv("SELECT count(*) AS n FROM bomb_csv")
        .await
        .expect("bomb query");
    assert_eq!(counted, format!("n\n{}\n", c.bomb_rows));

    // Deep JSON nesting: refused with a reason, not a stack overflow.
    if let Some(why) = c.skipped("deep_json") {
        assert!(
            why.to_lowercase().contains("nest") || why.contains("recursion"),
            "{why}"
        );
    } else {
        let _ = c.csv("SELECT count(*) FROM deep_json").await;
    }

    // Duplicate keys: the last value wins, as in Athena's JSON SerDe.
    assert_eq!(
        c.csv("SELECT name FROM dup_json ORDER BY id")
            .await
            .as_deref(),
        Ok("name\nb\nc\n")
    );

    // A cut Parquet footer is skipped, naming the object.
    let why = c
        .skipped("cut_parquet")
        .unwrap_or_else(|| panic!("cut parquet was catalogued"));
    assert!(why.to_lowercase().contains("parquet"), "{why}");
    // A damaged page: catalogued from its footer; the query fails with Parquet's decoding error,
    // naming the object, rather than returning wrong rows.
    if c.skipped("page_parquet").is_none() {
        let err = c
            .csv("SELECT * FROM page_parquet")
            .await
            .expect_err("damaged pages");
        assert!(err.contains("Parquet"), "{err}");
        assert!(err.contains("page_parquet/part-0.parquet"), "{err}");
    }

    // Not UTF-8: catalogued with a warning naming the line; queries read U+FFFD, as Athena.
    let warning = |table: &str| {
        c.report
            .warnings
            .iter()
            .find(|w| w.url.contains(&format!("/{table}/")))
            .map(|w| w.detail.clone())
            .unwrap_or_else(|| panic!("no warning for {table}: {:?}", c.report.warnings))
    };
    let why = warning("latin1_csv");
    assert!(why.contains("line 2") && why.contains("U+FFFD"), "{why}");
    assert!(
        c.report
            .to_string()
            .contains("latin1_csv/part-0.csv: line 2")
    );
    assert_eq!(
        c.csv("SELECT id, name FROM latin1_csv ORDER BY id")
            .await
            .as_deref(),
        Ok("id,name\n1,caf\u{FFFD}\n2,ok\n3,\u{FFFD}\u{FFFD}\n")
    );
    assert!(warning("cut_utf8_json").contains("line 1"));
    // The gzip bomb is reported with its expansion (from gzip's size trailer).
    let bomb = warning("bomb_csv");
    assert!(
        bomb.contains("decompresses") && bomb.contains(&c.bomb_bytes.to_string()),
        "{bomb}"
    );
    assert_eq!(
        c.csv("SELECT name FROM cut_utf8_json ORDER BY id")
            .await
            .as_deref(),
        Ok("name\na\u{FFFD}(\nb\n")
    );

    // The long line: read whole, between its neighbours.
    assert_eq!(
        c.csv("SELECT id, length(blob) AS n FROM long_line ORDER BY id")
            .await
            .as_deref(),
        Ok(format!("id,n\n0,1\n1,{LONG_LINE}\n2,1\n").as_str())
    );

    // Content decides, not the name.
    assert_eq!(
        c.columns("liar").await,
        [
            ("id".to_owned(), "bigint".to_owned()),
            ("name".to_owned(), "string".to_owned())
        ]
    );

    // No columns: refused with a reason.
    let why = c
        .skipped("empty_header")
        .unwrap_or_else(|| panic!("a file without columns was catalogued"));
    assert!(!why.is_empty());
}
