//! Resource quantities (`500m`, `1Gi`, `1e3`): enough of upstream's `resource.Quantity` to check
//! the syntax and compare two values exactly.

use serde_json::Value;
use std::cmp::Ordering;

/// The message upstream gives for a string that is not a quantity.
pub const QUANTITY_SYNTAX_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A parsed quantity: `mantissa * 10^exp10`, exact while it fits in an i128.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    mantissa: i128,
    exp10: i32,
    /// The value as written, used in messages.
    pub text: String,
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

impl Quantity {
    /// Parses the JSON form of a quantity (a string, or a bare number).
    pub fn from_json(v: &Value) -> Option<Quantity> {
        match v {
            Value::String(s) => Quantity::parse(s),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => None,
        }
    }

    /// Parses `<sign><digits>[.<digits>]<suffix>` as upstream's `ParseQuantity` accepts it.
    pub fn parse(text: &str) -> Option<Quantity> {
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
        Some(Quantity {
            mantissa,
            exp10,
            text: text.to_string(),
        })
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

    /// Exact comparison; falls back to floating point only when aligning would overflow.
    pub fn cmp_value(&self, other: &Quantity) -> Ordering {
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
            None => {
                let hf = hi.mantissa as f64 * 10f64.powi(hi.exp10);
                let lf = lo.mantissa as f64 * 10f64.powi(lo.exp10);
                hf.partial_cmp(&lf).unwrap_or(Ordering::Equal)
            }
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

#[cfg(test)]
mod tests {
    use super::Quantity;
    use std::cmp::Ordering;

    fn q(s: &str) -> Quantity {
        match Quantity::parse(s) {
            Some(q) => q,
            None => panic!("{s} should parse"),
        }
    }

    #[test]
    fn parses_and_rejects() {
        for ok in [
            "1", "500m", "1Gi", "0.5", ".5", "5.", "1e3", "1E-3", "+2k", "-1", "100n",
        ] {
            assert!(Quantity::parse(ok).is_some(), "{ok}");
        }
        for bad in ["", "abc", "1.2.3", "1Gb", "1e", "m", "1 Gi", "1ki"] {
            assert!(Quantity::parse(bad).is_none(), "{bad}");
        }
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
