//! The typed statement layer: one SQL statement, parsed once, into what Quarry executes.
//!
//! Athena's DDL is Hive's (backticks, Hive type strings, `ROW FORMAT`, `TBLPROPERTIES`), its writes
//! are Trino's (`CREATE TABLE .. WITH (..) AS`, `INSERT INTO`, `UNLOAD`), and sqlparser 0.62
//! covers only part of either (`map<..>` types, a table `COMMENT`, several partitions with
//! `LOCATION`s, `WITH NO DATA`, ...). This module recognises those statements from sqlparser's
//! tokens and parses them itself, with sqlparser's own [`Parser`] for the pieces it does well
//! (queries, identifiers); everything else goes to DataFusion's parser untouched and comes back
//! as [`Statement::Query`].
//!
//! ```
//! use quarry_query::statement::{self, Statement};
//!
//! let stmt = statement::parse(
//!     "ALTER TABLE logs ADD PARTITION (dt='2024-01-01') LOCATION 's3://b/logs/2024-01-01/'",
//!     "generic",
//! )?;
//! let Statement::AddPartitions { table, partitions, .. } = stmt else { unreachable!() };
//! assert_eq!(table.to_string(), "logs");
//! assert_eq!(partitions[0].0.0, vec![("dt".to_string(), "2024-01-01".to_string())]);
//! # Ok::<(), datafusion::error::DataFusionError>(())
//! ```
//!
//! String literals in the Hive DDL statements (`CREATE EXTERNAL TABLE`, `CREATE DATABASE`,
//! `ALTER TABLE`) have Hive's backslash escapes processed (`'\t'` is a tab, `'\001'` is U+0001,
//! `'\\S+'` is `\S+`), which is what Athena stores in Glue; in the other statements they are
//! Trino strings and are kept as written.

use std::fmt;

use datafusion::error::DataFusionError;
use datafusion::sql::parser::{DFParser, DFParserBuilder};
use datafusion::sql::sqlparser::ast::{Expr, Query};
use datafusion::sql::sqlparser::dialect::{GenericDialect, dialect_from_str};
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Word};

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// Anything DataFusion plans itself (SELECT, EXPLAIN, SHOW COLUMNS, CREATE VIEW, ...).
    Query(datafusion::sql::parser::Statement),
    /// `EXPLAIN COST <statement>`: Quarry's dry run in SQL (the bytes it would scan, the price).
    ExplainCost(Box<Statement>),
    /// `CREATE DATABASE|SCHEMA [IF NOT EXISTS] db [COMMENT '..'] [LOCATION '..']
    /// [WITH DBPROPERTIES ('k'='v', ..)]`
    CreateDatabase {
        /// The database, folded to lower case unless quoted.
        name: String,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
        /// `COMMENT '..'`.
        comment: Option<String>,
        /// `LOCATION '..'`.
        location: Option<String>,
        /// `WITH DBPROPERTIES (..)`, in the order written.
        properties: Vec<(String, String)>,
    },
    /// `DROP DATABASE|SCHEMA [IF EXISTS] db [RESTRICT|CASCADE]`
    DropDatabase {
        /// The database, folded to lower case unless quoted.
        name: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
        /// `CASCADE` was given (`RESTRICT`, the default, is `false`).
        cascade: bool,
    },
    /// `CREATE [EXTERNAL] TABLE t (..) ...` without `AS`.
    CreateExternalTable(Box<ExternalTable>),
    /// `DROP TABLE [IF EXISTS] t`
    DropTable {
        /// The table.
        name: TableName,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `ALTER TABLE t ADD [IF NOT EXISTS] PARTITION (..) [LOCATION '..'] [PARTITION (..) ..]`
    AddPartitions {
        /// The table.
        table: TableName,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
        /// Each partition with its `LOCATION`, if given.
        partitions: Vec<(PartitionSpec, Option<String>)>,
    },
    /// `ALTER TABLE t DROP [IF EXISTS] PARTITION (..) [, PARTITION (..)]` (also sqlparser's
    /// `, DROP PARTITION (..)` form).
    DropPartitions {
        /// The table.
        table: TableName,
        /// `IF EXISTS` was given.
        if_exists: bool,
        /// The partitions, in the order written.
        partitions: Vec<PartitionSpec>,
    },
    /// `ALTER TABLE t PARTITION (..) SET LOCATION '..'`
    SetPartitionLocation {
        /// The table.
        table: TableName,
        /// The partition.
        partition: PartitionSpec,
        /// The new location.
        location: String,
    },
    /// `ALTER TABLE t SET TBLPROPERTIES ('k'='v', ..)`
    SetTableProperties {
        /// The table.
        table: TableName,
        /// The properties, in the order written.
        properties: Vec<(String, String)>,
    },
    /// `ALTER TABLE t ADD COLUMNS (c type [COMMENT '..'], ..)`
    AddColumns {
        /// The table.
        table: TableName,
        /// The new columns.
        columns: Vec<ColumnDef>,
    },
    /// `ALTER TABLE t REPLACE COLUMNS (c type [COMMENT '..'], ..)`
    ReplaceColumns {
        /// The table.
        table: TableName,
        /// The complete new column list (partition keys are not in it).
        columns: Vec<ColumnDef>,
    },
    /// `MSCK REPAIR TABLE t`
    MsckRepair {
        /// The table.
        table: TableName,
    },
    /// `SHOW CREATE TABLE t`
    ShowCreateTable {
        /// The table.
        table: TableName,
    },
    /// `SHOW TBLPROPERTIES t [('key')]`
    ShowTableProperties {
        /// The table.
        table: TableName,
        /// The one property asked for.
        key: Option<String>,
    },
    /// `SHOW PARTITIONS t`
    ShowPartitions {
        /// The table.
        table: TableName,
    },
    /// `SHOW DATABASES|SCHEMAS [IN|FROM catalog] [[LIKE] 'pattern']`
    ShowDatabases {
        /// A federated catalog, when named.
        catalog: Option<String>,
        /// The pattern as written.
        like: Option<String>,
    },
    /// `SHOW TABLES [IN|FROM [catalog.]db] [[LIKE] 'pattern']`
    ShowTables {
        /// A federated catalog, when named.
        catalog: Option<String>,
        /// The database, folded to lower case unless quoted.
        database: Option<String>,
        /// The pattern as written.
        like: Option<String>,
    },
    /// `DESCRIBE|DESC [FORMATTED|EXTENDED] t` (`DESCRIBE SELECT ..` stays a [`Statement::Query`]).
    Describe {
        /// The table.
        table: TableName,
    },
    /// `ANALYZE [TABLE] t [COMPUTE STATISTICS] [FOR COLUMNS a, b | FOR ALL COLUMNS]`: compute
    /// column statistics and keep them in the catalog. `columns`: `None` for all.
    Analyze {
        table: TableName,
        columns: Option<Vec<String>>,
    },
    /// `CREATE TABLE t [WITH (..)] AS query [WITH [NO] DATA]`
    CreateTableAs(Box<CreateTableAs>),
    /// `INSERT INTO t [(a, b)] query`
    Insert(Box<Insert>),
    /// `UNLOAD (query) TO 'url' [WITH (..)]`
    Unload(Box<Unload>),
    /// `CREATE [OR REPLACE] VIEW v [COMMENT '..'] [SECURITY DEFINER|INVOKER] AS query`
    CreateView(Box<CreateView>),
    /// `DROP VIEW [IF EXISTS] v`
    DropView {
        /// The view.
        name: TableName,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `SHOW VIEWS [IN|FROM db] [[LIKE] 'pattern']`
    ShowViews {
        /// The database, folded to lower case unless quoted.
        database: Option<String>,
        /// The pattern as written.
        like: Option<String>,
    },
    /// `SHOW CREATE VIEW v`
    ShowCreateView {
        /// The view.
        view: TableName,
    },
    /// `PREPARE name FROM statement`
    Prepare {
        /// The prepared statement's name, folded to lower case unless quoted.
        name: String,
        /// The statement as written, `?` parameters included.
        sql: String,
    },
    /// `EXECUTE name [USING value, ..]`
    Execute {
        /// The prepared statement.
        name: String,
        /// The values for its `?` parameters, in order.
        values: Vec<Expr>,
    },
    /// `DEALLOCATE PREPARE name`
    Deallocate {
        /// The prepared statement.
        name: String,
    },
    /// `DESCRIBE INPUT name`: the prepared statement's parameters and their types.
    DescribeInput {
        /// The prepared statement.
        name: String,
    },
    /// `DESCRIBE OUTPUT name`: the prepared statement's result columns.
    DescribeOutput {
        /// The prepared statement.
        name: String,
    },
}

/// `CREATE [OR REPLACE] VIEW`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateView {
    /// The view.
    pub name: TableName,
    /// `OR REPLACE` was given.
    pub or_replace: bool,
    /// `COMMENT '..'`.
    pub comment: Option<String>,
    /// The query, as Quarry plans it (Athena syntax rewritten).
    pub query: Box<Query>,
    /// The query exactly as written: what the view stores, so Athena reads it too.
    pub sql: String,
}

/// A table as written: 1 to 3 parts (`catalog.db.table`), each folded to lower case unless quoted
/// (double quotes or backticks), as Athena does.
#[derive(Debug, Clone, PartialEq)]
pub struct TableName {
    /// The catalog, when three parts were written.
    pub catalog: Option<String>,
    /// The database, when two or three parts were written.
    pub database: Option<String>,
    /// The table.
    pub table: String,
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [self.catalog.as_deref(), self.database.as_deref()];
        for part in parts.into_iter().flatten() {
            write_ident(f, part)?;
            f.write_str(".")?;
        }
        write_ident(f, &self.table)
    }
}

/// Write `name` bare when it reads back as itself unquoted, else double-quoted.
fn write_ident(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let bare = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare {
        f.write_str(name)
    } else {
        f.write_str(&quoted(name))
    }
}

/// `name` double-quoted as a SQL identifier (`"` doubled), whatever it holds: safe for
/// generated SQL, where a column may be called `date` or `order`.
pub fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `(k='v', k2=3)`: keys folded to lower case; values as text (string literal content, or a
/// number or identifier as written). `NULL` is not allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionSpec(pub Vec<(String, String)>);

/// A column in Hive DDL.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    /// The column, folded to lower case unless quoted.
    pub name: String,
    /// The Hive type string, lower case, without spaces: `bigint`, `decimal(10,2)`,
    /// `varchar(10)`, `array<struct<a:int,b:map<string,array<int>>>>`. Always accepted by
    /// [`quarry_catalog::types::from_hive`].
    pub data_type: String,
    /// `COMMENT '..'`.
    pub comment: Option<String>,
}

/// `CREATE [EXTERNAL] TABLE` in Hive DDL.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalTable {
    /// The table.
    pub name: TableName,
    /// `IF NOT EXISTS` was given.
    pub if_not_exists: bool,
    /// `EXTERNAL` was given (`false` for a plain `CREATE TABLE t (cols) ...`).
    pub external: bool,
    /// The data columns (may be empty: Avro tables can take theirs from a property).
    pub columns: Vec<ColumnDef>,
    /// The table `COMMENT '..'`.
    pub comment: Option<String>,
    /// `PARTITIONED BY (..)`.
    pub partitioned_by: Vec<ColumnDef>,
    /// `CLUSTERED BY (cols) INTO n BUCKETS`.
    pub clustered_by: Option<(Vec<String>, u32)>,
    /// `ROW FORMAT ..`.
    pub row_format: Option<RowFormat>,
    /// `STORED AS ..`.
    pub stored_as: Option<StoredAs>,
    /// `WITH SERDEPROPERTIES (..)`, in the order written.
    pub serde_properties: Vec<(String, String)>,
    /// `LOCATION '..'`.
    pub location: Option<String>,
    /// `TBLPROPERTIES (..)`, in the order written.
    pub table_properties: Vec<(String, String)>,
}

/// `ROW FORMAT ..`.
#[derive(Debug, Clone, PartialEq)]
pub enum RowFormat {
    /// `ROW FORMAT DELIMITED ..`: each separator as the characters it stands for.
    Delimited {
        /// `FIELDS TERMINATED BY 'x'`.
        fields_terminated_by: Option<String>,
        /// `ESCAPED BY 'y'` (after `FIELDS TERMINATED BY`).
        escaped_by: Option<String>,
        /// `COLLECTION ITEMS TERMINATED BY 'x'`.
        collection_items_terminated_by: Option<String>,
        /// `MAP KEYS TERMINATED BY 'x'`.
        map_keys_terminated_by: Option<String>,
        /// `LINES TERMINATED BY 'x'`.
        lines_terminated_by: Option<String>,
        /// `NULL DEFINED AS 'x'`.
        null_defined_as: Option<String>,
    },
    /// `ROW FORMAT SERDE 'class'`.
    Serde(String),
}

/// `STORED AS ..`.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredAs {
    /// `STORED AS name`, upper-cased: `PARQUET`, `TEXTFILE`, `JSONFILE`, `ORC`, `AVRO`, `ION`, ...
    Named(String),
    /// `STORED AS INPUTFORMAT 'x' OUTPUTFORMAT 'y'`.
    Formats {
        /// The input format class.
        input: String,
        /// The output format class.
        output: String,
    },
}

/// `CREATE TABLE t [WITH (..)] AS query [WITH [NO] DATA]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateTableAs {
    /// The table.
    pub name: TableName,
    /// `IF NOT EXISTS` was given.
    pub if_not_exists: bool,
    /// `WITH (k = v, ..)`: keys lower-cased, in the order written, each at most once.
    pub properties: Vec<(String, PropertyValue)>,
    /// The query.
    pub query: Query,
    /// `false` for `WITH NO DATA`.
    pub with_data: bool,
}

/// A value in a `WITH (k = v, ..)` property list.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    /// A string literal's content, or a number, boolean or identifier as written.
    Text(String),
    /// `ARRAY['a', 'b']`.
    List(Vec<String>),
}

/// `INSERT INTO t [(a, b)] query`.
#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    /// The table.
    pub table: TableName,
    /// The target columns, folded to lower case unless quoted; empty when not given.
    pub columns: Vec<String>,
    /// `SELECT ..` or `VALUES ..`.
    pub query: Query,
}

/// `UNLOAD (query) TO 'url' [WITH (..)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Unload {
    /// The query.
    pub query: Query,
    /// The destination prefix.
    pub to: String,
    /// `WITH (k = v, ..)`: keys lower-cased, in the order written, each at most once.
    pub properties: Vec<(String, PropertyValue)>,
}

/// Parse one statement. `dialect` is DataFusion's configured SQL dialect name (e.g. `"generic"`).
///
/// Athena DDL and writes become their own variants; anything else is parsed by
/// [`DFParser::parse_statement`] and returned as [`Statement::Query`]. A trailing `;` is allowed;
/// anything after the statement is an error. Errors say what was expected and where
/// (`at Line: l, Column: c`).
pub fn parse(sql: &str, dialect: &str) -> Result<Statement, DataFusionError> {
    let original_sql = sql;
    let mut dialect_impl = dialect_from_str(dialect).ok_or_else(|| {
        DataFusionError::Plan(format!(
            "unsupported SQL dialect '{dialect}': set datafusion.sql_parser.dialect to one \
             sqlparser knows, such as 'generic'"
        ))
    })?;
    // The generic dialect (the default) plus Trino's lambdas.
    if dialect_impl.is::<GenericDialect>() {
        dialect_impl = Box::new(crate::syntax::TrinoDialect);
    }
    let sql = crate::syntax::rewrite_casts(sql);
    let df = DFParserBuilder::new(sql.as_ref())
        .with_dialect(dialect_impl.as_ref())
        .build()?;
    let mut parser = StatementParser {
        dialect: dialect.to_string(),
        original: original_sql,
        parsed: sql.as_ref(),
        df,
        // Dialects that process backslash escapes themselves hand us finished strings.
        hive_escapes: !dialect_impl.supports_string_literal_backslash_escape(),
    };
    let statement = parser.statement()?;
    parser.end()?;
    Ok(statement)
}

type Result<T, E = DataFusionError> = std::result::Result<T, E>;

/// Words that, after `DESCRIBE`, start a query rather than name a table.
const QUERY_STARTS: &[&str] = &["SELECT", "WITH", "VALUES", "TABLE", "FROM"];

/// Which string literals get Hive's backslash escapes processed.
#[derive(Clone, Copy, PartialEq)]
enum Escapes {
    /// Hive DDL: processed.
    Hive,
    /// Trino statements and patterns: kept as written.
    AsWritten,
}

/// The byte offset in `sql` of `start` (a token's line and column, both 1-based, columns in
/// characters); the end of `sql` when it is past it.
fn offset_of(sql: &str, start: Location) -> usize {
    let mut line = 1;
    let mut column = 1;
    for (i, c) in sql.char_indices() {
        if line == start.line && column == start.column {
            return i;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    sql.len()
}

struct StatementParser<'a> {
    /// The configured dialect's name, for statements inside this one.
    dialect: String,
    /// The statement's text as written.
    original: &'a str,
    /// The text the parser reads: `original` with Trino's casts rewritten, identical to it up
    /// to the first rewritten cast.
    parsed: &'a str,
    df: DFParser<'a>,
    /// Process Hive escapes in Hive DDL strings (the tokenizer left them alone).
    hive_escapes: bool,
}

fn sql_error(message: String) -> DataFusionError {
    DataFusionError::SQL(Box::new(ParserError::ParserError(message)), None)
}

fn is_word(token: &Token, keyword: &str) -> bool {
    match token {
        Token::Word(w) => w.quote_style.is_none() && w.value.eq_ignore_ascii_case(keyword),
        _ => false,
    }
}

/// Fold an identifier as Athena does: unquoted names are case-insensitive (lower case).
fn fold(word: &Word) -> String {
    match word.quote_style {
        None => word.value.to_ascii_lowercase(),
        Some(_) => word.value.clone(),
    }
}

impl<'a> StatementParser<'a> {
    fn p(&mut self) -> &mut Parser<'a> {
        &mut self.df.parser
    }

    fn peek(&self, n: usize) -> &Token {
        &self.df.parser.peek_nth_token_ref(n).token
    }

    fn peek_kw(&self, n: usize, keyword: &str) -> bool {
        is_word(self.peek(n), keyword)
    }

    fn location(&self) -> Location {
        self.df.parser.peek_token_ref().span.start
    }

    fn advance(&mut self, n: usize) {
        for _ in 0..n {
            self.p().advance_token();
        }
    }

    /// Consume `keyword` if it is next.
    fn eat_kw(&mut self, keyword: &str) -> bool {
        let found = self.peek_kw(0, keyword);
        if found {
            self.advance(1);
        }
        found
    }

    /// Consume `keywords` if they are all next, in order.
    fn eat_kws(&mut self, keywords: &[&str]) -> bool {
        let found = keywords.iter().enumerate().all(|(i, k)| self.peek_kw(i, k));
        if found {
            self.advance(keywords.len());
        }
        found
    }

    fn expect_kw(&mut self, keyword: &str) -> Result<()> {
        if self.eat_kw(keyword) {
            Ok(())
        } else {
            Err(self.expected(keyword))
        }
    }

    fn expect_kws(&mut self, keywords: &[&str]) -> Result<()> {
        keywords.iter().try_for_each(|k| self.expect_kw(k))
    }

    fn eat(&mut self, token: &Token) -> bool {
        self.p().consume_token(token)
    }

    fn expect(&mut self, token: &Token) -> Result<()> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.expected(&token.to_string()))
        }
    }

    /// "Expected: `what`, found: <next token> at Line: l, Column: c".
    fn expected(&self, what: &str) -> DataFusionError {
        let found = self.df.parser.peek_token_ref();
        if found.token == Token::EOF {
            // EOF has no position; point just past the last token.
            let parser = &self.df.parser;
            let end = (0..parser.index())
                .rev()
                .map(|i| parser.token_at(i))
                .find(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
                .map(|t| t.span.end);
            match end {
                Some(end) => sql_error(format!("Expected: {what}, found: end of input{end}")),
                None => sql_error(format!("Expected: {what}, found: end of input")),
            }
        } else {
            sql_error(format!(
                "Expected: {what}, found: {}{}",
                found.token, found.span.start
            ))
        }
    }

    /// After the statement: optional `;`s, then nothing.
    fn end(&mut self) -> Result<()> {
        while self.eat(&Token::SemiColon) {}
        if *self.peek(0) == Token::EOF {
            Ok(())
        } else {
            Err(self.expected("end of statement"))
        }
    }

    fn statement(&mut self) -> Result<Statement> {
        if matches!(self.peek(0), Token::EOF | Token::SemiColon) {
            return Err(self.expected("a SQL statement"));
        }
        let kw = |s: &Self, n: usize, k: &str| s.peek_kw(n, k);
        if kw(self, 0, "EXPLAIN") && kw(self, 1, "COST") {
            self.advance(2);
            return Ok(Statement::ExplainCost(Box::new(self.statement()?)));
        }
        if kw(self, 0, "CREATE") {
            if kw(self, 1, "VIEW")
                || (kw(self, 1, "OR") && kw(self, 2, "REPLACE") && kw(self, 3, "VIEW"))
            {
                let or_replace = kw(self, 1, "OR");
                self.advance(if or_replace { 4 } else { 2 });
                return self.create_view(or_replace);
            }
            if kw(self, 1, "EXTERNAL") && kw(self, 2, "TABLE") {
                self.advance(3);
                return self.create_table(true);
            }
            if kw(self, 1, "TABLE") {
                self.advance(2);
                return self.create_table(false);
            }
            if kw(self, 1, "DATABASE") || kw(self, 1, "SCHEMA") {
                self.advance(2);
                return self.create_database();
            }
        } else if kw(self, 0, "DROP") {
            if kw(self, 1, "DATABASE") || kw(self, 1, "SCHEMA") {
                self.advance(2);
                let if_exists = self.eat_kws(&["IF", "EXISTS"]);
                let name = self.database_name()?;
                let cascade = if self.eat_kw("CASCADE") {
                    true
                } else {
                    let _ = self.eat_kw("RESTRICT");
                    false
                };
                return Ok(Statement::DropDatabase {
                    name,
                    if_exists,
                    cascade,
                });
            }
            if kw(self, 1, "TABLE") {
                self.advance(2);
                let if_exists = self.eat_kws(&["IF", "EXISTS"]);
                let name = self.table_name()?;
                return Ok(Statement::DropTable { name, if_exists });
            }
            if kw(self, 1, "VIEW") {
                self.advance(2);
                let if_exists = self.eat_kws(&["IF", "EXISTS"]);
                let name = self.table_name()?;
                return Ok(Statement::DropView { name, if_exists });
            }
        } else if kw(self, 0, "ALTER") && kw(self, 1, "TABLE") {
            self.advance(2);
            return self.alter_table();
        } else if kw(self, 0, "MSCK") {
            self.advance(1);
            self.expect_kws(&["REPAIR", "TABLE"])?;
            let table = self.table_name()?;
            return Ok(Statement::MsckRepair { table });
        } else if kw(self, 0, "SHOW") {
            if let Some(statement) = self.show()? {
                return Ok(statement);
            }
        } else if kw(self, 0, "DESCRIBE") || kw(self, 0, "DESC") {
            if let Some(statement) = self.describe()? {
                return Ok(statement);
            }
        } else if kw(self, 0, "INSERT") && kw(self, 1, "INTO") {
            self.advance(2);
            return self.insert();
        } else if kw(self, 0, "ANALYZE") && !kw(self, 1, "FORMAT") {
            self.advance(1);
            let _ = self.eat_kw("TABLE");
            let table = self.table_name()?;
            if self.eat_kw("COMPUTE") {
                self.expect_kw("STATISTICS")?;
            }
            let columns = if self.eat_kws(&["FOR", "ALL", "COLUMNS"]) {
                None
            } else if self.eat_kws(&["FOR", "COLUMNS"]) {
                let mut names = vec![self.identifier("a column name")?];
                while self.eat(&Token::Comma) {
                    names.push(self.identifier("a column name")?);
                }
                Some(names)
            } else {
                None
            };
            return Ok(Statement::Analyze { table, columns });
        } else if kw(self, 0, "UNLOAD") {
            self.advance(1);
            return self.unload();
        } else if kw(self, 0, "PREPARE") {
            self.advance(1);
            let name = self.identifier("a prepared statement name")?;
            if !self.eat_kw("FROM") {
                return Err(self.expected("FROM"));
            }
            let at = offset_of(self.parsed, self.location());
            let sql = self
                .original
                .get(at..)
                .unwrap_or_default()
                .trim_end()
                .trim_end_matches(';')
                .trim_end()
                .to_string();
            // The statement must parse now, as Athena checks it when it is prepared.
            let dialect = self.dialect.clone();
            if let Statement::Prepare { .. }
            | Statement::Execute { .. }
            | Statement::Deallocate { .. } = parse(&sql, &dialect)?
            {
                return Err(sql_error(
                    "PREPARE takes a query or a write, not another PREPARE, EXECUTE or DEALLOCATE"
                        .into(),
                ));
            }
            // The parser consumed nothing after FROM: skip to the end.
            while *self.peek(0) != Token::EOF {
                self.advance(1);
            }
            return Ok(Statement::Prepare { name, sql });
        } else if kw(self, 0, "EXECUTE") {
            self.advance(1);
            let name = self.identifier("a prepared statement name")?;
            let values = if self.eat_kw("USING") {
                self.p().parse_comma_separated(Parser::parse_expr)?
            } else {
                Vec::new()
            };
            return Ok(Statement::Execute { name, values });
        } else if kw(self, 0, "DEALLOCATE") {
            self.advance(1);
            if !self.eat_kw("PREPARE") {
                return Err(self.expected("PREPARE"));
            }
            let name = self.identifier("a prepared statement name")?;
            return Ok(Statement::Deallocate { name });
        }
        let mut statement = self.df.parse_statement()?;
        crate::syntax::rewrite_df_statement(&mut statement)?;
        Ok(Statement::Query(statement))
    }

    // ---- names -----------------------------------------------------------------------------

    fn identifier(&mut self, what: &str) -> Result<String> {
        match self.peek(0) {
            Token::Word(w) => {
                let name = fold(w);
                self.advance(1);
                Ok(name)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn database_name(&mut self) -> Result<String> {
        self.identifier("a database name")
    }

    fn table_name(&mut self) -> Result<TableName> {
        let start = self.location();
        let mut parts = vec![self.identifier("a table name")?];
        while self.eat(&Token::Period) {
            parts.push(self.identifier("a name after '.'")?);
        }
        let table = parts.pop().unwrap_or_default();
        let database = parts.pop();
        let catalog = parts.pop();
        if !parts.is_empty() {
            return Err(sql_error(format!(
                "a table name has at most 3 parts (catalog.database.table){start}"
            )));
        }
        Ok(TableName {
            catalog,
            database,
            table,
        })
    }

    /// True when tokens `n..` are `name[.name[.name]]` and then the end of the statement.
    fn table_name_then_end(&self, mut n: usize) -> bool {
        loop {
            if !matches!(self.peek(n), Token::Word(_)) {
                return false;
            }
            n += 1;
            match self.peek(n) {
                Token::Period => n += 1,
                Token::EOF | Token::SemiColon => return true,
                _ => return false,
            }
        }
    }

    // ---- literals --------------------------------------------------------------------------

    fn string(&mut self, what: &str, escapes: Escapes) -> Result<String> {
        let (text, escaped) = match self.peek(0) {
            Token::SingleQuotedString(s)
            | Token::DoubleQuotedString(s)
            | Token::NationalStringLiteral(s) => (s.clone(), false),
            // The tokenizer already processed these escapes.
            Token::EscapedStringLiteral(s) | Token::UnicodeStringLiteral(s) => (s.clone(), true),
            // Hive takes "text" as a string too, as in AWS's own examples
            // (`TBLPROPERTIES ("skip.header.line.count"="1")`); most dialects tokenize it as a
            // quoted identifier.
            Token::Word(w) if w.quote_style == Some('"') => (w.value.clone(), false),
            _ => return Err(self.expected(what)),
        };
        self.advance(1);
        if escapes == Escapes::Hive && self.hive_escapes && !escaped {
            Ok(hive_unescape(&text))
        } else {
            Ok(text)
        }
    }

    /// A string literal's content, or a number, boolean or identifier as written. Not NULL.
    fn scalar(&mut self, what: &str, escapes: Escapes) -> Result<String> {
        let start = self.location();
        match self.peek(0).clone() {
            Token::Minus | Token::Plus => {
                let sign = if *self.peek(0) == Token::Minus {
                    "-"
                } else {
                    ""
                };
                match self.peek(1).clone() {
                    Token::Number(n, _) => {
                        self.advance(2);
                        Ok(format!("{sign}{n}"))
                    }
                    _ => {
                        self.advance(1);
                        Err(self.expected("a number"))
                    }
                }
            }
            Token::Number(n, _) => {
                self.advance(1);
                Ok(n)
            }
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("NULL") => {
                Err(sql_error(format!("{what} cannot be NULL{start}")))
            }
            // `DATE '2024-01-01'`, `TIMESTAMP '..'`: the literal's text.
            Token::Word(_)
                if (self.peek_kw(0, "DATE") || self.peek_kw(0, "TIMESTAMP"))
                    && matches!(self.peek(1), Token::SingleQuotedString(_)) =>
            {
                self.advance(1);
                self.string(what, escapes)
            }
            Token::Word(w) if w.quote_style == Some('"') => self.string(what, escapes),
            Token::Word(w) => {
                self.advance(1);
                Ok(w.value)
            }
            _ => self.string(what, escapes),
        }
    }

    fn number_u32(&mut self, what: &str) -> Result<u32> {
        let start = self.location();
        match self.peek(0).clone() {
            Token::Number(n, _) => {
                self.advance(1);
                n.parse()
                    .map_err(|_| sql_error(format!("Expected: {what}, found: {n}{start}")))
            }
            _ => Err(self.expected(what)),
        }
    }

    // ---- property lists --------------------------------------------------------------------

    /// Hive `('k'='v', ..)`: keys and values are string literals (numbers and words are taken
    /// as written for values).
    fn hive_properties(&mut self) -> Result<Vec<(String, String)>> {
        self.expect(&Token::LParen)?;
        let mut properties = Vec::new();
        if self.eat(&Token::RParen) {
            return Ok(properties);
        }
        loop {
            let key = self.string("a property name in quotes", Escapes::Hive)?;
            self.expect(&Token::Eq)?;
            let value = self.scalar("a property value", Escapes::Hive)?;
            properties.push((key, value));
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect_list_end()?;
        Ok(properties)
    }

    fn expect_list_end(&mut self) -> Result<()> {
        if self.eat(&Token::RParen) {
            Ok(())
        } else {
            Err(self.expected("',' or ')'"))
        }
    }

    /// Trino `(k = v, ..)` as in CTAS and UNLOAD: keys lower-cased, values text or `ARRAY[..]`.
    fn with_properties(&mut self) -> Result<Vec<(String, PropertyValue)>> {
        self.expect(&Token::LParen)?;
        let mut properties: Vec<(String, PropertyValue)> = Vec::new();
        if self.eat(&Token::RParen) {
            return Ok(properties);
        }
        loop {
            let start = self.location();
            let key = match self.peek(0) {
                Token::Word(w) => {
                    let key = w.value.to_ascii_lowercase();
                    self.advance(1);
                    key
                }
                _ => self
                    .string("a property name", Escapes::AsWritten)?
                    .to_ascii_lowercase(),
            };
            if properties.iter().any(|(k, _)| *k == key) {
                return Err(sql_error(format!(
                    "property '{key}' is given more than once{start}"
                )));
            }
            self.expect(&Token::Eq)?;
            let value = if self.peek_kw(0, "ARRAY") && *self.peek(1) == Token::LBracket {
                self.advance(2);
                let mut items = Vec::new();
                if !self.eat(&Token::RBracket) {
                    loop {
                        items.push(self.scalar("an array element", Escapes::AsWritten)?);
                        if !self.eat(&Token::Comma) {
                            break;
                        }
                    }
                    if !self.eat(&Token::RBracket) {
                        return Err(self.expected("',' or ']'"));
                    }
                }
                PropertyValue::List(items)
            } else {
                PropertyValue::Text(self.scalar("a property value", Escapes::AsWritten)?)
            };
            properties.push((key, value));
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect_list_end()?;
        Ok(properties)
    }

    /// `(k='v', k2=3)`.
    fn partition_spec(&mut self) -> Result<PartitionSpec> {
        self.expect(&Token::LParen)?;
        let mut values = Vec::new();
        loop {
            let key = match self.peek(0) {
                Token::Word(w) => {
                    let key = w.value.to_ascii_lowercase();
                    self.advance(1);
                    key
                }
                _ => return Err(self.expected("a partition key")),
            };
            self.expect(&Token::Eq)?;
            let what = format!("the value of partition key '{key}'");
            let value = self.scalar(&what, Escapes::Hive)?;
            values.push((key, value));
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect_list_end()?;
        Ok(PartitionSpec(values))
    }

    // ---- columns and Hive types ------------------------------------------------------------

    /// `(c type [COMMENT '..'], ..)`.
    fn column_defs(&mut self) -> Result<Vec<ColumnDef>> {
        self.expect(&Token::LParen)?;
        let mut columns = Vec::new();
        loop {
            columns.push(self.column_def()?);
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect_list_end()?;
        Ok(columns)
    }

    fn column_def(&mut self) -> Result<ColumnDef> {
        let name = self.identifier("a column name")?;
        let start = self.location();
        let mut pending_closers = 0;
        let data_type = self.hive_type(&mut pending_closers)?;
        if pending_closers > 0 {
            return Err(sql_error(format!(
                "column '{name}': type '{data_type}' is followed by an unmatched '>'{start}"
            )));
        }
        if let Err(e) = quarry_catalog::types::from_hive(&data_type) {
            return Err(sql_error(format!("column '{name}': {e}{start}")));
        }
        let comment = if self.eat_kw("COMMENT") {
            Some(self.string("a comment in quotes", Escapes::Hive)?)
        } else {
            None
        };
        Ok(ColumnDef {
            name,
            data_type,
            comment,
        })
    }

    /// A Hive type, normalised. `pending_closers` counts `>`s already consumed as part of a
    /// `>>` token (the tokenizer reads `array<array<int>>` as `... int >>`) and not yet matched.
    fn hive_type(&mut self, pending_closers: &mut usize) -> Result<String> {
        let name = match self.peek(0) {
            Token::Word(w) if w.quote_style.is_none() && *pending_closers == 0 => {
                w.value.to_ascii_lowercase()
            }
            _ => return Err(self.expected("a column type")),
        };
        self.advance(1);
        Ok(match name.as_str() {
            "array" => {
                self.expect(&Token::Lt)?;
                let element = self.hive_type(pending_closers)?;
                self.close_angle(pending_closers)?;
                format!("array<{element}>")
            }
            "map" => {
                self.expect(&Token::Lt)?;
                let key = self.hive_type(pending_closers)?;
                if *pending_closers > 0 || !self.eat(&Token::Comma) {
                    return Err(self.expected("',' between the map's key and value types"));
                }
                let value = self.hive_type(pending_closers)?;
                self.close_angle(pending_closers)?;
                format!("map<{key},{value}>")
            }
            "struct" => {
                self.expect(&Token::Lt)?;
                let mut fields = Vec::new();
                loop {
                    let field = self.identifier("a struct field name")?;
                    if !self.eat(&Token::Colon) {
                        return Err(self.expected("':' between a struct field's name and type"));
                    }
                    let field_type = self.hive_type(pending_closers)?;
                    fields.push(format!("{field}:{field_type}"));
                    if *pending_closers > 0 || !self.eat(&Token::Comma) {
                        break;
                    }
                }
                self.close_angle(pending_closers)?;
                format!("struct<{}>", fields.join(","))
            }
            "decimal" | "numeric" => {
                let (mut precision, mut scale) = (10, 0);
                if self.eat(&Token::LParen) {
                    precision = self.number_u32("a decimal precision")?;
                    if self.eat(&Token::Comma) {
                        scale = self.number_u32("a decimal scale")?;
                    }
                    self.expect(&Token::RParen)?;
                }
                format!("decimal({precision},{scale})")
            }
            "varchar" | "char" | "character" => {
                let name = if name == "character" { "char" } else { &name };
                if self.eat(&Token::LParen) {
                    let length = self.number_u32("a length")?;
                    self.expect(&Token::RParen)?;
                    format!("{name}({length})")
                } else {
                    name.to_string()
                }
            }
            "integer" => "int".into(),
            "double" => {
                let _ = self.eat_kw("PRECISION");
                "double".into()
            }
            // Athena's DDL documents `float`; Trino spells the same type `real`.
            "real" => "float".into(),
            _ => name,
        })
    }

    /// Match one `>`, which may be half of a `>>` (or a third of a `>>>`) token.
    fn close_angle(&mut self, pending_closers: &mut usize) -> Result<()> {
        if *pending_closers > 0 {
            *pending_closers -= 1;
            return Ok(());
        }
        let width = match self.peek(0) {
            Token::Gt => 1,
            Token::ShiftRight => 2,
            Token::CustomBinaryOperator(op) if op.chars().all(|c| c == '>') => op.len(),
            _ => return Err(self.expected("',' or '>'")),
        };
        self.advance(1);
        *pending_closers = width - 1;
        Ok(())
    }

    // ---- CREATE ----------------------------------------------------------------------------

    /// After `CREATE [EXTERNAL] TABLE`.
    fn create_table(&mut self, external: bool) -> Result<Statement> {
        let if_not_exists = self.eat_kws(&["IF", "NOT", "EXISTS"]);
        let name = self.table_name()?;
        if external || *self.peek(0) == Token::LParen {
            return self.table_definition(name, if_not_exists, external);
        }
        let properties = if self.eat_kw("WITH") {
            self.with_properties()?
        } else {
            Vec::new()
        };
        if !self.eat_kw("AS") {
            return Err(if properties.is_empty() {
                self.expected("'(' (a column list), WITH or AS")
            } else {
                self.expected("AS")
            });
        }
        let mut query = *self.p().parse_query()?;
        crate::syntax::rewrite_query(&mut query)?;
        let with_data = if self.eat_kws(&["WITH", "NO", "DATA"]) {
            false
        } else {
            let _ = self.eat_kws(&["WITH", "DATA"]);
            true
        };
        Ok(Statement::CreateTableAs(Box::new(CreateTableAs {
            name,
            if_not_exists,
            properties,
            query,
            with_data,
        })))
    }

    /// The rest of `CREATE [EXTERNAL] TABLE t`: the column list, then the clauses in any order,
    /// each at most once.
    fn table_definition(
        &mut self,
        name: TableName,
        if_not_exists: bool,
        external: bool,
    ) -> Result<Statement> {
        let columns = if *self.peek(0) == Token::LParen {
            self.column_defs()?
        } else {
            Vec::new()
        };
        let mut comment = None;
        let mut partitioned_by = None;
        let mut clustered_by = None;
        let mut row_format = None;
        let mut stored_as = None;
        let mut serde_properties = None;
        let mut location = None;
        let mut table_properties = None;
        loop {
            let start = self.location();
            if self.eat_kw("COMMENT") {
                once(&comment, "COMMENT", start)?;
                comment = Some(self.string("a comment in quotes", Escapes::Hive)?);
            } else if self.eat_kws(&["PARTITIONED", "BY"]) {
                once(&partitioned_by, "PARTITIONED BY", start)?;
                partitioned_by = Some(self.column_defs()?);
            } else if self.eat_kws(&["CLUSTERED", "BY"]) {
                once(&clustered_by, "CLUSTERED BY", start)?;
                self.expect(&Token::LParen)?;
                let mut bucket_columns = Vec::new();
                loop {
                    bucket_columns.push(self.identifier("a column name")?);
                    if !self.eat(&Token::Comma) {
                        break;
                    }
                }
                self.expect_list_end()?;
                self.expect_kw("INTO")?;
                let buckets = self.number_u32("a number of buckets")?;
                self.expect_kw("BUCKETS")?;
                clustered_by = Some((bucket_columns, buckets));
            } else if self.eat_kws(&["ROW", "FORMAT"]) {
                once(&row_format, "ROW FORMAT", start)?;
                row_format = Some(self.row_format()?);
            } else if self.eat_kws(&["WITH", "SERDEPROPERTIES"]) {
                once(&serde_properties, "WITH SERDEPROPERTIES", start)?;
                serde_properties = Some(self.hive_properties()?);
            } else if self.eat_kws(&["STORED", "AS"]) {
                once(&stored_as, "STORED AS", start)?;
                stored_as = Some(if self.eat_kw("INPUTFORMAT") {
                    let input = self.string("an input format class in quotes", Escapes::Hive)?;
                    self.expect_kw("OUTPUTFORMAT")?;
                    let output = self.string("an output format class in quotes", Escapes::Hive)?;
                    StoredAs::Formats { input, output }
                } else {
                    match self.peek(0) {
                        Token::Word(w) if w.quote_style.is_none() => {
                            let format = w.value.to_ascii_uppercase();
                            self.advance(1);
                            StoredAs::Named(format)
                        }
                        _ => return Err(self.expected("a file format or INPUTFORMAT")),
                    }
                });
            } else if self.eat_kw("LOCATION") {
                once(&location, "LOCATION", start)?;
                location = Some(self.string("a location in quotes", Escapes::Hive)?);
            } else if self.eat_kw("TBLPROPERTIES") {
                once(&table_properties, "TBLPROPERTIES", start)?;
                table_properties = Some(self.hive_properties()?);
            } else {
                break;
            }
        }
        if !matches!(self.peek(0), Token::EOF | Token::SemiColon) {
            return Err(self.expected(
                "COMMENT, PARTITIONED BY, CLUSTERED BY, ROW FORMAT, WITH SERDEPROPERTIES, \
                 STORED AS, LOCATION, TBLPROPERTIES or end of statement",
            ));
        }
        Ok(Statement::CreateExternalTable(Box::new(ExternalTable {
            name,
            if_not_exists,
            external,
            columns,
            comment,
            partitioned_by: partitioned_by.unwrap_or_default(),
            clustered_by,
            row_format,
            stored_as,
            serde_properties: serde_properties.unwrap_or_default(),
            location,
            table_properties: table_properties.unwrap_or_default(),
        })))
    }

    /// After `ROW FORMAT`.
    fn row_format(&mut self) -> Result<RowFormat> {
        if self.eat_kw("SERDE") {
            return Ok(RowFormat::Serde(
                self.string("a SerDe class in quotes", Escapes::Hive)?,
            ));
        }
        if !self.eat_kw("DELIMITED") {
            return Err(self.expected("DELIMITED or SERDE"));
        }
        let mut fields = None;
        let mut escaped = None;
        let mut items = None;
        let mut keys = None;
        let mut lines = None;
        let mut null = None;
        loop {
            let start = self.location();
            let (slot, clause) = if self.eat_kws(&["FIELDS", "TERMINATED", "BY"]) {
                (&mut fields, "FIELDS TERMINATED BY")
            } else if self.eat_kws(&["ESCAPED", "BY"]) {
                (&mut escaped, "ESCAPED BY")
            } else if self.eat_kws(&["COLLECTION", "ITEMS", "TERMINATED", "BY"]) {
                (&mut items, "COLLECTION ITEMS TERMINATED BY")
            } else if self.eat_kws(&["MAP", "KEYS", "TERMINATED", "BY"]) {
                (&mut keys, "MAP KEYS TERMINATED BY")
            } else if self.eat_kws(&["LINES", "TERMINATED", "BY"]) {
                (&mut lines, "LINES TERMINATED BY")
            } else if self.eat_kws(&["NULL", "DEFINED", "AS"]) {
                (&mut null, "NULL DEFINED AS")
            } else {
                break;
            };
            once(slot, clause, start)?;
            *slot = Some(self.string("a character in quotes", Escapes::Hive)?);
        }
        Ok(RowFormat::Delimited {
            fields_terminated_by: fields,
            escaped_by: escaped,
            collection_items_terminated_by: items,
            map_keys_terminated_by: keys,
            lines_terminated_by: lines,
            null_defined_as: null,
        })
    }

    /// After `CREATE DATABASE|SCHEMA`: clauses in any order, each at most once.
    fn create_database(&mut self) -> Result<Statement> {
        let if_not_exists = self.eat_kws(&["IF", "NOT", "EXISTS"]);
        let name = self.database_name()?;
        let mut comment = None;
        let mut location = None;
        let mut properties = None;
        loop {
            let start = self.location();
            if self.eat_kw("COMMENT") {
                once(&comment, "COMMENT", start)?;
                comment = Some(self.string("a comment in quotes", Escapes::Hive)?);
            } else if self.eat_kw("LOCATION") {
                once(&location, "LOCATION", start)?;
                location = Some(self.string("a location in quotes", Escapes::Hive)?);
            } else if self.eat_kws(&["WITH", "DBPROPERTIES"]) {
                once(&properties, "WITH DBPROPERTIES", start)?;
                properties = Some(self.hive_properties()?);
            } else {
                break;
            }
        }
        if !matches!(self.peek(0), Token::EOF | Token::SemiColon) {
            return Err(self.expected("COMMENT, LOCATION, WITH DBPROPERTIES or end of statement"));
        }
        Ok(Statement::CreateDatabase {
            name,
            if_not_exists,
            comment,
            location,
            properties: properties.unwrap_or_default(),
        })
    }

    // ---- ALTER TABLE -----------------------------------------------------------------------

    fn alter_table(&mut self) -> Result<Statement> {
        let table = self.table_name()?;
        if self.eat_kw("ADD") {
            if self.eat_kw("COLUMNS") {
                let columns = self.column_defs()?;
                return Ok(Statement::AddColumns { table, columns });
            }
            let if_not_exists = self.eat_kws(&["IF", "NOT", "EXISTS"]);
            if !self.peek_kw(0, "PARTITION") {
                return Err(self.expected(if if_not_exists {
                    "PARTITION"
                } else {
                    "PARTITION, IF NOT EXISTS or COLUMNS"
                }));
            }
            let mut partitions = Vec::new();
            while self.eat_kw("PARTITION") {
                let spec = self.partition_spec()?;
                let location = if self.eat_kw("LOCATION") {
                    Some(self.string("a location in quotes", Escapes::Hive)?)
                } else {
                    None
                };
                partitions.push((spec, location));
            }
            return Ok(Statement::AddPartitions {
                table,
                if_not_exists,
                partitions,
            });
        }
        if self.eat_kw("DROP") {
            let mut if_exists = self.eat_kws(&["IF", "EXISTS"]);
            self.expect_kw("PARTITION")?;
            let mut partitions = vec![self.partition_spec()?];
            while self.eat(&Token::Comma) {
                // Athena: `, PARTITION (..)`; sqlparser: `, DROP [IF EXISTS] PARTITION (..)`.
                if self.eat_kw("DROP") {
                    if_exists |= self.eat_kws(&["IF", "EXISTS"]);
                }
                self.expect_kw("PARTITION")?;
                partitions.push(self.partition_spec()?);
            }
            return Ok(Statement::DropPartitions {
                table,
                if_exists,
                partitions,
            });
        }
        if self.eat_kw("PARTITION") {
            let partition = self.partition_spec()?;
            self.expect_kws(&["SET", "LOCATION"])?;
            let location = self.string("a location in quotes", Escapes::Hive)?;
            return Ok(Statement::SetPartitionLocation {
                table,
                partition,
                location,
            });
        }
        if self.eat_kws(&["SET", "TBLPROPERTIES"]) {
            let properties = self.hive_properties()?;
            return Ok(Statement::SetTableProperties { table, properties });
        }
        if self.eat_kws(&["REPLACE", "COLUMNS"]) {
            let columns = self.column_defs()?;
            return Ok(Statement::ReplaceColumns { table, columns });
        }
        Err(self.expected(
            "ADD PARTITION, ADD COLUMNS, DROP PARTITION, PARTITION (..) SET LOCATION, \
             SET TBLPROPERTIES or REPLACE COLUMNS",
        ))
    }

    // ---- SHOW and DESCRIBE -----------------------------------------------------------------

    /// The `SHOW` forms Quarry answers itself; `None` leaves the statement to DataFusion.
    fn show(&mut self) -> Result<Option<Statement>> {
        if self.peek_kw(1, "CREATE") && self.peek_kw(2, "VIEW") {
            self.advance(3);
            let view = self.table_name()?;
            return Ok(Some(Statement::ShowCreateView { view }));
        }
        if self.peek_kw(1, "VIEWS") {
            self.advance(2);
            let (database, like) = self.show_in()?;
            return Ok(Some(Statement::ShowViews { database, like }));
        }
        if self.peek_kw(1, "CREATE") && self.peek_kw(2, "TABLE") {
            self.advance(3);
            let table = self.table_name()?;
            return Ok(Some(Statement::ShowCreateTable { table }));
        }
        if self.peek_kw(1, "TBLPROPERTIES") {
            self.advance(2);
            let table = self.table_name()?;
            let key = if self.eat(&Token::LParen) {
                let key = self.string("a property name in quotes", Escapes::Hive)?;
                self.expect(&Token::RParen)?;
                Some(key)
            } else {
                None
            };
            return Ok(Some(Statement::ShowTableProperties { table, key }));
        }
        if self.peek_kw(1, "PARTITIONS") {
            self.advance(2);
            let table = self.table_name()?;
            return Ok(Some(Statement::ShowPartitions { table }));
        }
        if self.peek_kw(1, "DATABASES") || self.peek_kw(1, "SCHEMAS") {
            self.advance(2);
            let catalog = if self.eat_kw("IN") || self.eat_kw("FROM") {
                Some(self.identifier("a catalog name")?)
            } else {
                None
            };
            let like = self.show_pattern()?;
            return Ok(Some(Statement::ShowDatabases { catalog, like }));
        }
        if self.peek_kw(1, "TABLES") {
            self.advance(2);
            let (catalog, database) = if self.eat_kw("IN") || self.eat_kw("FROM") {
                let first = self.database_name()?;
                if self.eat(&Token::Period) {
                    (Some(first), Some(self.database_name()?))
                } else {
                    (None, Some(first))
                }
            } else {
                (None, None)
            };
            let like = self.show_pattern()?;
            return Ok(Some(Statement::ShowTables {
                catalog,
                database,
                like,
            }));
        }
        Ok(None)
    }

    /// After `CREATE [OR REPLACE] VIEW`.
    fn create_view(&mut self, or_replace: bool) -> Result<Statement> {
        let name = self.table_name()?;
        let mut comment = None;
        loop {
            if self.eat_kw("COMMENT") {
                comment = Some(self.string("a comment in quotes", Escapes::AsWritten)?);
            } else if self.eat_kw("SECURITY") {
                if !(self.eat_kw("DEFINER") || self.eat_kw("INVOKER")) {
                    return Err(self.expected("DEFINER or INVOKER"));
                }
            } else {
                break;
            }
        }
        if !self.eat_kw("AS") {
            return Err(self.expected("AS"));
        }
        let start = self.location();
        let mut query = *self.p().parse_query()?;
        // The text before the query holds no cast, so the offset is the same in both texts;
        // the view keeps the query as written (Trino's casts not rewritten).
        let at = offset_of(self.parsed, start);
        let sql = self
            .original
            .get(at..)
            .unwrap_or_default()
            .trim_end()
            .trim_end_matches(';')
            .trim_end()
            .to_string();
        crate::syntax::rewrite_query(&mut query)?;
        Ok(Statement::CreateView(Box::new(CreateView {
            name,
            or_replace,
            comment,
            query: Box::new(query),
            sql,
        })))
    }

    /// `[IN|FROM db] [[LIKE] 'pattern']`, after `SHOW VIEWS`.
    fn show_in(&mut self) -> Result<(Option<String>, Option<String>)> {
        let database = if self.eat_kw("IN") || self.eat_kw("FROM") {
            Some(self.database_name()?)
        } else {
            None
        };
        Ok((database, self.show_pattern()?))
    }

    /// `[LIKE] 'pattern'`, optional.
    fn show_pattern(&mut self) -> Result<Option<String>> {
        if self.eat_kw("LIKE") {
            return Ok(Some(
                self.string("a pattern in quotes", Escapes::AsWritten)?,
            ));
        }
        if matches!(self.peek(0), Token::SingleQuotedString(_)) {
            return Ok(Some(self.string("a pattern", Escapes::AsWritten)?));
        }
        Ok(None)
    }

    /// `DESCRIBE|DESC [FORMATTED|EXTENDED] t`; `None` (nothing consumed) when no table name
    /// follows, e.g. `DESCRIBE SELECT ..`.
    fn describe(&mut self) -> Result<Option<Statement>> {
        for (word, input) in [("INPUT", true), ("OUTPUT", false)] {
            if self.peek_kw(1, word)
                && matches!(self.peek(2), Token::Word(_))
                && matches!(self.peek(3), Token::EOF | Token::SemiColon)
            {
                self.advance(2);
                let name = self.identifier("a prepared statement name")?;
                return Ok(Some(if input {
                    Statement::DescribeInput { name }
                } else {
                    Statement::DescribeOutput { name }
                }));
            }
        }
        let mut n = 1;
        if (self.peek_kw(n, "FORMATTED") || self.peek_kw(n, "EXTENDED"))
            && matches!(self.peek(n + 1), Token::Word(_))
        {
            n += 1;
        }
        let starts_query = QUERY_STARTS.iter().any(|k| self.peek_kw(n, k));
        if starts_query || !self.table_name_then_end(n) {
            return Ok(None);
        }
        self.advance(n);
        let table = self.table_name()?;
        Ok(Some(Statement::Describe { table }))
    }

    // ---- writes ----------------------------------------------------------------------------

    /// After `INSERT INTO`.
    fn insert(&mut self) -> Result<Statement> {
        let _ = self.eat_kw("TABLE");
        let table = self.table_name()?;
        let mut columns = Vec::new();
        // `(a, b) SELECT ..` is a column list; `(SELECT ..)` is the query.
        let query_in_parens = matches!(self.peek(1), Token::LParen)
            || ["SELECT", "WITH", "VALUES"]
                .iter()
                .any(|k| self.peek_kw(1, k));
        if *self.peek(0) == Token::LParen && !query_in_parens {
            self.advance(1);
            loop {
                columns.push(self.identifier("a column name")?);
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
            self.expect_list_end()?;
        }
        let mut query = *self.p().parse_query()?;
        crate::syntax::rewrite_query(&mut query)?;
        Ok(Statement::Insert(Box::new(Insert {
            table,
            columns,
            query,
        })))
    }

    /// After `UNLOAD`.
    fn unload(&mut self) -> Result<Statement> {
        self.expect(&Token::LParen)?;
        let mut query = *self.p().parse_query()?;
        crate::syntax::rewrite_query(&mut query)?;
        self.expect(&Token::RParen)?;
        self.expect_kw("TO")?;
        let to = self.string("a destination in quotes", Escapes::AsWritten)?;
        let properties = if self.eat_kw("WITH") {
            self.with_properties()?
        } else {
            Vec::new()
        };
        Ok(Statement::Unload(Box::new(Unload {
            query,
            to,
            properties,
        })))
    }
}

/// Reject a clause given twice.
fn once<T>(slot: &Option<T>, clause: &str, at: Location) -> Result<()> {
    match slot {
        Some(_) => Err(sql_error(format!("{clause} is given more than once{at}"))),
        None => Ok(()),
    }
}

/// Hive's string-literal escapes (`BaseSemanticAnalyzer.unescapeSQLString`): `\t`, `\n`, `\r`,
/// `\b`, `\0`, `\Z`, `\\`, `\'`, `\"`, octal `\001`, `\uXXXX`; `\%` and `\_` stay escaped (they
/// are LIKE escapes); any other escaped character stands for itself.
fn hive_unescape(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' || i + 1 == chars.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let next = chars[i + 1];
        if next == 'u' && i + 6 <= chars.len() {
            let hex: String = chars[i + 2..i + 6].iter().collect();
            if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                out.push(ch);
                i += 6;
                continue;
            }
        }
        if i + 4 <= chars.len() {
            let digits = &chars[i + 1..i + 4];
            if matches!(digits[0], '0' | '1') && digits[1..].iter().all(|d| ('0'..='7').contains(d))
            {
                let code = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + (*d as u32 - '0' as u32));
                if let Some(ch) = char::from_u32(code) {
                    out.push(ch);
                    i += 4;
                    continue;
                }
            }
        }
        match next {
            '0' => out.push('\0'),
            'b' => out.push('\u{8}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'Z' => out.push('\u{1a}'),
            '%' | '_' => {
                out.push('\\');
                out.push(next);
            }
            other => out.push(other),
        }
        i += 2;
    }
    out
}

/// Split a script into its statements, as written: at each `;` outside quotes and comments,
/// found by sqlparser's tokenizer (so statements it cannot parse, such as Athena DDL, split
/// correctly too). Each statement starts at its first token (comments before it are left out);
/// empty statements and comment-only pieces are dropped.
pub fn split_statements(sql: &str) -> Result<Vec<String>, DataFusionError> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| DataFusionError::SQL(Box::new(e.into()), None))?;
    // Byte offsets of line starts: token locations are (line, character column), 1-based.
    let mut lines = vec![0];
    lines.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
    let offset = |line: u64, column: u64| -> usize {
        let start = lines
            .get((line as usize).saturating_sub(1))
            .copied()
            .unwrap_or(sql.len());
        sql[start..]
            .char_indices()
            .nth((column as usize).saturating_sub(1))
            .map_or(sql.len(), |(i, _)| start + i)
    };
    let mut statements = Vec::new();
    let mut start: Option<usize> = None;
    for t in &tokens {
        match &t.token {
            Token::SemiColon | Token::EOF => {
                if let Some(s) = start.take() {
                    let end = match t.token {
                        Token::EOF => sql.len(),
                        _ => offset(t.span.start.line, t.span.start.column),
                    };
                    statements.push(sql[s..end].trim().to_string());
                }
            }
            Token::Whitespace(_) => {}
            _ => {
                if start.is_none() {
                    start = Some(offset(t.span.start.line, t.span.start.column));
                }
            }
        }
    }
    if let Some(s) = start {
        statements.push(sql[s..].trim().to_string());
    }
    Ok(statements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str) -> Statement {
        parse(sql, "generic").unwrap_or_else(|e| panic!("{sql}\n=> {e}"))
    }

    fn err(sql: &str) -> String {
        match parse(sql, "generic") {
            Ok(s) => panic!("{sql}\n=> parsed as {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn table(sql: &str) -> ExternalTable {
        match ok(sql) {
            Statement::CreateExternalTable(t) => *t,
            other => panic!("{sql}\n=> {other:?}"),
        }
    }

    fn tn(db: Option<&str>, t: &str) -> TableName {
        TableName {
            catalog: None,
            database: db.map(str::to_string),
            table: t.into(),
        }
    }

    fn col(name: &str, t: &str) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            data_type: t.into(),
            comment: None,
        }
    }

    fn spec(kv: &[(&str, &str)]) -> PartitionSpec {
        PartitionSpec(
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn props(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn text(s: &str) -> PropertyValue {
        PropertyValue::Text(s.into())
    }

    #[test]
    fn real_athena_csv_table() {
        let t = table(
            r#"CREATE EXTERNAL TABLE IF NOT EXISTS `sales`.`Orders` (
                 `order_id` bigint COMMENT 'the key',
                 `Amount` decimal(10, 2),
                 customer STRING,
                 tags array<string>
               )
               COMMENT 'orders from the shop'
               PARTITIONED BY (`dt` string, region varchar(8))
               ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'
               WITH SERDEPROPERTIES ('separatorChar' = ',', 'quoteChar' = '"', 'escapeChar' = '\\')
               STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
                 OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
               LOCATION 's3://bucket/orders/'
               TBLPROPERTIES ('skip.header.line.count'='1', 'classification'='csv');"#,
        );
        assert_eq!(
            t,
            ExternalTable {
                name: tn(Some("sales"), "Orders"),
                if_not_exists: true,
                external: true,
                columns: vec![
                    ColumnDef {
                        comment: Some("the key".into()),
                        ..col("order_id", "bigint")
                    },
                    col("Amount", "decimal(10,2)"),
                    col("customer", "string"),
                    col("tags", "array<string>"),
                ],
                comment: Some("orders from the shop".into()),
                partitioned_by: vec![col("dt", "string"), col("region", "varchar(8)")],
                clustered_by: None,
                row_format: Some(RowFormat::Serde(
                    "org.apache.hadoop.hive.serde2.OpenCSVSerde".into()
                )),
                stored_as: Some(StoredAs::Formats {
                    input: "org.apache.hadoop.mapred.TextInputFormat".into(),
                    output: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat".into(),
                }),
                // Hive unescapes '\\' to one backslash, as Athena stores it in Glue.
                serde_properties: props(&[
                    ("separatorChar", ","),
                    ("quoteChar", "\""),
                    ("escapeChar", "\\")
                ]),
                location: Some("s3://bucket/orders/".into()),
                table_properties: props(&[
                    ("skip.header.line.count", "1"),
                    ("classification", "csv")
                ]),
            }
        );
    }

    #[test]
    fn complex_hive_types_are_normalised() {
        let t = table(
            "CREATE EXTERNAL TABLE t (
               m map<string,int>,
               n MAP < STRING , ARRAY < INT > >,
               s array<struct<a:int,b:map<string,int>>>,
               deep array<struct<A:Integer, b:map<string,array<int>>>>,
               d DECIMAL, d2 decimal(5), v VARCHAR(10), c char(1), f real, x double precision,
               ts timestamp, `date` date, b binary, ok boolean
             ) STORED AS PARQUET LOCATION 's3://b/t/'",
        );
        let types: Vec<(&str, &str)> = t
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.data_type.as_str()))
            .collect();
        assert_eq!(
            types,
            vec![
                ("m", "map<string,int>"),
                ("n", "map<string,array<int>>"),
                ("s", "array<struct<a:int,b:map<string,int>>>"),
                ("deep", "array<struct<a:int,b:map<string,array<int>>>>"),
                ("d", "decimal(10,0)"),
                ("d2", "decimal(5,0)"),
                ("v", "varchar(10)"),
                ("c", "char(1)"),
                ("f", "float"),
                ("x", "double"),
                ("ts", "timestamp"),
                ("date", "date"),
                ("b", "binary"),
                ("ok", "boolean"),
            ]
        );
        assert_eq!(t.stored_as, Some(StoredAs::Named("PARQUET".into())));
    }

    #[test]
    fn delimited_text_table_with_clustering_and_escapes() {
        let t = table(
            r"CREATE EXTERNAL TABLE db.logs (line string)
              CLUSTERED BY (line) INTO 8 BUCKETS
              ROW FORMAT DELIMITED FIELDS TERMINATED BY '\t' ESCAPED BY '\\'
                COLLECTION ITEMS TERMINATED BY '\002' MAP KEYS TERMINATED BY ':'
                LINES TERMINATED BY '\n' NULL DEFINED AS ''
              LOCATION 's3://b/logs/'
              STORED AS TEXTFILE",
        );
        assert_eq!(t.clustered_by, Some((vec!["line".to_string()], 8)));
        assert_eq!(
            t.row_format,
            Some(RowFormat::Delimited {
                fields_terminated_by: Some("\t".into()),
                escaped_by: Some("\\".into()),
                collection_items_terminated_by: Some("\u{2}".into()),
                map_keys_terminated_by: Some(":".into()),
                lines_terminated_by: Some("\n".into()),
                null_defined_as: Some(String::new()),
            })
        );
        // LOCATION before STORED AS: order is lenient.
        assert_eq!(t.stored_as, Some(StoredAs::Named("TEXTFILE".into())));
        assert_eq!(t.location.as_deref(), Some("s3://b/logs/"));
    }

    #[test]
    fn regex_serde_properties_are_unescaped_like_hive() {
        let t = table(
            r"CREATE EXTERNAL TABLE a (h string)
              ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe'
              WITH SERDEPROPERTIES ('input.regex' = '^(\\S+) (\\d{3})$')
              LOCATION 's3://b/a/'",
        );
        assert_eq!(
            t.serde_properties,
            props(&[("input.regex", r"^(\S+) (\d{3})$")])
        );
    }

    #[test]
    fn plain_create_table_with_columns_is_not_external() {
        let t = table(
            "CREATE TABLE ice (id bigint) PARTITIONED BY (dt date) LOCATION 's3://b/ice/' \
             TBLPROPERTIES ('table_type'='ICEBERG')",
        );
        assert!(!t.external);
        assert_eq!(t.columns, vec![col("id", "bigint")]);
        assert_eq!(t.partitioned_by, vec![col("dt", "date")]);
        assert_eq!(t.table_properties, props(&[("table_type", "ICEBERG")]));
    }

    #[test]
    fn bad_column_type_names_the_column_and_position() {
        let e = err("CREATE EXTERNAL TABLE t (a int,\n  b frobnicate) LOCATION 's3://b/'");
        assert!(e.contains("column 'b'"), "{e}");
        assert!(e.contains("frobnicate"), "{e}");
        assert!(e.contains("Line: 2, Column: 5"), "{e}");

        let e = err("CREATE EXTERNAL TABLE t (m map<string int>)");
        assert!(
            e.contains("Expected: ',' between the map's key and value types"),
            "{e}"
        );
        assert!(e.contains("found: int at Line: 1, Column: 39"), "{e}");

        let e = err("CREATE EXTERNAL TABLE t (a array<int>>)");
        assert!(e.contains("unmatched '>'"), "{e}");

        let e = err("CREATE EXTERNAL TABLE t (a struct<x int>)");
        assert!(
            e.contains("Expected: ':' between a struct field's name and type"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_and_unknown_clauses_are_errors() {
        let e = err("CREATE EXTERNAL TABLE t (a int) LOCATION 's3://a/' LOCATION 's3://b/'");
        assert!(
            e.contains("LOCATION is given more than once at Line: 1, Column: 52"),
            "{e}"
        );
        let e = err("CREATE EXTERNAL TABLE t (a int) STORED AS PARQUET OPTIONS ('x' 'y')");
        assert!(e.contains("found: OPTIONS at Line: 1, Column: 51"), "{e}");
        let e = err("CREATE TABLE t");
        assert!(
            e.contains("Expected: '(' (a column list), WITH or AS, found: end of input"),
            "{e}"
        );
    }

    #[test]
    fn databases() {
        assert_eq!(
            ok(
                "CREATE DATABASE IF NOT EXISTS Sales COMMENT 'shop' LOCATION 's3://b/sales/' \
                WITH DBPROPERTIES ('creator'='me', 'team'='data')"
            ),
            Statement::CreateDatabase {
                name: "sales".into(),
                if_not_exists: true,
                comment: Some("shop".into()),
                location: Some("s3://b/sales/".into()),
                properties: props(&[("creator", "me"), ("team", "data")]),
            }
        );
        assert_eq!(
            ok("CREATE SCHEMA s"),
            Statement::CreateDatabase {
                name: "s".into(),
                if_not_exists: false,
                comment: None,
                location: None,
                properties: vec![],
            }
        );
        assert_eq!(
            ok("DROP SCHEMA IF EXISTS `Sales` CASCADE"),
            Statement::DropDatabase {
                name: "Sales".into(),
                if_exists: true,
                cascade: true,
            }
        );
        assert_eq!(
            ok("drop database s restrict;"),
            Statement::DropDatabase {
                name: "s".into(),
                if_exists: false,
                cascade: false,
            }
        );
    }

    #[test]
    fn drop_table_and_names() {
        assert_eq!(
            ok("DROP TABLE IF EXISTS AwsDataCatalog.Sales.\"Orders\""),
            Statement::DropTable {
                name: TableName {
                    catalog: Some("awsdatacatalog".into()),
                    database: Some("sales".into()),
                    table: "Orders".into(),
                },
                if_exists: true,
            }
        );
        let e = err("DROP TABLE a.b.c.d");
        assert!(
            e.contains("at most 3 parts") && e.contains("Line: 1, Column: 12"),
            "{e}"
        );
        assert_eq!(tn(Some("db"), "orders").to_string(), "db.orders");
        assert_eq!(
            TableName {
                catalog: Some("c".into()),
                database: Some("my-db".into()),
                table: "Has\"Quote".into(),
            }
            .to_string(),
            "c.\"my-db\".\"Has\"\"Quote\""
        );
    }

    #[test]
    fn add_partitions() {
        assert_eq!(
            ok("ALTER TABLE logs ADD IF NOT EXISTS
                PARTITION (DT='2024-01-01', hour=3) LOCATION 's3://b/logs/2024-01-01/03/'
                PARTITION (dt='2024-01-02', hour=-1)
                PARTITION (dt=DATE '2024-01-03', hour=\"4\") LOCATION 's3://b/x/'"),
            Statement::AddPartitions {
                table: tn(None, "logs"),
                if_not_exists: true,
                partitions: vec![
                    (
                        spec(&[("dt", "2024-01-01"), ("hour", "3")]),
                        Some("s3://b/logs/2024-01-01/03/".into())
                    ),
                    (spec(&[("dt", "2024-01-02"), ("hour", "-1")]), None),
                    (
                        spec(&[("dt", "2024-01-03"), ("hour", "4")]),
                        Some("s3://b/x/".into())
                    ),
                ],
            }
        );
        let e = err("ALTER TABLE t ADD PARTITION (dt=NULL)");
        assert!(
            e.contains("the value of partition key 'dt' cannot be NULL at Line: 1, Column: 33"),
            "{e}"
        );
        let e = err("ALTER TABLE t ADD PARTITION (dt='a' LOCATION 'x'");
        assert!(e.contains("Expected: ',' or ')', found: LOCATION"), "{e}");
    }

    #[test]
    fn drop_partitions_in_both_list_forms() {
        let expected = Statement::DropPartitions {
            table: tn(Some("db"), "logs"),
            if_exists: true,
            partitions: vec![spec(&[("dt", "a")]), spec(&[("dt", "b")])],
        };
        assert_eq!(
            ok("ALTER TABLE db.logs DROP IF EXISTS PARTITION (dt='a'), PARTITION (dt='b')"),
            expected
        );
        assert_eq!(
            ok("ALTER TABLE db.logs DROP IF EXISTS PARTITION (dt='a'), DROP PARTITION (dt='b')"),
            expected
        );
        let e = err("ALTER TABLE t DROP PARTITION (dt < 'a')");
        assert!(e.contains("Expected: =, found: <"), "{e}");
    }

    #[test]
    fn other_alter_table_forms() {
        assert_eq!(
            ok("ALTER TABLE t PARTITION (dt='a') SET LOCATION 's3://b/new/'"),
            Statement::SetPartitionLocation {
                table: tn(None, "t"),
                partition: spec(&[("dt", "a")]),
                location: "s3://b/new/".into(),
            }
        );
        assert_eq!(
            ok("ALTER TABLE t SET TBLPROPERTIES ('projection.enabled'='true', 'x'='y')"),
            Statement::SetTableProperties {
                table: tn(None, "t"),
                properties: props(&[("projection.enabled", "true"), ("x", "y")]),
            }
        );
        assert_eq!(
            ok("ALTER TABLE t ADD COLUMNS (extra map<string,bigint> COMMENT 'more', `Y` int)"),
            Statement::AddColumns {
                table: tn(None, "t"),
                columns: vec![
                    ColumnDef {
                        comment: Some("more".into()),
                        ..col("extra", "map<string,bigint>")
                    },
                    col("Y", "int"),
                ],
            }
        );
        assert_eq!(
            ok("ALTER TABLE t REPLACE COLUMNS (a string)"),
            Statement::ReplaceColumns {
                table: tn(None, "t"),
                columns: vec![col("a", "string")],
            }
        );
        let e = err("ALTER TABLE t RENAME TO u");
        assert!(e.contains("found: RENAME at Line: 1, Column: 15"), "{e}");
    }

    #[test]
    fn analyze_forms() {
        let analyze = |table, columns: Option<&[&str]>| Statement::Analyze {
            table,
            columns: columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
        };
        assert_eq!(ok("ANALYZE t"), analyze(tn(None, "t"), None));
        assert_eq!(
            ok("ANALYZE TABLE db.t COMPUTE STATISTICS FOR ALL COLUMNS;"),
            analyze(tn(Some("db"), "t"), None)
        );
        assert_eq!(
            ok(r#"analyze table t compute statistics for columns A, "B c""#),
            analyze(tn(None, "t"), Some(&["a", "B c"]))
        );
        let e = err("ANALYZE t FOR COLUMNS");
        assert!(
            e.contains("Expected: a column name, found: end of input"),
            "{e}"
        );
        let e = err("ANALYZE t COMPUTE");
        assert!(e.contains("Expected: STATISTICS"), "{e}");
        let e = err("ANALYZE t WITH (x = 1)");
        assert!(e.contains("Expected: end of statement, found: WITH"), "{e}");
    }

    #[test]
    fn msck_show_and_describe() {
        assert_eq!(
            ok("MSCK REPAIR TABLE db.t"),
            Statement::MsckRepair {
                table: tn(Some("db"), "t")
            }
        );
        assert_eq!(
            ok("SHOW CREATE TABLE t"),
            Statement::ShowCreateTable {
                table: tn(None, "t")
            }
        );
        assert_eq!(
            ok("SHOW TBLPROPERTIES t ('skip.header.line.count')"),
            Statement::ShowTableProperties {
                table: tn(None, "t"),
                key: Some("skip.header.line.count".into()),
            }
        );
        assert_eq!(
            ok("SHOW TBLPROPERTIES t"),
            Statement::ShowTableProperties {
                table: tn(None, "t"),
                key: None,
            }
        );
        assert_eq!(
            ok("SHOW PARTITIONS db.t"),
            Statement::ShowPartitions {
                table: tn(Some("db"), "t")
            }
        );
        assert_eq!(
            ok("SHOW DATABASES"),
            Statement::ShowDatabases {
                catalog: None,
                like: None
            }
        );
        assert_eq!(
            ok("SHOW DATABASES IN \"lambda:quarry-pg\""),
            Statement::ShowDatabases {
                catalog: Some("lambda:quarry-pg".into()),
                like: None
            }
        );
        assert_eq!(
            ok("SHOW TABLES IN pg.Public"),
            Statement::ShowTables {
                catalog: Some("pg".into()),
                database: Some("public".into()),
                like: None,
            }
        );
        assert_eq!(
            ok("SHOW SCHEMAS LIKE 'sa*'"),
            Statement::ShowDatabases {
                catalog: None,
                like: Some("sa*".into())
            }
        );
        assert_eq!(
            ok("SHOW TABLES IN Sales 'ord*'"),
            Statement::ShowTables {
                catalog: None,
                database: Some("sales".into()),
                like: Some("ord*".into()),
            }
        );
        assert_eq!(
            ok("SHOW TABLES FROM s LIKE 'x'"),
            Statement::ShowTables {
                catalog: None,
                database: Some("s".into()),
                like: Some("x".into()),
            }
        );
        assert_eq!(
            ok("SHOW TABLES"),
            Statement::ShowTables {
                catalog: None,
                database: None,
                like: None,
            }
        );
        for sql in [
            "DESCRIBE db.t",
            "DESC FORMATTED db.t",
            "describe extended db.t;",
        ] {
            assert_eq!(
                ok(sql),
                Statement::Describe {
                    table: tn(Some("db"), "t")
                },
                "{sql}"
            );
        }
        // A table named like the modifier.
        assert_eq!(
            ok("DESCRIBE formatted"),
            Statement::Describe {
                table: tn(None, "formatted")
            }
        );
    }

    #[test]
    fn ctas() {
        let Statement::CreateTableAs(c) = ok("CREATE TABLE IF NOT EXISTS db.out WITH (
                 Format = 'PARQUET', external_location = 's3://b/out/',
                 partitioned_by = ARRAY['dt'], bucketed_by = ARRAY['a', 'b'], bucket_count = 4,
                 write_compression = 'SNAPPY', is_external = true, empty = ARRAY[]
               ) AS SELECT a, b, dt FROM src WHERE x > 1")
        else {
            panic!("not CTAS")
        };
        assert_eq!(c.name, tn(Some("db"), "out"));
        assert!(c.if_not_exists && c.with_data);
        assert_eq!(
            c.properties,
            vec![
                ("format".to_string(), text("PARQUET")),
                ("external_location".to_string(), text("s3://b/out/")),
                (
                    "partitioned_by".to_string(),
                    PropertyValue::List(vec!["dt".into()])
                ),
                (
                    "bucketed_by".to_string(),
                    PropertyValue::List(vec!["a".into(), "b".into()])
                ),
                ("bucket_count".to_string(), text("4")),
                ("write_compression".to_string(), text("SNAPPY")),
                ("is_external".to_string(), text("true")),
                ("empty".to_string(), PropertyValue::List(vec![])),
            ]
        );
        assert_eq!(c.query.to_string(), "SELECT a, b, dt FROM src WHERE x > 1");

        let Statement::CreateTableAs(c) = ok("CREATE TABLE t2 AS SELECT * FROM t WITH NO DATA")
        else {
            panic!("not CTAS")
        };
        assert!(!c.with_data && c.properties.is_empty());
        assert_eq!(c.query.to_string(), "SELECT * FROM t");

        let Statement::CreateTableAs(c) = ok("CREATE TABLE t2 AS SELECT 1 AS x WITH DATA;") else {
            panic!("not CTAS")
        };
        assert!(c.with_data);

        let e = err("CREATE TABLE t WITH (format='ORC', FORMAT='PARQUET') AS SELECT 1");
        assert!(
            e.contains("property 'format' is given more than once at Line: 1, Column: 36"),
            "{e}"
        );
        let e = err("CREATE TABLE t WITH (format='ORC') SELECT 1");
        assert!(
            e.contains("Expected: AS, found: SELECT at Line: 1, Column: 36"),
            "{e}"
        );
    }

    #[test]
    fn insert() {
        let Statement::Insert(i) = ok("INSERT INTO db.t (A, \"b\") VALUES (1, 'x'), (2, 'y')")
        else {
            panic!("not INSERT")
        };
        assert_eq!(i.table, tn(Some("db"), "t"));
        assert_eq!(i.columns, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(i.query.to_string(), "VALUES (1, 'x'), (2, 'y')");

        let Statement::Insert(i) = ok("INSERT INTO t SELECT * FROM s WHERE dt = '2024-01-01'")
        else {
            panic!("not INSERT")
        };
        assert!(i.columns.is_empty());
        assert_eq!(
            i.query.to_string(),
            "SELECT * FROM s WHERE dt = '2024-01-01'"
        );

        let Statement::Insert(i) = ok("INSERT INTO t (SELECT 1)") else {
            panic!("not INSERT")
        };
        assert!(i.columns.is_empty());
    }

    #[test]
    fn unload() {
        let Statement::Unload(u) = ok("UNLOAD (SELECT * FROM t WHERE a = 'x') TO 's3://b/out/' \
             WITH (format = 'PARQUET', compression = 'SNAPPY', partitioned_by = ARRAY['dt'])")
        else {
            panic!("not UNLOAD")
        };
        assert_eq!(u.query.to_string(), "SELECT * FROM t WHERE a = 'x'");
        assert_eq!(u.to, "s3://b/out/");
        assert_eq!(
            u.properties,
            vec![
                ("format".to_string(), text("PARQUET")),
                ("compression".to_string(), text("SNAPPY")),
                (
                    "partitioned_by".to_string(),
                    PropertyValue::List(vec!["dt".into()])
                ),
            ]
        );
        let e = err("UNLOAD (SELECT 1) 's3://b/'");
        assert!(
            e.contains("Expected: TO, found: 's3://b/' at Line: 1, Column: 19"),
            "{e}"
        );
    }

    #[test]
    fn everything_else_is_a_query() {
        for sql in [
            "SELECT 1",
            "select a from db.t where dt = '2024-01-01';",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "EXPLAIN SELECT 1",
            "EXPLAIN ANALYZE SELECT 1",
            "DESCRIBE SELECT 1",
            "SHOW COLUMNS FROM t",
            "VALUES (1), (2)",
        ] {
            assert!(matches!(ok(sql), Statement::Query(_)), "{sql}");
        }
    }

    #[test]
    fn views_keep_their_sql_as_written() {
        let Statement::CreateView(v) = ok(
            "CREATE OR REPLACE VIEW db.\"V\" COMMENT 'c' SECURITY INVOKER AS\n  SELECT a,  b -- two\nFROM t ;",
        ) else {
            panic!("not a view")
        };
        assert!(v.or_replace);
        assert_eq!(v.name.to_string(), "db.\"V\"");
        assert_eq!(v.comment.as_deref(), Some("c"));
        assert_eq!(v.sql, "SELECT a,  b -- two\nFROM t");
        assert!(matches!(
            ok("DROP VIEW IF EXISTS v"),
            Statement::DropView {
                if_exists: true,
                ..
            }
        ));
        assert!(matches!(
            ok("SHOW CREATE VIEW v"),
            Statement::ShowCreateView { .. }
        ));
        assert!(matches!(
            ok("SHOW VIEWS IN db LIKE 'a*'"),
            Statement::ShowViews {
                database: Some(_),
                like: Some(_)
            }
        ));
        assert!(err("CREATE VIEW v SELECT 1").contains("Expected: AS"));
        // Trino's casts are rewritten for planning, not in the text the view keeps.
        let Statement::CreateView(v) =
            ok("CREATE VIEW v AS SELECT CAST(j AS ARRAY(INTEGER)) AS a FROM t")
        else {
            panic!("not a view")
        };
        assert_eq!(v.sql, "SELECT CAST(j AS ARRAY(INTEGER)) AS a FROM t");
    }

    #[test]
    fn trailing_input_and_empty_input_are_errors() {
        let e = err("SELECT 1; SELECT 2");
        assert!(
            e.contains("Expected: end of statement, found: SELECT at Line: 1, Column: 11"),
            "{e}"
        );
        let e = err("DROP TABLE t garbage");
        assert!(e.contains("found: garbage at Line: 1, Column: 14"), "{e}");
        let e = err("  ");
        assert!(
            e.contains("Expected: a SQL statement, found: end of input"),
            "{e}"
        );
        let e = err("DROP TABLE");
        assert!(
            e.contains("Expected: a table name, found: end of input at Line: 1, Column: 11"),
            "{e}"
        );
        assert!(parse("SELECT 1", "no-such-dialect").is_err());
    }

    #[test]
    fn triple_closers_comments_and_other_dialects() {
        let t = table(
            "-- a comment\nCREATE EXTERNAL TABLE t ( /* inline */ a array<array<map<string,int>>>,
               b struct<x:array<int>>, c struct<`Quoted`:int,date:string>) LOCATION 's3://b/'",
        );
        let types: Vec<&str> = t.columns.iter().map(|c| c.data_type.as_str()).collect();
        assert_eq!(
            types,
            vec![
                "array<array<map<string,int>>>",
                "struct<x:array<int>>",
                "struct<Quoted:int,date:string>"
            ]
        );
        // The Hive dialect's tokenizer processes backslash escapes itself; a second round
        // would turn the backslash-t that '\\t' stands for into a tab.
        let sql = r"CREATE EXTERNAL TABLE t (a string) ROW FORMAT DELIMITED
                    FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LOCATION 's3://b/'";
        let Statement::CreateExternalTable(t) = parse(sql, "hive").unwrap() else {
            panic!("not a table")
        };
        let Some(RowFormat::Delimited {
            fields_terminated_by,
            escaped_by,
            ..
        }) = t.row_format
        else {
            panic!("not delimited")
        };
        assert_eq!(fields_terminated_by.as_deref(), Some("\t"));
        assert_eq!(escaped_by.as_deref(), Some("\\"));
    }

    #[test]
    fn hive_escapes() {
        assert_eq!(
            hive_unescape(r"a\tb\001c\\d\'e\u0041\%"),
            "a\tb\u{1}c\\d'eA\\%"
        );
        assert_eq!(hive_unescape(r"trailing\"), r"trailing\");
        // Trino statements keep strings as written.
        let Statement::Unload(u) =
            ok(r"UNLOAD (SELECT 1) TO 's3://b/\t/' WITH (field_delimiter = '\t')")
        else {
            panic!("not UNLOAD")
        };
        assert_eq!(u.to, r"s3://b/\t/");
        assert_eq!(
            u.properties,
            vec![("field_delimiter".to_string(), text(r"\t"))]
        );
    }

    #[test]
    fn scripts_split_at_semicolons_outside_quotes_and_comments() {
        let script = "-- a comment; not a split\nSELECT 'a;b' AS x;\n\n  CREATE EXTERNAL TABLE t (m map<string,int>) LOCATION 's3://b/t/' ;;\n/* only a comment */\nSELECT \"q;\" FROM é; SELECT 2";
        assert_eq!(
            split_statements(script).expect("split"),
            vec![
                "SELECT 'a;b' AS x",
                "CREATE EXTERNAL TABLE t (m map<string,int>) LOCATION 's3://b/t/'",
                "SELECT \"q;\" FROM é",
                "SELECT 2",
            ]
        );
        assert!(
            split_statements("  ;\n -- nothing\n")
                .expect("split")
                .is_empty()
        );
        assert!(split_statements("SELECT 'open").is_err());
    }

    #[test]
    fn double_quoted_strings_in_hive_ddl_are_strings() {
        let sql = r#"CREATE EXTERNAL TABLE t (a int) ROW FORMAT DELIMITED FIELDS TERMINATED BY "\t" LOCATION "s3://b/t/" TBLPROPERTIES ("skip.header.line.count"="1")"#;
        let Statement::CreateExternalTable(t) = parse(sql, "generic").expect("parse") else {
            panic!("not a table");
        };
        assert_eq!(t.location.as_deref(), Some("s3://b/t/"));
        assert_eq!(
            t.table_properties,
            vec![("skip.header.line.count".to_string(), "1".to_string())]
        );
        assert!(matches!(
            t.row_format,
            Some(RowFormat::Delimited { fields_terminated_by: Some(ref d), .. }) if d == "\t"
        ));
    }

    #[test]
    fn explain_cost_wraps_the_statement() {
        let Statement::ExplainCost(inner) =
            parse("explain  COST\n SELECT 1", "generic").expect("parse")
        else {
            panic!("not EXPLAIN COST");
        };
        assert!(matches!(*inner, Statement::Query(_)));
        assert!(matches!(
            parse("EXPLAIN SELECT 1", "generic").expect("parse"),
            Statement::Query(_)
        ));
    }
}
