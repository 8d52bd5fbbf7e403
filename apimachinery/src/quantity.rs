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

/// How a quantity is written, which upstream keeps so that sums print in the same style:
/// `1Gi + 512Mi` is `1536Mi`, `100m + 200m` is `300m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// A quantity with its format, with upstream's addition and canonical text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    pub value: ParsedQuantity,
    pub format: Format,
}

impl Quantity {
    /// Parses a quantity as it arrives in an object (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Option<Quantity> {
        let text = text.trim();
        let value = ParsedQuantity::parse(text)?;
        let suffix = text.trim_start_matches(|c: char| c.is_ascii_digit() || "+-.".contains(c));
        let format = if suffix.ends_with('i') {
            Format::BinarySI
        } else if suffix.starts_with(['e', 'E']) {
            Format::DecimalExponent
        } else {
            Format::DecimalSI
        };
        Some(Quantity { value, format })
    }

    pub fn zero() -> Quantity {
        Quantity {
            value: ParsedQuantity {
                mantissa: 0,
                exp10: 0,
            },
            format: Format::DecimalSI,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.value.mantissa == 0
    }

    /// The sum, in this quantity's format (the other's when this one is zero, as upstream's
    /// `Add`); `None` on overflow.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let (a, b) = (self.value, other.value);
        let exp10 = a.exp10.min(b.exp10);
        let align = |q: ParsedQuantity| {
            10i128
                .checked_pow((q.exp10 - exp10).unsigned_abs())
                .and_then(|s| q.mantissa.checked_mul(s))
        };
        let mantissa = align(a)?.checked_add(align(b)?)?;
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        Some(Quantity {
            value: ParsedQuantity { mantissa, exp10 },
            format,
        })
    }

    /// The difference, in this quantity's format; `None` on overflow.
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        let negated = Quantity {
            value: ParsedQuantity {
                mantissa: other.value.mantissa.checked_neg()?,
                exp10: other.value.exp10,
            },
            format: other.format,
        };
        let mut out = self.checked_add(&negated)?;
        out.format = self.format;
        Some(out)
    }
}

impl std::fmt::Display for Quantity {
    /// Upstream's canonical text: binary suffixes for whole BinarySI values of at least 1Ki,
    /// else decimal suffixes with an exponent that is a multiple of three (`1k`, `1500`,
    /// `500m`), rounded up to nano units.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ParsedQuantity {
            mut mantissa,
            mut exp10,
        } = self.value;
        if mantissa == 0 {
            return f.write_str("0");
        }
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exp10 += 1;
        }
        if self.format == Format::BinarySI && exp10 >= 0 && mantissa.abs() >= 1 {
            if let Some(mut whole) = 10i128
                .checked_pow(exp10.unsigned_abs())
                .and_then(|s| mantissa.checked_mul(s))
            {
                if whole.abs() >= 1024 {
                    let mut power = 0;
                    while whole % 1024 == 0 && power < 6 {
                        whole /= 1024;
                        power += 1;
                    }
                    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
                    return write!(f, "{whole}{suffix}");
                }
            }
        }
        if exp10 < -9 {
            let rounded = ParsedQuantity { mantissa, exp10 }
                .scaled_value(9)
                .unwrap_or(mantissa.signum());
            return write!(f, "{rounded}n");
        }
        let mut exp3 = exp10.div_euclid(3) * 3;
        if self.format == Format::DecimalSI {
            exp3 = exp3.min(18);
        }
        let shift = 10i128
            .checked_pow((exp10 - exp3).unsigned_abs())
            .and_then(|s| mantissa.checked_mul(s));
        let Some(number) = shift else {
            return write!(f, "{mantissa}e{exp10}");
        };
        if self.format == Format::DecimalExponent {
            return if exp3 == 0 {
                write!(f, "{number}")
            } else {
                write!(f, "{number}e{exp3}")
            };
        }
        let suffix = match exp3 {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            _ => "E",
        };
        write!(f, "{number}{suffix}")
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
    use super::{parse_scaled, ParsedQuantity, Quantity};
    use std::cmp::Ordering;

    fn q(s: &str) -> ParsedQuantity {
        match ParsedQuantity::parse(s) {
            Some(q) => q,
            None => panic!("{s} should parse"),
        }
    }

    #[test]
    fn adds_and_prints_canonically() {
        let qty = |s: &str| match Quantity::parse(s) {
            Some(q) => q,
            None => panic!("{s} should parse"),
        };
        let sum = |a: &str, b: &str| match qty(a).checked_add(&qty(b)) {
            Some(q) => q.to_string(),
            None => panic!("{a} + {b} overflows"),
        };
        assert_eq!(sum("1Gi", "512Mi"), "1536Mi");
        assert_eq!(sum("100m", "200m"), "300m");
        assert_eq!(sum("0", "1Gi"), "1Gi");
        assert_eq!(sum("500m", "500m"), "1");
        assert_eq!(sum("1", "0.5"), "1500m");
        assert_eq!(sum("999", "1"), "1k");
        assert_eq!(sum("1k", "500"), "1500");
        assert_eq!(sum("1", "1"), "2");
        assert_eq!(qty("1000Mi").to_string(), "1000Mi");
        assert_eq!(qty("1024").to_string(), "1024");
        assert_eq!(qty("0.5Gi").to_string(), "512Mi");
        assert_eq!(qty("100Mi").to_string(), "100Mi");
        assert_eq!(qty("1e3").to_string(), "1e3");
        assert_eq!(qty("1Ki").to_string(), "1Ki");
        assert_eq!(qty("10").to_string(), "10");
        assert_eq!(qty("1.5").to_string(), "1500m");
        let diff = match qty("2").checked_sub(&qty("500m")) {
            Some(q) => q.to_string(),
            None => panic!("overflow"),
        };
        assert_eq!(diff, "1500m");
        assert!(qty("1").checked_sub(&qty("1")).is_some_and(|q| q.is_zero()));
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
