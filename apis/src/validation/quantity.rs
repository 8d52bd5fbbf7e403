//! Resource quantities (`500m`, `1Gi`, `1e3`) for validation: `apimachinery::quantity` parsed,
//! with the text as written kept for messages.

use apimachinery::quantity::ParsedQuantity;
use serde_json::Value;
use std::cmp::Ordering;

/// The message upstream gives for a string that is not a quantity.
pub const QUANTITY_SYNTAX_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A parsed quantity together with the text it was written as.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    value: ParsedQuantity,
    /// The value as written, used in messages.
    pub text: String,
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
        Some(Quantity {
            value: ParsedQuantity::parse(text)?,
            text: text.to_string(),
        })
    }

    pub fn is_negative(&self) -> bool {
        self.value.is_negative()
    }

    /// Whether the value is a whole number (upstream: `MilliValue() % 1000 == 0`).
    pub fn is_integer(&self) -> bool {
        self.value.is_integer()
    }

    /// Exact comparison; falls back to floating point only when aligning would overflow.
    pub fn cmp_value(&self, other: &Quantity) -> Ordering {
        self.value.cmp_value(&other.value)
    }
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
