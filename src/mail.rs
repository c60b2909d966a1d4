//! Sending sign-in codes: through SMTP (lettre), the SendGrid or Resend HTTP APIs, or, for
//! development, into the log.

use lettre::{
    message::Mailbox, transport::smtp::authentication::Credentials, AsyncSmtpTransport, AsyncTransport as _,
    Message, Tokio1Executor,
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::domain::Email;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the message could not be built: {0}")]
    Build(String),
    #[error("the mail server refused or could not be reached: {0}")]
    Send(String),
}

/// Delivers a sign-in code.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    async fn send_code(&self, to: &Email, code: &str) -> Result<(), MailError>;
}

/// The development outbox: the code goes to the log, nowhere else.
pub struct DevOutbox;

#[async_trait::async_trait]
impl Mailer for DevOutbox {
    async fn send_code(&self, to: &Email, code: &str) -> Result<(), MailError> {
        tracing::info!(to = %to, code, "development outbox: sign-in code");
        Ok(())
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain text: only for a relay on the same host.
    None,
    StartTls,
    Tls,
}

impl std::str::FromStr for SmtpSecurity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            _ => Err("expected `none`, `starttls` or `tls`".into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from: String,
}

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    pub fn new(settings: &SmtpSettings) -> Result<Self, MailError> {
        let builder = match settings.security {
            SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &settings.host,
            )),
            SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host),
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host),
        }
        .map_err(|e| MailError::Build(e.to_string()))?
        .port(settings.port);
        let builder = match (&settings.username, &settings.password) {
            (Some(user), Some(password)) => builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            )),
            _ => builder,
        };
        let from = settings
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait::async_trait]
impl Mailer for Smtp {
    async fn send_code(&self, to: &Email, code: &str) -> Result<(), MailError> {
        let to: Mailbox = to
            .as_str()
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject(code))
            .body(body(code))
            .map_err(|e| MailError::Build(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| MailError::Send(e.to_string()))
    }
}

fn subject(code: &str) -> String {
    format!("{code} is your CKAD Practice sign-in code")
}

fn body(code: &str) -> String {
    format!("Your sign-in code is {code}\n\nIt works once, for 10 minutes. If you did not ask for it, ignore this mail.\n")
}

/// Which HTTP mail API, and so which request shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailApiKind {
    SendGrid,
    Resend,
}

#[derive(Debug, Clone)]
pub struct MailApiSettings {
    pub kind: MailApiKind,
    /// The send endpoint (SendGrid's or Resend's by default).
    pub url: String,
    pub key: SecretString,
    pub from: String,
}

/// SendGrid's `v3/mail/send` or Resend's `emails`, with a bearer key.
pub struct MailApi {
    settings: MailApiSettings,
    http: reqwest::Client,
}

impl MailApi {
    pub fn new(settings: MailApiSettings) -> Result<Self, MailError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| MailError::Build(e.to_string()))?;
        Ok(Self { settings, http })
    }

    fn payload(&self, to: &Email, code: &str) -> serde_json::Value {
        let (from, to) = (&self.settings.from, to.as_str());
        match self.settings.kind {
            MailApiKind::SendGrid => serde_json::json!({
                "personalizations": [{ "to": [{ "email": to }] }],
                "from": { "email": from },
                "subject": subject(code),
                "content": [{ "type": "text/plain", "value": body(code) }],
            }),
            MailApiKind::Resend => serde_json::json!({
                "from": from,
                "to": [to],
                "subject": subject(code),
                "text": body(code),
            }),
        }
    }
}

#[async_trait::async_trait]
impl Mailer for MailApi {
    async fn send_code(&self, to: &Email, code: &str) -> Result<(), MailError> {
        let response = self
            .http
            .post(&self.settings.url)
            .bearer_auth(self.settings.key.expose_secret())
            .json(&self.payload(to, code))
            .send()
            .await
            .map_err(|e| MailError::Send(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let detail = response.text().await.unwrap_or_default();
        Err(MailError::Send(format!(
            "{:?} answered {status}: {}",
            self.settings.kind,
            detail.chars().take(200).collect::<String>()
        )))
    }
}
