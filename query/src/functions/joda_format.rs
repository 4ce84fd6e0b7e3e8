//! Joda-Time `DateTimeFormat` patterns, as `format_datetime` and `parse_datetime` read them
//! (Trino `functions/datetime.md`, "Java date functions"). A pattern compiles to the items of
//! [`mysql_format`](super::mysql_format), which prints and parses them with Joda's rules.
//!
//! Supported letters: `y` (`yy` two digits), `x` (week-year), `w` (week), `M` (`MMM` short and
//! `MMMM` long names), `d`, `D`, `E` (`EEE` short, `EEEE` long), `a`, `H`, `h`, `m`, `s`, `S`
//! (fraction digits), `Z` (`+0100`), `ZZ` (`+01:00`), `ZZZ` (zone id) and `z` (short zone name).
//! Text in single quotes is literal, `''` is a quote, other non-letters are literal. Other
//! letters are errors: Joda's message for unknown ones, "not supported" for Joda's `G C Y e K k`.

use super::mysql_format::Item;

/// Compiles `pattern`; the error is Joda's (Trino's) message.
pub(crate) fn compile(pattern: &str) -> Result<Vec<Item>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                items.push(Item::Literal('\''));
                i += 2;
                continue;
            }
            // A quoted literal; `''` inside is a quote; an unclosed quote runs to the end.
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        items.push(Item::Literal('\''));
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                items.push(Item::Literal(chars[i]));
                i += 1;
            }
            continue;
        }
        if !c.is_ascii_alphabetic() {
            items.push(Item::Literal(c));
            i += 1;
            continue;
        }
        let n = chars[i..].iter().take_while(|&&x| x == c).count();
        i += n;
        items.push(match c {
            'y' if n == 2 => Item::TwoDigitYear,
            'y' => Item::Year,
            'x' => Item::WeekYear,
            'w' => Item::Week,
            'M' if n >= 4 => Item::MonthLong,
            'M' if n == 3 => Item::MonthShort,
            'M' => Item::Month(n),
            'd' => Item::Day(n),
            'D' => Item::DayOfYear(n),
            'E' if n >= 4 => Item::WeekdayLong,
            'E' => Item::WeekdayShort,
            'a' => Item::HalfDay,
            'H' => Item::Hour24(n),
            'h' => Item::Hour12(n),
            'm' => Item::Minute(n),
            's' => Item::Second(n),
            'S' => Item::FractionDigits(n),
            'Z' if n == 1 => Item::ZoneOffset(false),
            'Z' if n == 2 => Item::ZoneOffset(true),
            'Z' => Item::ZoneId,
            'z' => Item::ZoneName,
            'G' | 'C' | 'Y' | 'e' | 'K' | 'k' => {
                return Err(format!("Pattern component not supported: {c}"));
            }
            other => return Err(format!("Illegal pattern component: {other}")),
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::super::mysql_format::{ZoneAt, format, format_zoned, parse_zoned};
    use super::*;
    use chrono::{FixedOffset, NaiveDateTime};

    fn ts(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn formats_joda_patterns() {
        let t = ts("2001-08-02 15:04:05.321");
        let f = |p: &str| format(&compile(p).unwrap(), &t);
        assert_eq!(f("yyyy-MM-dd'T'HH:mm:ss.SSS"), "2001-08-02T15:04:05.321");
        assert_eq!(f("yy M d H m s S D DDD"), "01 8 2 15 4 5 3 214 214");
        assert_eq!(
            f("EEE EEEE MMM MMMM hh a ''x''"),
            "Thu Thursday Aug August 03 PM '2001'"
        );
        let zone = ZoneAt {
            offset: FixedOffset::east_opt(19800).unwrap(),
            id: "Asia/Kolkata".into(),
            short_name: "IST".into(),
        };
        assert_eq!(
            format_zoned(&compile("Z ZZ ZZZ z").unwrap(), &t, &zone),
            "+0530 +05:30 Asia/Kolkata IST"
        );
        assert_eq!(
            compile("yyyy q").unwrap_err(),
            "Illegal pattern component: q"
        );
    }

    #[test]
    fn parses_zones() {
        let p = |f: &str, s: &str| parse_zoned(&compile(f).unwrap(), s);
        let (t, z) = p("yyyy-MM-dd HH:mm Z", "2020-05-11 11:15 -0700").unwrap();
        assert_eq!(t, ts("2020-05-11 11:15:00"));
        assert_eq!(
            z,
            Some(super::super::mysql_format::ParsedZone::Offset(
                FixedOffset::west_opt(7 * 3600).unwrap()
            ))
        );
        let (_, z) = p("yyyy ZZZ", "2020 Europe/Paris").unwrap();
        assert_eq!(
            z,
            Some(super::super::mysql_format::ParsedZone::Id(
                "Europe/Paris".into()
            ))
        );
        assert!(
            p("yyyy-MM-dd", "2020-05-1x")
                .unwrap_err()
                .contains("malformed")
        );
    }
}
