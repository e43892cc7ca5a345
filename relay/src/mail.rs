//! Outgoing e-mail: SMTP through lettre, or the development outbox that writes
//! each message as an `.eml` file under `<data dir>/outbox/` and logs its link.

use std::path::PathBuf;

use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use uuid::Uuid;

use crate::config::Config;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::tokens::{Purpose, VERIFY_TTL_MS, create_email_token};

pub enum Mailer {
    Outbox(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
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
        match &config.smtp_url {
            None => Ok(Mailer::Outbox(config.data_dir.join("outbox"))),
            Some(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                .map(|b| Mailer::Smtp(b.build()))
                .map_err(|e| MailError::Url(e.to_string())),
        }
    }

    /// Sends one plain-text message. `link` is logged for the outbox (dev) only.
    pub async fn send(
        &self,
        from: &str,
        to: &str,
        subject: &str,
        body: String,
        link: &str,
    ) -> Result<(), MailError> {
        let msg = Message::builder()
            .from(
                from.parse()
                    .map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))?,
            )
            .to(to
                .parse()
                .map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        match self {
            Mailer::Outbox(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))?;
                let path = dir.join(format!("{}.eml", uuid::Uuid::now_v7()));
                tokio::fs::write(&path, msg.formatted())
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))?;
                tracing::info!(to, subject, path = %path.display(), link, "e-mail written to the development outbox");
                Ok(())
            }
            Mailer::Smtp(t) => t
                .send(msg)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
        }
    }
}

/// Sends an e-mail in the background: the answer does not wait for (or reveal) it.
pub fn send_later(state: &AppState, to: String, subject: &'static str, body: String, link: String) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = state
            .mailer
            .send(&state.config.smtp_from, &to, subject, body, &link)
            .await
        {
            tracing::error!(error = %e, subject, "cannot send e-mail");
        }
    });
}

pub async fn send_verification(state: &AppState, user: Uuid, email: &str) -> ApiResult<()> {
    let token = create_email_token(state, user, email, Purpose::Verify, VERIFY_TTL_MS).await?;
    let link = format!("{}/verify-email#token={token}", state.config.public_url());
    let body = format!(
        "Welcome to Sotto.\n\nOpen this link within 24 hours to verify your e-mail address:\n\n{link}\n\n\
         If you did not create an account, ignore this message.\n"
    );
    send_later(
        state,
        email.to_string(),
        "Verify your e-mail address",
        body,
        link,
    );
    Ok(())
}
