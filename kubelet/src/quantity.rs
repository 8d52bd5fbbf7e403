//! Resource quantities ("500m", "128Mi", "1.5", "2e3") as numbers, for cgroup settings,
//! admission and `resourceFieldRef`.

use apimachinery::quantity::ParsedQuantity;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

fn parsed(q: &Quantity) -> Option<ParsedQuantity> {
    ParsedQuantity::parse(q.0.trim())
}

/// The quantity's value, or `None` when it does not parse.
pub fn parse(q: &Quantity) -> Option<f64> {
    parsed(q).map(|p| p.as_f64())
}

/// CPU in millicores, rounded up as upstream does.
pub fn milli_cpu(q: &Quantity) -> Option<i64> {
    parsed(q)?.milli_value()
}

/// Bytes, rounded up.
pub fn bytes(q: &Quantity) -> Option<i64> {
    parsed(q)?.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes() {
        assert_eq!(milli_cpu(&Quantity("500m".into())), Some(500));
        assert_eq!(milli_cpu(&Quantity("2".into())), Some(2000));
        assert_eq!(bytes(&Quantity("128Mi".into())), Some(128 * 1024 * 1024));
        assert_eq!(bytes(&Quantity("1G".into())), Some(1_000_000_000));
        assert_eq!(bytes(&Quantity("2e3".into())), Some(2000));
        assert_eq!(parse(&Quantity("1x".into())), None);
    }
}
