//! Hive type strings (what Glue stores) to and from Arrow types.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

use crate::{Error, Result};

/// The Hive type string Glue would store for an Arrow type.
pub fn to_hive(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "string".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "int".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        // Hive has no unsigned 64-bit integer; decimal(20,0) holds every value.
        DataType::UInt64 => "decimal(20,0)".into(),
        DataType::Float16 | DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "binary".into(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _) => format!("array<{}>", to_hive(f.data_type())),
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{}:{}", f.name(), to_hive(f.data_type())))
                .collect();
            format!("struct<{}>", inner.join(","))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map<{},{}>",
                to_hive(kv[0].data_type()),
                to_hive(kv[1].data_type())
            ),
            _ => "string".into(),
        },
        DataType::Dictionary(_, value) => to_hive(value),
        // Times, intervals, durations, unions and views without a Hive counterpart read as text.
        _ => "string".into(),
    }
}

/// Parse a Hive type string into an Arrow type. Timestamps map to microseconds, Hive's precision.
pub fn from_hive(hive: &str) -> Result<DataType> {
    let mut parser = Parser { src: hive, pos: 0 };
    let t = parser.parse_type()?;
    parser.skip_ws();
    if parser.pos != hive.len() {
        return Err(parser.error("unexpected trailing text"));
    }
    Ok(t)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> Error {
        Error::InvalidType {
            type_string: self.src.to_string(),
            reason: format!("{what} at offset {}", self.pos),
        }
    }

    fn skip_ws(&mut self) {
        while self.src[self.pos..].starts_with(' ') {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> Result<()> {
        self.skip_ws();
        if self.src[self.pos..].starts_with(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    fn peek(&mut self, c: char) -> bool {
        self.skip_ws();
        self.src[self.pos..].starts_with(c)
    }

    fn ident(&mut self) -> Result<&str> {
        self.skip_ws();
        let rest = &self.src[self.pos..];
        let end = rest
            .find(['<', '>', ',', ':', '(', ')'])
            .unwrap_or(rest.len());
        if end == 0 {
            return Err(self.error("expected a name"));
        }
        self.pos += end;
        Ok(rest[..end].trim())
    }

    fn number(&mut self) -> Result<u32> {
        let s = self.ident()?.to_string();
        s.parse().map_err(|_| self.error("expected a number"))
    }

    fn parse_type(&mut self) -> Result<DataType> {
        let name = self.ident()?.to_ascii_lowercase();
        Ok(match name.as_str() {
            "boolean" => DataType::Boolean,
            "tinyint" => DataType::Int8,
            "smallint" => DataType::Int16,
            "int" | "integer" => DataType::Int32,
            "bigint" => DataType::Int64,
            "float" => DataType::Float32,
            "double" => DataType::Float64,
            "string" | "varchar" | "char" => {
                if self.peek('(') {
                    self.eat('(')?;
                    // Hive: char(1..255), varchar(1..65535).
                    let max = if name == "char" { 255 } else { 65_535 };
                    let n = self.number()?;
                    if !(1..=max).contains(&n) {
                        return Err(self.error(&format!("{name} length must be 1 to {max}")));
                    }
                    self.eat(')')?;
                }
                DataType::Utf8
            }
            "binary" => DataType::Binary,
            "date" => DataType::Date32,
            "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
            "decimal" => {
                let (mut p, mut s) = (10, 0);
                if self.peek('(') {
                    self.eat('(')?;
                    p = self.number()?;
                    if self.peek(',') {
                        self.eat(',')?;
                        s = self.number()?;
                    }
                    self.eat(')')?;
                }
                if !(1..=38).contains(&p) || s > p {
                    return Err(self.error("decimal(p,s) needs 1 <= p <= 38 and s <= p"));
                }
                DataType::Decimal128(p as u8, s as i8)
            }
            "array" => {
                self.eat('<')?;
                let inner = self.parse_type()?;
                self.eat('>')?;
                DataType::List(Arc::new(Field::new("item", inner, true)))
            }
            "map" => {
                self.eat('<')?;
                let k = self.parse_type()?;
                self.eat(',')?;
                let v = self.parse_type()?;
                self.eat('>')?;
                let entries = Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", k, false),
                        Field::new("value", v, true),
                    ])),
                    false,
                );
                DataType::Map(Arc::new(entries), false)
            }
            "struct" => {
                self.eat('<')?;
                let mut fields = Vec::new();
                while !self.peek('>') {
                    if !fields.is_empty() {
                        self.eat(',')?;
                    }
                    let name = self.ident()?.to_string();
                    self.eat(':')?;
                    let t = self.parse_type()?;
                    fields.push(Field::new(name, t, true));
                }
                self.eat('>')?;
                DataType::Struct(Fields::from(fields))
            }
            _ => return Err(self.error(&format!("unknown type '{name}'"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_nested_types() {
        for s in [
            "bigint",
            "array<string>",
            "struct<a:bigint,b:array<struct<c:double>>>",
            "map<string,bigint>",
            "decimal(12,2)",
            "timestamp",
            "date",
        ] {
            let t = from_hive(s).expect(s);
            assert_eq!(to_hive(&t), s);
        }
    }

    #[test]
    fn rejects_garbage_with_position() {
        let err = from_hive("struct<a:int").unwrap_err().to_string();
        assert!(err.contains("struct<a:int"), "{err}");
        assert!(from_hive("frobnicate").is_err());
        assert!(from_hive("int extra").is_err());
    }

    #[test]
    fn string_and_decimal_bounds_are_hive_s() {
        assert_eq!(
            from_hive("varchar(65535)").expect("varchar"),
            DataType::Utf8
        );
        assert_eq!(from_hive("char(255)").expect("char"), DataType::Utf8);
        assert!(from_hive("char(256)").is_err());
        assert!(from_hive("varchar(0)").is_err());
        assert_eq!(
            from_hive("decimal(38,10)").expect("decimal"),
            DataType::Decimal128(38, 10)
        );
        assert!(from_hive("decimal(39,0)").is_err());
        assert!(from_hive("decimal(5,6)").is_err());
    }
}
