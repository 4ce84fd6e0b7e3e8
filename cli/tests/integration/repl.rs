//! The interactive REPL, driven through a pseudo-terminal as a person would use it.

use std::process::Command;

use rexpect::session::spawn_command;

fn crawled() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args([
            "crawl",
            &quarry_tests::sample_data().to_string_lossy(),
            "-d",
            "demo",
        ])
        .env("QUARRY_CATALOG", dir.path().join("catalog.db"))
        .output()
        .expect("crawl");
    assert!(status.status.success(), "{status:?}");
    dir
}

fn repl(dir: &tempfile::TempDir) -> rexpect::session::PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quarry"));
    cmd.args(["sql", "-d", "demo"])
        .env("QUARRY_CATALOG", dir.path().join("catalog.db"))
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("TERM", "xterm");
    let mut p = spawn_command(cmd, Some(30_000)).expect("spawn the REPL");
    p.exp_string("demo> ").expect("prompt");
    p
}

#[test]
fn repl_runs_multiline_statements_completes_names_and_keeps_history() {
    let dir = crawled();
    let mut p = repl(&dir);
    p.send_line("SELECT count(*) AS n").expect("send");
    p.send_line("FROM sales;").expect("send");
    p.exp_string("| 5 |").expect("the count");
    // (the pty reads bytes as Latin-1, so the '·' separators are matched loosely)
    p.exp_regex(
        r"1 row \S+ [0-9.]+ s \S+ scanned [0-9.]+ [KM]?B \S+ \$0\.0000[0-9] \(billed 10\.0 MB\)",
    )
    .expect("the footer");
    p.exp_string("demo> ").expect("prompt again");

    // Tab completes a table name from the catalog.
    p.send("SELECT max(order_id) AS m FROM sal\t")
        .expect("send");
    p.flush().expect("flush");
    p.exp_string("sales").expect("completed");
    p.send_line(";").expect("send");
    p.exp_string("| 5 |")
        .expect("result over the completed table");
    p.exp_string("demo> ").expect("prompt");

    p.send_line("\\dt").expect("send");
    p.exp_string("metrics").expect("table list");
    p.exp_string("demo> ").expect("prompt");
    p.send_line("\\q").expect("send");
    p.exp_eof().expect("exits");

    let history =
        std::fs::read_to_string(dir.path().join("data/quarry/sql_history")).expect("history file");
    assert!(history.contains("FROM sales;"), "{history}");
}

#[test]
fn ctrl_c_cancels_the_running_query_not_the_repl() {
    let dir = crawled();
    let mut p = repl(&dir);
    p.send_line("SELECT count(*) FROM range(100000000000);")
        .expect("send");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    p.send_control('c').expect("ctrl-c");
    p.exp_string("query cancelled").expect("cancelled");
    p.exp_string("CANCELLED").expect("footer");
    p.exp_string("demo> ").expect("the REPL is still there");
    p.send_line("SELECT 40 + 2 AS x;").expect("send");
    p.exp_string("| 42 |").expect("still works");
    p.send_control('d').expect("ctrl-d");
    p.exp_eof().expect("exits");
}
