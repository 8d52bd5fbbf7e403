//! Go `time.Duration` strings, the JSON form of `metav1.Duration`.

use super::error::ProtobufError;

/// Formats nanoseconds like Go's `time.Duration.String` ("1h2m3.5s", "150ms", "0s").
pub(crate) fn format(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        let (scale, unit) = match n {
            0..1_000 => (1, "ns"),
            1_000..1_000_000 => (1_000, "µs"),
            _ => (1_000_000, "ms"),
        };
        return format!("{sign}{}{unit}", decimal(n, scale));
    }
    let hours = n / 3_600_000_000_000;
    let minutes = n / 60_000_000_000 % 60;
    let seconds = decimal(n % 60_000_000_000, 1_000_000_000);
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{seconds}s")
    } else {
        format!("{sign}{seconds}s")
    }
}

/// `value / scale` with the fraction's trailing zeros trimmed.
fn decimal(value: u64, scale: u64) -> String {
    let whole = value / scale;
    let frac = value % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = scale.ilog10() as usize;
    let frac = format!("{frac:0digits$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Parses a Go duration string ("1h2m3.5s", "-150ms", "0") into nanoseconds.
pub(crate) fn parse(text: &str) -> Result<i64, ProtobufError> {
    let invalid = || ProtobufError::unencodable(format!("invalid Go duration {text:?}"));
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(invalid()),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut value = whole.checked_mul(scale).ok_or_else(invalid)?;
        let mut place = scale;
        for digit in frac.chars() {
            let digit = i128::from(digit.to_digit(10).ok_or_else(invalid)?);
            place /= 10;
            value += digit * place;
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        rest = tail;
    }
    let total = if negative { -total } else { total };
    i64::try_from(total).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_strings() {
        assert_eq!(format(0), "0s");
        assert_eq!(format(1), "1ns");
        assert_eq!(format(1_500), "1.5µs");
        assert_eq!(format(150_000_000), "150ms");
        assert_eq!(format(1_000_000_000), "1s");
        assert_eq!(format(90_000_000_000), "1m30s");
        assert_eq!(format(3_600_000_000_000), "1h0m0s");
        assert_eq!(format(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(format(-2_000_000_000), "-2s");
    }

    #[test]
    fn parses_what_it_formats() {
        for nanos in [
            0,
            1,
            1_500,
            150_000_000,
            90_000_000_000,
            3_723_500_000_000,
            -2_000_000_000,
        ] {
            assert_eq!(parse(&format(nanos)).unwrap(), nanos);
        }
        assert_eq!(parse("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse("10us").unwrap(), 10_000);
        for bad in ["", "5", "1x", "-", "h", "1..5s", "9999999999h"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
