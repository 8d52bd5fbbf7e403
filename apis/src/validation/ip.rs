//! IP address checks for Service cluster IPs, external IPs and EndpointSlice addresses.

use super::field_error::FieldError;
use super::path::Path;
use std::net::IpAddr;

/// Upstream `IsValidIP`.
pub fn validate_ip(value: &str, path: &Path, errs: &mut Vec<FieldError>) -> Option<IpAddr> {
    let ip = value.parse::<IpAddr>().ok();
    if ip.is_none() {
        errs.push(FieldError::invalid(
            path,
            value,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    ip
}

/// Upstream `ValidateNonSpecialIP`: addresses that can never be an endpoint.
pub fn validate_non_special_ip(ip: IpAddr, value: &str, path: &Path, errs: &mut Vec<FieldError>) {
    let reason = match ip {
        _ if ip.is_unspecified() => Some("may not be unspecified (0.0.0.0)"),
        _ if ip.is_loopback() => Some("may not be in the loopback range (127.0.0.0/8, ::1/128)"),
        IpAddr::V4(v4) if v4.is_link_local() => {
            Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
        }
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => {
            Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
        }
        IpAddr::V4(v4) if v4.octets()[..3] == [224, 0, 0] => {
            Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
        }
        IpAddr::V6(v6) if (v6.segments()[0] & 0xff0f) == 0xff02 => {
            Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
        }
        _ => None,
    };
    if let Some(r) = reason {
        errs.push(FieldError::invalid(path, value, r));
    }
}
