//! Settings from the environment (and a `.env` file). Every variable is listed with a comment in
//! `.env.example` and in the README's configuration table.

use std::{env, path::PathBuf, str::FromStr, time::Duration};

use leptos::config::LeptosOptions;

/// Where the site's own options (output name, site root, address) live at run time.
/// `LEPTOS_*` variables override them, which is how `cargo leptos` passes its own.
const SITE_OPTIONS_FILE: &str = "Leptos.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot read the site options from {file}: {source}")]
    Site {
        file: String,
        source: leptos::config::errors::LeptosConfigError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            _ => Err("expected `json` or `pretty`".into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// SQLite database file (`DATABASE_URL`, `sqlite://` URL).
    pub database_url: String,
    /// The Docker engine (`DOCKER_HOST`).
    pub docker_host: String,
    /// How long in-flight requests may run after a shutdown signal.
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    /// The Leptos site: bind address, site root, bundle names.
    pub site: LeptosOptions,
}

impl Settings {
    /// Reads `.env` (if present) into the environment, then the settings from the environment.
    pub fn load() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is reported by the values it leaves unset.
        let _ = dotenvy::dotenv();
        Self::from_env()
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        let site_file = env::var("LEPTOS_CONFIG").unwrap_or_else(|_| SITE_OPTIONS_FILE.into());
        let site = leptos::config::get_configuration(Some(&site_file))
            .map_err(|source| ConfigError::Site {
                file: site_file,
                source,
            })?
            .leptos_options;
        Ok(Self {
            database_url: var("DATABASE_URL", "sqlite://data/ckad.db".into())?,
            docker_host: var("DOCKER_HOST", "unix:///var/run/docker.sock".into())?,
            shutdown_grace: Duration::from_secs(var("SHUTDOWN_GRACE_SECS", 10)?),
            log_format: var("LOG_FORMAT", LogFormat::Json)?,
            site,
        })
    }
}

/// An environment variable parsed into `T`, or `default` when unset or empty.
fn var<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: ToString,
{
    match env::var(name) {
        Ok(value) if !value.is_empty() => value.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
            value,
        }),
        _ => Ok(default),
    }
}

/// Where a `sqlite://` URL points, so its directory can be created.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_read_from_urls() {
        assert_eq!(sqlite_path("sqlite://data/ckad.db"), Some("data/ckad.db".into()));
        assert_eq!(
            sqlite_path("sqlite:///var/lib/ckad/ckad.db?mode=rwc"),
            Some("/var/lib/ckad/ckad.db".into())
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let err = "soon".parse::<u64>().map_err(|e| ConfigError::Invalid {
            name: "SHUTDOWN_GRACE_SECS",
            value: "soon".into(),
            reason: e.to_string(),
        });
        assert!(err
            .unwrap_err()
            .to_string()
            .starts_with("SHUTDOWN_GRACE_SECS=\"soon\" is not valid"));
        assert_eq!(
            "xml".parse::<LogFormat>(),
            Err("expected `json` or `pretty`".into())
        );
    }

    /// The build options (Cargo.toml, read by cargo-leptos) and the run-time options (Leptos.toml,
    /// read by the server) must name the same bundle and place.
    #[test]
    fn site_options_agree_with_the_build_metadata() {
        let root = env!("CARGO_MANIFEST_DIR");
        let build = leptos::config::get_config_from_file(format!("{root}/Cargo.toml")).unwrap();
        let run = leptos::config::get_config_from_file(format!("{root}/{SITE_OPTIONS_FILE}")).unwrap();
        let (build, run) = (build.leptos_options, run.leptos_options);
        assert_eq!(build.output_name, run.output_name);
        assert_eq!(build.site_root, run.site_root);
        assert_eq!(build.site_pkg_dir, run.site_pkg_dir);
        assert_eq!(build.site_addr, run.site_addr);
    }
}
