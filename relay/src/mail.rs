//! Outgoing e-mail: SMTP through lettre, or the outbox that writes each message
//! as an `.eml` file under `<data dir>/outbox/` (0600). The link a message
//! carries is written to the log only in development mode (`--dev`).
//!
//! A service: it takes the database and its own settings, never the
//! application state.

use std::path::PathBuf;
use std::sync::Arc;

use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use uuid::Uuid;

use crate::config::Config;
use crate::db::Db;
use crate::error::ApiResult;
use crate::tokens::{Purpose, VERIFY_TTL_MS, create_email_token};

enum Transport {
    Outbox(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Where e-mail goes, from whom, and the base of the links it carries.
pub struct Mailer {
    transport: Transport,
    from: String,
    public_url: String,
    /// Development mode: links are logged.
    log_links: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid SMTP URL: {0}")]
    Url(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("cannot send: {0}")]
    Send(String),
}

impl Mailer {
    pub fn from_config(config: &Config) -> Result<Self, MailError> {
        let transport = match &config.smtp_url {
            None => Transport::Outbox(config.data_dir.join("outbox")),
            Some(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                .map(|b| Transport::Smtp(b.build()))
                .map_err(|e| MailError::Url(e.to_string()))?,
        };
        Ok(Self {
            transport,
            from: config.smtp_from.clone(),
            public_url: config.public_url(),
            log_links: config.dev,
        })
    }

    /// The base of e-mailed links.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Sends one plain-text message. `link` is logged in development mode only.
    pub async fn send(
        &self,
        to: &str,
        subject: &str,
        body: String,
        link: &str,
    ) -> Result<(), MailError> {
        let msg = Message::builder()
            .from(
                self.from
                    .parse()
                    .map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))?,
            )
            .to(to
                .parse()
                .map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        match &self.transport {
            Transport::Outbox(dir) => {
                crate::fsutil::create_private_dir(dir)
                    .map_err(|e| MailError::Send(e.to_string()))?;
                let path = dir.join(format!("{}.eml", uuid::Uuid::now_v7()));
                crate::fsutil::write_private_file(&path, &msg.formatted())
                    .map_err(|e| MailError::Send(e.to_string()))?;
                if self.log_links {
                    tracing::info!(to, subject, path = %path.display(), link, "e-mail written to the outbox");
                } else {
                    tracing::info!(path = %path.display(), "e-mail written to the outbox");
                }
                Ok(())
            }
            Transport::Smtp(t) => t
                .send(msg)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
        }
    }
}

/// Sends an e-mail in the background: the answer does not wait for (or reveal) it.
pub fn send_later(
    mailer: &Arc<Mailer>,
    to: String,
    subject: &'static str,
    body: String,
    link: String,
) {
    let mailer = Arc::clone(mailer);
    tokio::spawn(async move {
        if let Err(e) = mailer.send(&to, subject, body, &link).await {
            tracing::error!(error = %e, subject, "cannot send e-mail");
        }
    });
}

/// Sends `user` a link to verify `email` (a fresh single-use token).
pub async fn send_verification(
    mailer: &Arc<Mailer>,
    db: &Db,
    user: Uuid,
    email: &str,
) -> ApiResult<()> {
    let token = create_email_token(db, user, email, Purpose::Verify, VERIFY_TTL_MS).await?;
    let link = format!("{}/verify-email#token={token}", mailer.public_url());
    let body = format!(
        "Welcome to Sotto.\n\nOpen this link within 24 hours to verify your e-mail address:\n\n{link}\n\n\
         If you did not create an account, ignore this message.\n"
    );
    send_later(
        mailer,
        email.to_string(),
        "Verify your e-mail address",
        body,
        link,
    );
    Ok(())
}
