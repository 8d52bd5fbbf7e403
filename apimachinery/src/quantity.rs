//! Resource quantities (`500m`, `1Gi`, `1.5`, `2e3`) as upstream's `resource.Quantity` reads
//! them: decimal SI suffixes, binary SI suffixes and decimal exponents, held exactly as
//! `mantissa * 10^exp10` so that values compare and scale without floating-point error.

use std::cmp::Ordering;

/// A parsed quantity: `mantissa * 10^exp10`, exact while it fits in an i128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedQuantity {
    mantissa: i128,
    exp10: i32,
}

fn digits_value(digits: &str, acc: &mut i128, exp: &mut i32) -> Option<()> {
    for c in digits.bytes() {
        let d = i128::from(c - b'0');
        match acc.checked_mul(10).and_then(|v| v.checked_add(d)) {
            Some(v) => *acc = v,
            // Past i128 precision the remaining digits only scale the value.
            None => *exp = exp.checked_add(1)?,
        }
    }
    Some(())
}

impl ParsedQuantity {
    /// Parses `<sign><digits>[.<digits>]<suffix>` as upstream's `ParseQuantity` accepts it
    /// (no surrounding whitespace).
    pub fn parse(text: &str) -> Option<ParsedQuantity> {
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(num_end);
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => {
                if f.contains('.') {
                    return None;
                }
                (i, f)
            }
            None => (number, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let mut mantissa: i128 = 0;
        let mut exp10: i32 = 0;
        digits_value(int_part, &mut mantissa, &mut exp10)?;
        digits_value(frac_part, &mut mantissa, &mut exp10)?;
        let frac_len = i32::try_from(frac_part.len()).ok()?;
        exp10 = exp10.checked_sub(frac_len)?;
        let (mult2, add10) = parse_suffix(suffix)?;
        if mult2 > 0 {
            let factor = 1i128.checked_shl(mult2)?;
            mantissa = mantissa.checked_mul(factor)?;
        }
        exp10 = exp10.checked_add(add10)?;
        if negative {
            mantissa = -mantissa;
        }
        Some(ParsedQuantity { mantissa, exp10 })
    }

    pub fn is_negative(&self) -> bool {
        self.mantissa < 0
    }

    /// Whether the value is a whole number (upstream: `MilliValue() % 1000 == 0`).
    pub fn is_integer(&self) -> bool {
        if self.exp10 >= 0 || self.mantissa == 0 {
            return true;
        }
        let scale = 10i128.checked_pow(self.exp10.unsigned_abs());
        scale.is_some_and(|s| self.mantissa % s == 0)
    }

    /// `value * 10^scale` as an integer, rounded away from zero as upstream's `ScaledValue`
    /// does; `None` when it does not fit in an i128.
    pub fn scaled_value(&self, scale: i32) -> Option<i128> {
        let exp = self.exp10.checked_add(scale)?;
        if exp >= 0 {
            return 10i128
                .checked_pow(exp.unsigned_abs())
                .and_then(|s| self.mantissa.checked_mul(s));
        }
        let Some(div) = 10i128.checked_pow(exp.unsigned_abs()) else {
            // The divisor exceeds any i128 mantissa: only the rounding is left.
            return Some(self.mantissa.signum());
        };
        let rounded = self.mantissa.abs() / div + i128::from(self.mantissa % div != 0);
        Some(if self.mantissa < 0 { -rounded } else { rounded })
    }

    /// The value in whole units, rounded up (upstream's `Value`); `None` outside i64.
    pub fn value(&self) -> Option<i64> {
        self.scaled_value(0).and_then(|v| i64::try_from(v).ok())
    }

    /// The value in thousandths, rounded up (upstream's `MilliValue`); `None` outside i64.
    pub fn milli_value(&self) -> Option<i64> {
        self.scaled_value(3).and_then(|v| i64::try_from(v).ok())
    }

    /// The value as a float (upstream's `AsApproximateFloat64`).
    pub fn as_f64(&self) -> f64 {
        let m = self.mantissa as f64;
        if self.exp10 >= 0 {
            m * 10f64.powi(self.exp10)
        } else {
            m / 10f64.powi(-self.exp10)
        }
    }

    /// Exact comparison; falls back to floating point only when aligning would overflow.
    pub fn cmp_value(&self, other: &ParsedQuantity) -> Ordering {
        let (a, b) = (self, other);
        let (hi, lo, flip) = if a.exp10 >= b.exp10 {
            (a, b, false)
        } else {
            (b, a, true)
        };
        let diff = (hi.exp10 - lo.exp10).unsigned_abs();
        let scaled = 10i128
            .checked_pow(diff)
            .and_then(|s| hi.mantissa.checked_mul(s));
        let ord = match scaled {
            Some(h) => h.cmp(&lo.mantissa),
            None => hi
                .as_f64()
                .partial_cmp(&lo.as_f64())
                .unwrap_or(Ordering::Equal),
        };
        if flip {
            ord.reverse()
        } else {
            ord
        }
    }
}

/// Returns (power of two, power of ten) for a suffix.
fn parse_suffix(suffix: &str) -> Option<(u32, i32)> {
    let binary = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(p) = binary {
        return Some((p, 0));
    }
    let decimal = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = decimal {
        return Some((0, e));
    }
    let exp = suffix.strip_prefix(['e', 'E'])?;
    let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((0, exp.parse::<i32>().ok()?))
}

/// Parses a quantity as it arrives in an object (surrounding whitespace ignored, as upstream's
/// `UnmarshalJSON` does) and returns `value * 10^scale` rounded up.
pub fn parse_scaled(text: &str, scale: i32) -> Option<i128> {
    ParsedQuantity::parse(text.trim())?.scaled_value(scale)
}

#[cfg(test)]
mod tests {
    use super::{parse_scaled, ParsedQuantity};
    use std::cmp::Ordering;

    fn q(s: &str) -> ParsedQuantity {
        match ParsedQuantity::parse(s) {
            Some(q) => q,
            None => panic!("{s} should parse"),
        }
    }

    #[test]
    fn parses_and_rejects() {
        for ok in [
            "1", "500m", "1Gi", "0.5", ".5", "5.", "1e3", "1E-3", "+2k", "-1", "100n", "1e+3",
        ] {
            assert!(ParsedQuantity::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "abc", "1.2.3", "1Gb", "1e", "m", "1 Gi", "1ki", " 1", "x1", "1x",
        ] {
            assert!(ParsedQuantity::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn scales_and_rounds_up() {
        assert_eq!(q("500m").milli_value(), Some(500));
        assert_eq!(q("2").milli_value(), Some(2000));
        assert_eq!(q("0.1").milli_value(), Some(100));
        assert_eq!(q("1.1").milli_value(), Some(1100));
        assert_eq!(q("1Gi").value(), Some(1 << 30));
        assert_eq!(q("16Gi").value(), Some(16 << 30));
        assert_eq!(q("128Mi").value(), Some(128 << 20));
        assert_eq!(q("1G").value(), Some(1_000_000_000));
        assert_eq!(q("1.5k").value(), Some(1500));
        assert_eq!(q("2e3").value(), Some(2000));
        assert_eq!(q("1E-3").milli_value(), Some(1));
        assert_eq!(q("1m").value(), Some(1));
        assert_eq!(q("1001m").value(), Some(2));
        assert_eq!(q("-1500m").value(), Some(-2));
        assert_eq!(q("1n").milli_value(), Some(1));
        assert_eq!(q("1e-50").value(), Some(1));
        assert_eq!(q("0e-50").value(), Some(0));
        assert_eq!(q("1Ei").value(), Some(1 << 60));
        assert_eq!(q("10E").value(), None);
        assert_eq!(
            q("1Ei").scaled_value(9),
            Some((1i128 << 60) * 1_000_000_000)
        );
        assert_eq!(parse_scaled(" 100m ", 9), Some(100_000_000));
        assert_eq!(parse_scaled("abc", 0), None);
    }

    #[test]
    fn floats() {
        assert_eq!(q("1.5").as_f64(), 1.5);
        assert_eq!(q("500m").as_f64(), 0.5);
        assert_eq!(q("2e3").as_f64(), 2000.0);
        assert_eq!(q("1Ki").as_f64(), 1024.0);
    }

    #[test]
    fn compares_across_suffixes() {
        assert_eq!(q("1").cmp_value(&q("1000m")), Ordering::Equal);
        assert_eq!(q("0.1").cmp_value(&q("100m")), Ordering::Equal);
        assert_eq!(q("1Gi").cmp_value(&q("1073741824")), Ordering::Equal);
        assert_eq!(q("1G").cmp_value(&q("1Gi")), Ordering::Less);
        assert_eq!(q("2").cmp_value(&q("1500m")), Ordering::Greater);
        assert_eq!(q("1e3").cmp_value(&q("1k")), Ordering::Equal);
        assert!(q("-1").is_negative());
        assert!(q("2000m").is_integer());
        assert!(!q("1500m").is_integer());
    }
}
