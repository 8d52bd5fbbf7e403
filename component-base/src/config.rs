//! Component configuration from a file, the environment and flags, in that order of precedence
//! (a flag wins over the environment, which wins over the file), as upstream components layer
//! `--config` files under explicit flags.

use std::path::Path;

use serde::de::DeserializeOwned;

/// Why a component configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading configuration: {0}")]
    Load(#[from] config::ConfigError),
}

/// Loads a configuration of type `T`.
///
/// `file` is a YAML, JSON or TOML file (by extension), `env_prefix` names environment variables
/// such as `FERROKUBE_APISERVER_SECURE_PORT` (nested keys separated by `__`), and `overrides`
/// are the flags the user set explicitly, as `(key, value)` pairs in the configuration's own
/// key names.
pub fn load<T: DeserializeOwned>(
    file: Option<&Path>,
    env_prefix: &str,
    overrides: &[(&str, String)],
) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    builder = builder.add_source(
        config::Environment::with_prefix(env_prefix)
            .prefix_separator("_")
            .separator("__"),
    );
    for (key, value) in overrides {
        builder = builder.set_override(*key, value.as_str())?;
    }
    Ok(builder.build()?.try_deserialize()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        port: u16,
        name: String,
        #[serde(default)]
        level: u8,
    }

    #[test]
    fn flags_override_file() {
        let dir = std::env::temp_dir().join(format!("cb-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.yaml");
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(f, "port: 10\nname: fromfile\nlevel: 2").unwrap();
        let cfg: Sample = load(Some(&path), "CBTEST", &[("port", "20".into())]).unwrap();
        assert_eq!(cfg.port, 20);
        assert_eq!(cfg.name, "fromfile");
        assert_eq!(cfg.level, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = load::<Sample>(Some(Path::new("/nonexistent/x.yaml")), "CBTEST", &[]);
        assert!(err.is_err());
    }
}
