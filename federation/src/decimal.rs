//! Decimal text: what PostgreSQL's `numeric` and DynamoDB's `N` send, to and from Arrow's
//! 128-bit decimals.

/// The text of an unscaled decimal at `scale`.
pub fn text(unscaled: i128, scale: i8) -> String {
    if scale <= 0 {
        let zeros = "0".repeat(usize::from(scale.unsigned_abs()));
        return format!("{unscaled}{zeros}");
    }
    let negative = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let scale = usize::from(scale.unsigned_abs());
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale - digits.len() + 1))
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if negative { "-" } else { "" })
}

/// Parses decimal text (`-12.5`, `1E+3`, `.5`) into an unscaled value at `scale`, rounding
/// half-even beyond it; `None` when it does not fit 38 digits (or is NaN / infinite / not a
/// number).
pub fn parse(text: &str, scale: i8) -> Option<i128> {
    let text = text.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Move the point by the exponent: digits and where the point falls among them.
    let shifted;
    let (int, frac) = if exponent == 0 {
        (int, frac)
    } else {
        // Far beyond 38 digits either way: too large, or zero at any scale Arrow allows.
        if exponent > 400 {
            return None;
        }
        if exponent < -400 {
            return Some(0);
        }
        let digits = format!("{int}{frac}");
        let point = int.len() as i64 + i64::from(exponent);
        shifted = if point <= 0 {
            (
                String::new(),
                format!("{}{digits}", "0".repeat(point.unsigned_abs() as usize)),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_owned(),
                digits[point as usize..].to_owned(),
            )
        };
        (shifted.0.as_str(), shifted.1.as_str())
    };
    let scale = usize::try_from(scale).ok()?;
    let mut value: i128 = 0;
    for b in int
        .bytes()
        .chain(frac.bytes().chain(std::iter::repeat(b'0')).take(scale))
    {
        value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let rest = frac.get(scale..).unwrap_or("");
    if let Some(first) = rest.bytes().next() {
        let tail_nonzero = rest.bytes().skip(1).any(|b| b != b'0');
        let round_up = first > b'5' || (first == b'5' && (tail_nonzero || value % 2 == 1));
        if round_up {
            value = value.checked_add(1)?;
        }
    }
    if value >= 10i128.pow(38) {
        return None;
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_text_parses_and_rounds_half_even() {
        assert_eq!(parse("12.345", 2), Some(1234));
        assert_eq!(parse("12.355", 2), Some(1236));
        assert_eq!(parse("-0.5", 0), Some(0));
        assert_eq!(parse("1.5", 0), Some(2));
        assert_eq!(parse("7", 3), Some(7000));
        assert_eq!(parse("NaN", 2), None);
        assert_eq!(parse(&"9".repeat(39), 0), None);
        assert_eq!(text(-5, 3), "-0.005");
        assert_eq!(text(1234, 2), "12.34");
    }

    #[test]
    fn exponents_and_bare_fractions() {
        assert_eq!(parse("1E+3", 0), Some(1000));
        assert_eq!(parse("1.5e-1", 2), Some(15));
        assert_eq!(parse(".5", 1), Some(5));
        assert_eq!(parse("-2.5E2", 0), Some(-250));
        assert_eq!(parse("1e400", 0), None);
        assert_eq!(parse("e5", 0), None);
    }
}
