//! Structured logging with `tracing-subscriber`, configured like upstream's `-v` and
//! `--logging-format` flags.

use tracing_subscriber::{fmt, EnvFilter};

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!(
                "unsupported logging format {other:?}: want \"text\" or \"json\""
            )),
        }
    }
}

/// Maps upstream's klog verbosity (`-v=N`) onto tracing levels.
fn level_for_verbosity(v: u8) -> &'static str {
    match v {
        0..=1 => "info",
        2..=4 => "debug",
        _ => "trace",
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the verbosity.
pub fn init(verbosity: u8, format: Format) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{},h2=info,hyper=info,tower=info,rustls=info",
            level_for_verbosity(verbosity)
        ))
    });
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format {
        Format::Text => builder.try_init(),
        Format::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Err(err) = result {
        eprintln!("logging already initialised: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_formats() {
        assert_eq!("json".parse::<Format>(), Ok(Format::Json));
        assert!("xml".parse::<Format>().is_err());
        assert_eq!(level_for_verbosity(0), "info");
        assert_eq!(level_for_verbosity(4), "debug");
        assert_eq!(level_for_verbosity(9), "trace");
    }
}
