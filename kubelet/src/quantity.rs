//! Resource quantities ("500m", "128Mi", "1.5", "2e3") as numbers, for cgroup settings,
//! admission and `resourceFieldRef`.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The quantity's value, or `None` when it does not parse.
pub fn parse(q: &Quantity) -> Option<f64> {
    let s = q.0.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    Some(value * scale)
}

/// CPU in millicores, rounded up as upstream does.
pub fn milli_cpu(q: &Quantity) -> Option<i64> {
    parse(q).map(|v| (v * 1000.0).ceil() as i64)
}

/// Bytes, rounded up.
pub fn bytes(q: &Quantity) -> Option<i64> {
    parse(q).map(|v| v.ceil() as i64)
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
