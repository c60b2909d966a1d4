//! Settings from the environment (and a `.env` file). Every variable is listed with a comment in
//! `.env.example` and in the README's configuration table.

use std::{env, ops::RangeInclusive, path::PathBuf, str::FromStr, time::Duration};

use leptos::config::LeptosOptions;
use secrecy::{ExposeSecret as _, SecretString};

use crate::{
    auth::GoogleSettings,
    billing::{settings::load_pass_types, BillingSettings, StripeSettings},
    clusters::{KindConfig, NodeContainment, SubnetPool, SESSION_ROLE},
    domain::PortRanges,
    mail::{MailApiKind, MailApiSettings, SmtpSecurity, SmtpSettings},
    replays::ReplaySettings,
    sessions::{PoolSettings, SessionSettings},
    store::{is_postgres, sqlite_path},
    terminals::ProbeTarget,
};
pub use crate::{
    clusters::{ClusterSettings, HostSettings, ProviderKind},
    telemetry::LogFormat,
};

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

/// A `FIRST-LAST` range of TCP ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRange(pub RangeInclusive<u16>);

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (first, last) = s.split_once('-').ok_or("expected FIRST-LAST, e.g. 30000-39999")?;
        let port = |p: &str| p.trim().parse::<u16>().map_err(|e| format!("{p:?}: {e}"));
        let (first, last) = (port(first)?, port(last)?);
        if first == 0 || first > last {
            return Err("expected 0 < FIRST <= LAST".into());
        }
        Ok(Self(first..=last))
    }
}

/// Names this platform on a shared Docker engine: what it creates carries the name, and its
/// reconciler touches nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance(pub String);

impl FromStr for Instance {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        valid
            .then(|| Self(s.to_owned()))
            .ok_or_else(|| "expected 1-32 lowercase letters, digits or dashes".into())
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The database (`DATABASE_URL`): a `sqlite://` file or a `postgres://` database.
    pub database_url: String,
    /// The Docker engine (`DOCKER_HOST`).
    pub docker_host: String,
    /// How long in-flight requests may run after a shutdown signal.
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    /// The Leptos site: bind address, site root, bundle names.
    pub site: LeptosOptions,
    pub clusters: ClusterSettings,
    pub terminals: TerminalSettings,
    pub sessions: SessionSettings,
    /// `TASKS_DIR`: the task files, loaded and checked at start-up.
    pub tasks_dir: PathBuf,
    /// `ADMIN_EMAILS`: who may see and end everyone's sessions (comma-separated).
    pub admin_emails: Vec<String>,
    pub auth: AuthSettings,
    pub http: HttpSettings,
    pub billing: BillingSettings,
    pub replays: ReplaySettings,
}

/// A comma-separated list of email addresses, compared in lower case.
#[derive(Debug, Clone, Default)]
pub struct EmailList(pub Vec<String>);

impl FromStr for EmailList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let emails: Vec<String> = s
            .split(',')
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        match emails.iter().find(|e| !e.contains('@')) {
            Some(bad) => Err(format!("{bad:?} is not an email address")),
            None => Ok(Self(emails)),
        }
    }
}

/// The learners' terminal containers.
#[derive(Debug, Clone)]
pub struct TerminalSettings {
    /// `TERMINAL_IMAGE`: made by scripts/build-terminal-image.sh or docker/terminal/Dockerfile.
    pub image: String,
    /// `HOST_FIREWALL`: whether the platform puts the rule that keeps session networks off the
    /// host in place itself (`iptables`) or the operator does (`external`).
    pub firewall: FirewallMode,
    /// `EGRESS_PROBE_TARGET`: with `external`, an outside `ip:port` the host reaches, which a
    /// probe from a session network must not (see `terminals::EgressProbe`).
    pub egress_probe_target: Option<ProbeTarget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirewallMode {
    Iptables,
    External,
}

impl FromStr for FirewallMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "iptables" => Ok(Self::Iptables),
            "external" => Ok(Self::External),
            _ => Err("expected `iptables` or `external`".into()),
        }
    }
}

/// How the site is reached, and the limits on what reaches it.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The site's origin as browsers see it (`PUBLIC_URL`; default `http://` + the bind address):
    /// the only origin allowed to make state-changing and cross-origin requests. `https://` turns
    /// on HSTS.
    pub public_origin: String,
    /// How many reverse proxies (Caddy) stand in front (`TRUSTED_PROXIES`, default 0).
    pub trusted_proxies: usize,
    /// Requests per minute per client: sign-in endpoints, and the JSON API as a whole.
    pub auth_per_minute: u32,
    pub api_per_minute: u32,
}

/// Where sign-in codes go.
#[derive(Debug, Clone)]
pub enum EmailProvider {
    /// Into the log (development).
    Outbox,
    Smtp(SmtpSettings),
    /// SendGrid's or Resend's HTTP API.
    Api(MailApiSettings),
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Signs access tokens and keys code hashes (`JWT_SECRET`, at least 32 bytes). Unset, a
    /// random one is made at start-up: every restart then signs everyone out.
    pub secret: SecretString,
    pub email: EmailProvider,
    /// Google sign-in, when `GOOGLE_CLIENT_ID` is set.
    pub google: Option<GoogleSettings>,
}

impl Settings {
    /// Reads `.env` (if present) into the environment, then the settings from the environment.
    pub fn load() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is reported by the values it leaves unset.
        let _ = dotenvy::dotenv();
        Self::from_env()
    }

    /// The host's ports that belong to the platform: where it listens, and its public URL's
    /// (Caddy's, when it stands in front). No session may reach them.
    pub fn platform_ports(&self) -> Vec<u16> {
        platform_ports(self.site.site_addr.port(), &self.http.public_origin)
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        let site_file = env::var("LEPTOS_CONFIG").unwrap_or_else(|_| SITE_OPTIONS_FILE.into());
        let site = leptos::config::get_configuration(Some(&site_file))
            .map_err(|source| ConfigError::Site {
                file: site_file,
                source,
            })?
            .leptos_options;
        let public_origin = public_origin(&var("PUBLIC_URL", format!("http://{}", site.site_addr))?)?;
        let provider = var("CLUSTER_PROVIDER", ProviderKind::Lite)?;
        let subnet_pool = var("SESSION_SUBNET_POOL", SubnetPool::default())?;
        Ok(Self {
            database_url: database_url()?,
            docker_host: var("DOCKER_HOST", "unix:///var/run/docker.sock".into())?,
            shutdown_grace: Duration::from_secs(var("SHUTDOWN_GRACE_SECS", 10)?),
            log_format: var("LOG_FORMAT", LogFormat::Json)?,
            site,
            clusters: ClusterSettings {
                provider,
                instance: var("PLATFORM_INSTANCE", Optional::<Instance>(None))?
                    .0
                    .map_or_else(String::new, |i| i.0),
                state_dir: path_var("STATE_DIR", "data/state")?,
                lite_bin_dir: var("LITE_BIN_DIR", Optional::<AbsolutePath>(None))?
                    .0
                    .map(|p| p.0),
                kind: KindConfig {
                    binary: var("KIND_BINARY", Optional::<Program>(None))?.0.map(|p| p.0),
                    node_image: var("KIND_NODE_IMAGE", Optional::<String>(None))?.0,
                    containment: NodeContainment::from_settings(
                        var("KIND_TRUSTED_LEARNERS", false)?,
                        var("KIND_NODE_RUNTIME", Optional::<String>(None))?.0,
                    ),
                },
                kubernetes: HostSettings {
                    kubeconfig: var("HOST_KUBECONFIG", Optional::<AbsolutePath>(None))?
                        .0
                        .map(|p| p.0),
                    image_registry: var("HOST_IMAGE_REGISTRY", String::new())?,
                    platform_pod_labels: var("PLATFORM_POD_LABELS", Labels::default())?.0,
                    session_role: var("HOST_SESSION_ROLE", RoleName(SESSION_ROLE.to_owned()))?.0,
                },
                ports: PortRanges {
                    api: var("API_PORT_RANGE", PortRange(30000..=39999))?.0,
                    ingress: var("INGRESS_PORT_RANGE", PortRange(40000..=44999))?.0,
                    ingress_https: var("INGRESS_HTTPS_PORT_RANGE", PortRange(45000..=49999))?.0,
                },
                reconcile_every: Duration::from_secs(var("RECONCILE_EVERY_SECS", 60)?),
                subnet_pool,
            },
            terminals: TerminalSettings {
                image: var("TERMINAL_IMAGE", "ckad-terminal:latest".to_owned())?,
                firewall: var("HOST_FIREWALL", FirewallMode::Iptables)?,
                egress_probe_target: egress_probe_target(subnet_pool)?,
            },
            sessions: SessionSettings {
                ttl: Duration::from_secs(60 * var("SESSION_TTL_MINUTES", 60u64)?),
                max_concurrent: var("MAX_CONCURRENT_SESSIONS", 6)?,
                warnings: [10, 5, 1].map(|m| Duration::from_secs(60 * m)).to_vec(),
                sweep_every: Duration::from_secs(var("SWEEP_EVERY_SECS", 30)?),
                pool: PoolSettings {
                    // A lite member costs ~260 MiB; a kind one ~500 MiB and a minute of CPU to
                    // make, so kind's pool is the operator's choice.
                    size: var("WARM_POOL_SIZE", default_pool_size(provider))?,
                    max_age: Duration::from_secs(60 * var("WARM_POOL_MAX_AGE_MINUTES", 60u64)?),
                },
            },
            tasks_dir: path_var("TASKS_DIR", "tasks")?,
            admin_emails: var("ADMIN_EMAILS", EmailList::default())?.0,
            auth: AuthSettings {
                secret: jwt_secret()?,
                email: email_provider(&public_origin)?,
                google: google(&public_origin)?,
            },
            http: HttpSettings {
                public_origin,
                trusted_proxies: var("TRUSTED_PROXIES", 0)?,
                auth_per_minute: var("RATE_LIMIT_AUTH_PER_MINUTE", 10)?,
                api_per_minute: var("RATE_LIMIT_API_PER_MINUTE", 100)?,
            },
            billing: billing()?,
            replays: ReplaySettings {
                practice: var("REPLAY_PRACTICE", true)?,
                retention: Duration::from_secs(24 * 3600 * var("REPLAY_RETENTION_DAYS", 30u64)?),
                max_bytes: 1024 * 1024 * var("REPLAY_MAX_MIB", 8u64)?,
            },
        })
    }
}

/// `WARM_POOL_SIZE` when unset: two members for `lite`, none for `kind` and `kubernetes`, whose
/// members would hold the host's memory. On `kubernetes` a pool works (tests/it/kube_provider.rs:
/// a claimed start in 0.09-0.26 s against 22.3-22.5 s cold) but each member holds ~510 MiB of
/// the host's nodes while it waits, so the operator sizes it.
fn default_pool_size(provider: ProviderKind) -> usize {
    match provider {
        ProviderKind::Lite => 2,
        ProviderKind::Kind | ProviderKind::Kubernetes => 0,
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

fn egress_probe_target(pool: SubnetPool) -> Result<Option<ProbeTarget>, ConfigError> {
    let target = var("EGRESS_PROBE_TARGET", Optional::<ProbeTarget>(None))?.0;
    target.map(|t| outside_the_pool(t, pool)).transpose()
}

/// An address inside the pool is one the rules let sessions reach: it would prove nothing.
fn outside_the_pool(target: ProbeTarget, pool: SubnetPool) -> Result<ProbeTarget, ConfigError> {
    if pool.net().contains(target.addr().ip()) {
        return Err(ConfigError::Invalid {
            name: "EGRESS_PROBE_TARGET",
            value: target.to_string(),
            reason: format!("it is inside SESSION_SUBNET_POOL ({pool}), which sessions may reach"),
        });
    }
    Ok(target)
}

fn platform_ports(listening: u16, public_origin: &str) -> Vec<u16> {
    let public = public_origin.parse::<axum::http::Uri>().ok().map(|uri| {
        let default = if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        uri.port_u16().unwrap_or(default)
    });
    let mut ports: Vec<u16> = [Some(listening), public].into_iter().flatten().collect();
    ports.dedup();
    ports
}

/// `scheme://host[:port]` of a URL.
fn public_origin(url: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: "PUBLIC_URL",
        value: url.into(),
        reason: reason.into(),
    };
    let uri: axum::http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme @ ("http" | "https")), Some(authority)) => Ok(format!("{scheme}://{authority}")),
        _ => Err(invalid("expected http:// or https:// and a host")),
    }
}

/// Google's endpoints by default; each can point at another OpenID Connect provider (tests do).
fn google(public_origin: &str) -> Result<Option<GoogleSettings>, ConfigError> {
    let Some(client_id) = var("GOOGLE_CLIENT_ID", Optional::<String>(None))?.0 else {
        return Ok(None);
    };
    Ok(Some(GoogleSettings {
        client_id,
        client_secret: secret("GOOGLE_CLIENT_SECRET")?.unwrap_or_default(),
        auth_url: var(
            "GOOGLE_AUTH_URL",
            "https://accounts.google.com/o/oauth2/v2/auth".to_owned(),
        )?,
        token_url: var(
            "GOOGLE_TOKEN_URL",
            "https://oauth2.googleapis.com/token".to_owned(),
        )?,
        jwks_url: var(
            "GOOGLE_JWKS_URL",
            "https://www.googleapis.com/oauth2/v3/certs".to_owned(),
        )?,
        issuer: var("GOOGLE_ISSUER", "https://accounts.google.com".to_owned())?,
        redirect_url: format!("{public_origin}/api/auth/google/callback"),
    }))
}

/// Payments (Stripe) and the plans; see [`StripeSettings::from_values`].
fn billing() -> Result<BillingSettings, ConfigError> {
    let stripe = StripeSettings::from_values(
        secret("STRIPE_SECRET_KEY")?,
        secret("STRIPE_WEBHOOK_SECRET")?,
        var("STRIPE_API_BASE", "https://api.stripe.com".to_owned())?,
    )
    .map_err(|(name, reason)| ConfigError::Invalid {
        name,
        value: "<redacted>".into(),
        reason,
    })?;
    let pass_types = match var("PASS_TYPES_FILE", Optional::<AbsolutePath>(None))?.0 {
        Some(path) => Some(load_pass_types(&path.0).map_err(|reason| ConfigError::Invalid {
            name: "PASS_TYPES_FILE",
            value: path.0.display().to_string(),
            reason,
        })?),
        None => None,
    };
    Ok(BillingSettings { stripe, pass_types })
}

fn jwt_secret() -> Result<SecretString, ConfigError> {
    match secret("JWT_SECRET")? {
        Some(secret) if secret.expose_secret().len() >= 32 => Ok(secret),
        Some(_) => Err(ConfigError::Invalid {
            name: "JWT_SECRET",
            value: "<redacted>".into(),
            reason: "use at least 32 random bytes, e.g. `openssl rand -hex 32`".into(),
        }),
        None => {
            use base64::Engine as _;
            use rand::RngCore as _;
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            eprintln!("JWT_SECRET is not set: using a random one, so a restart signs everyone out");
            Ok(SecretString::from(
                base64::engine::general_purpose::STANDARD.encode(bytes),
            ))
        }
    }
}

/// Where codes go. The outbox (the log) on a public https site would strand every learner and
/// put their codes in the log, so it needs the operator to say so (`EMAIL_OUTBOX_ALLOWED`).
fn email_provider(public_origin: &str) -> Result<EmailProvider, ConfigError> {
    match var("EMAIL_PROVIDER", "outbox".to_owned())?.as_str() {
        "outbox" if public_origin.starts_with("https://") && !var("EMAIL_OUTBOX_ALLOWED", false)? => {
            Err(ConfigError::Invalid {
                name: "EMAIL_PROVIDER",
                value: "outbox".into(),
                reason: format!(
                    "{public_origin} is public, but the outbox only writes sign-in codes to the log: \
                     choose `smtp`, `sendgrid` or `resend`, or set EMAIL_OUTBOX_ALLOWED=true if this \
                     site is yours alone"
                ),
            })
        }
        "outbox" => Ok(EmailProvider::Outbox),
        "smtp" => Ok(EmailProvider::Smtp(SmtpSettings {
            host: var("SMTP_HOST", "127.0.0.1".to_owned())?,
            port: var("SMTP_PORT", 587)?,
            security: var("SMTP_SECURITY", SmtpSecurity::StartTls)?,
            username: var("SMTP_USERNAME", Optional::<String>(None))?.0,
            password: secret("SMTP_PASSWORD")?,
            from: var("EMAIL_FROM", "CKAD Practice <noreply@localhost>".to_owned())?,
        })),
        "sendgrid" => mail_api(
            MailApiKind::SendGrid,
            "SENDGRID_API_KEY",
            "SENDGRID_API_URL",
            "https://api.sendgrid.com/v3/mail/send",
        ),
        "resend" => mail_api(
            MailApiKind::Resend,
            "RESEND_API_KEY",
            "RESEND_API_URL",
            "https://api.resend.com/emails",
        ),
        other => Err(ConfigError::Invalid {
            name: "EMAIL_PROVIDER",
            value: other.into(),
            reason: "expected `outbox`, `smtp`, `sendgrid` or `resend`".into(),
        }),
    }
}

/// An HTTP mail API: its key (required) and endpoint variables.
fn mail_api(
    kind: MailApiKind,
    key_name: &'static str,
    url_name: &'static str,
    default_url: &str,
) -> Result<EmailProvider, ConfigError> {
    let key = secret(key_name)?.ok_or_else(|| ConfigError::Invalid {
        name: key_name,
        value: String::new(),
        reason: "required by this EMAIL_PROVIDER".into(),
    })?;
    Ok(EmailProvider::Api(MailApiSettings {
        kind,
        url: var(url_name, default_url.to_owned())?,
        key,
        from: var("EMAIL_FROM", "CKAD Practice <noreply@localhost>".to_owned())?,
    }))
}

/// A path setting, made absolute against the working directory when the settings are loaded:
/// the tools it is handed to run elsewhere (kwokctl gives the state directory to Docker, which
/// reads a relative path as a volume name), so a relative path would mean another place there.
struct AbsolutePath(PathBuf);

impl FromStr for AbsolutePath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        std::path::absolute(s)
            .map(Self)
            .map_err(|e| format!("cannot be made absolute: {e}"))
    }
}

/// A path variable, or `default`, made absolute.
fn path_var(name: &'static str, default: &str) -> Result<PathBuf, ConfigError> {
    let value = var(name, default.to_owned())?;
    match value.parse::<AbsolutePath>() {
        Ok(path) => Ok(path.0),
        Err(reason) => Err(ConfigError::Invalid { name, value, reason }),
    }
}

/// A program: a bare name is looked up on `PATH` when it runs, a path is made absolute.
struct Program(PathBuf);

impl FromStr for Program {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('/') {
            Ok(Self(s.parse::<AbsolutePath>()?.0))
        } else {
            Ok(Self(s.into()))
        }
    }
}

/// `DATABASE_URL`: PostgreSQL (`postgres://`) or SQLite (`sqlite://`, the default), whose
/// relative file is made absolute like the other paths.
fn database_url() -> Result<String, ConfigError> {
    database_url_from(var("DATABASE_URL", "sqlite://data/ckad.db".to_owned())?)
}

fn database_url_from(url: String) -> Result<String, ConfigError> {
    if is_postgres(&url) {
        return Ok(url);
    }
    if !url.starts_with("sqlite:") {
        return Err(ConfigError::Invalid {
            name: "DATABASE_URL",
            value: url,
            reason: "expected a sqlite:// or a postgres:// URL".into(),
        });
    }
    let Some(path) = sqlite_path(&url) else {
        return Ok(url);
    };
    let query = url
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    match path
        .as_os_str()
        .to_str()
        .unwrap_or_default()
        .parse::<AbsolutePath>()
    {
        Ok(path) => Ok(format!("sqlite://{}{query}", path.0.display())),
        Err(reason) => Err(ConfigError::Invalid {
            name: "DATABASE_URL",
            value: url,
            reason,
        }),
    }
}

/// A secret variable, if set: never printed, not even in an error.
fn secret(name: &'static str) -> Result<Option<SecretString>, ConfigError> {
    Ok(var(name, Optional::<String>(None))?.0.map(SecretString::from))
}

/// Kubernetes labels, `key=value` separated by commas.
#[derive(Default)]
struct Labels(std::collections::BTreeMap<String, String>);

impl FromStr for Labels {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = |text: &str| {
            !text.is_empty()
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        };
        s.split(',')
            .map(|pair| match pair.trim().split_once('=') {
                Some((key, value)) if valid(key) && valid(value) => Ok((key.to_owned(), value.to_owned())),
                _ => Err(format!("{pair:?} is not a label (key=value)")),
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// A ClusterRole's name as RBAC's own roles spell theirs (`system:aggregate-to-edit`).
struct RoleName(String);

impl FromStr for RoleName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = (1..=253).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b))
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        valid
            .then(|| Self(s.to_owned()))
            .ok_or_else(|| "expected a ClusterRole's name: lowercase letters, digits, `-`, `.` or `:`".into())
    }
}

/// A variable that may be unset.
struct Optional<T>(Option<T>);

impl<T: FromStr> FromStr for Optional<T> {
    type Err = T::Err;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(|v| Self(Some(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tools run elsewhere (Docker reads a relative bind-mount source as a volume name), so every
    /// path leaves the settings absolute, resolved against the working directory.
    #[test]
    fn relative_paths_are_made_absolute_against_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            "data/state".parse::<AbsolutePath>().unwrap().0,
            cwd.join("data/state")
        );
        assert_eq!(
            "/srv/x".parse::<AbsolutePath>().unwrap().0,
            PathBuf::from("/srv/x")
        );
        assert!("".parse::<AbsolutePath>().is_err());
        assert_eq!("kind".parse::<Program>().unwrap().0, PathBuf::from("kind"));
        assert_eq!("bin/kind".parse::<Program>().unwrap().0, cwd.join("bin/kind"));
    }

    /// The scheme picks the database; a SQLite file is made absolute, a Postgres URL kept as it
    /// is, anything else refused.
    #[test]
    fn the_database_url_selects_sqlite_or_postgres() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            database_url_from("sqlite://data/ckad.db?mode=rwc".into()).unwrap(),
            format!("sqlite://{}?mode=rwc", cwd.join("data/ckad.db").display())
        );
        let postgres = "postgres://ckad@db.internal:5432/ckad?sslmode=require";
        assert_eq!(database_url_from(postgres.into()).unwrap(), postgres);
        let refused = database_url_from("mysql://db/ckad".into())
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with("DATABASE_URL=\"mysql://db/ckad\" is not valid: expected a sqlite://"),
            "{refused}"
        );
    }

    /// Settings are logged at start-up: their secrets must not be.
    #[test]
    fn secrets_never_print() {
        let settings = AuthSettings {
            secret: SecretString::from("hunter2-hunter2"),
            email: EmailProvider::Outbox,
            google: None,
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(settings.secret.expose_secret(), "hunter2-hunter2");
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

    #[test]
    fn the_public_origin_is_scheme_and_authority() {
        assert_eq!(
            public_origin("https://ckad.example.com/some/path").unwrap(),
            "https://ckad.example.com"
        );
        assert_eq!(
            public_origin("http://127.0.0.1:3000").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert!(public_origin("ckad.example.com").is_err());
        assert!(public_origin("ftp://ckad.example.com").is_err());
    }

    #[test]
    fn the_platforms_ports_are_where_it_listens_and_its_public_urls() {
        assert_eq!(platform_ports(3000, "https://ckad.example.com"), [3000, 443]);
        assert_eq!(platform_ports(3000, "http://127.0.0.1:3000"), [3000]);
        assert_eq!(platform_ports(8080, "http://ckad.test:9000"), [8080, 9000]);
    }

    #[test]
    fn an_egress_probe_target_inside_the_session_pool_is_refused() {
        let pool = SubnetPool::default();
        let inside = "10.213.4.1:443".parse().unwrap();
        let error = outside_the_pool(inside, pool).unwrap_err().to_string();
        assert!(
            error.starts_with("EGRESS_PROBE_TARGET=\"10.213.4.1:443\" is not valid: it is inside"),
            "{error}"
        );
        let outside = "203.0.113.7:443".parse().unwrap();
        assert_eq!(outside_the_pool(outside, pool).unwrap(), outside);
    }

    #[test]
    fn port_ranges_are_first_dash_last() {
        assert_eq!("30000-39999".parse(), Ok(PortRange(30000..=39999)));
        assert_eq!("7-7".parse(), Ok(PortRange(7..=7)));
        for bad in ["30000", "9-8", "0-10", "1-70000", "a-b"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_session_role_is_a_cluster_role_name() {
        assert_eq!(
            "ckad-platform-sessions".parse::<RoleName>().unwrap().0,
            "ckad-platform-sessions"
        );
        assert!("system:ckad.sessions".parse::<RoleName>().is_ok());
        for bad in ["Sessions", "-x", ".", "a/b", "a b", &"x".repeat(254)] {
            assert!(bad.parse::<RoleName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn platform_pod_labels_are_key_equals_value_pairs() {
        let labels = "app.kubernetes.io/name=ckad-platform, tier=web"
            .parse::<Labels>()
            .unwrap()
            .0;
        assert_eq!(labels.len(), 2);
        assert_eq!(labels["app.kubernetes.io/name"], "ckad-platform");
        assert_eq!(labels["tier"], "web");
        for bad in ["app", "=web", "app=", "app=a b", "a=b,,c=d"] {
            assert!(bad.parse::<Labels>().is_err(), "{bad}");
        }
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
