//! Sending email over SMTP with lettre (its async transport on tokio, rustls for STARTTLS and TLS):
//! each message through the tenant's own account when it has one, else the platform's
//! (`GatewayConfig::smtp`). One connection per message (invitations and resets are rare), bounded by
//! a timeout. The messages themselves are here too, in Portuguese and English.

use crate::AppState;
use crate::error::ApiError;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use schema::TenantId;
use schema::mail::{Mail, SmtpAccount, SmtpSecurity};
use std::time::Duration;

/// Longest each step of handing over one message may take (connect, each command and reply).
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a message was not handed over.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("an address is not valid: {0}")]
    Address(String),
    #[error("the SMTP server refused or failed: {0}")]
    Smtp(String),
}

/// The account the tenant's mail goes through: its own, else the platform's; `None` when neither
/// is configured.
pub async fn account_for(
    state: &AppState,
    tenant: TenantId,
) -> Result<Option<SmtpAccount>, ApiError> {
    match state.store.smtp_account(tenant).await? {
        Some(own) => Ok(Some(own)),
        None => Ok(state.config.smtp.clone()),
    }
}

/// Hands one message to the account's server.
pub async fn send(account: &SmtpAccount, mail: &Mail) -> Result<(), MailError> {
    let address = |raw: &str| {
        raw.parse::<lettre::Address>()
            .map_err(|e| MailError::Address(e.to_string()))
    };
    let from = Mailbox::new(account.from_name.clone(), address(&account.from_email)?);
    let to = Mailbox::new(None, address(&mail.to)?);
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(|e| MailError::Address(e.to_string()))?;
    let smtp = |e: lettre::transport::smtp::Error| MailError::Smtp(e.to_string());
    let builder = match account.security {
        SmtpSecurity::None => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(account.host.as_str())
        }
        SmtpSecurity::StartTls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&account.host).map_err(smtp)?
        }
        SmtpSecurity::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&account.host).map_err(smtp)?
        }
    };
    let mut builder = builder.port(account.port).timeout(Some(SEND_TIMEOUT));
    if let (Some(user), Some(password)) = (&account.username, &account.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let outcome = builder.build().send(message).await.map(drop).map_err(smtp);
    let label = if outcome.is_ok() { "sent" } else { "failed" };
    metrics::counter!("conversa_mail_total", "outcome" => label).increment(1);
    outcome
}

/// The invitation to a new user.
pub fn invitation(to: &str, tenant_name: &str, link: &str) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: format!("Convite para {tenant_name} / Invitation to {tenant_name}"),
        body: format!(
            "Olá!\n\nVocê foi convidado(a) para atender os clientes de {tenant_name} no Conversa.\n\
             Crie sua senha em até 7 dias:\n{link}\n\n\
             Hello!\n\nYou have been invited to serve {tenant_name}'s customers on Conversa.\n\
             Set your password within 7 days:\n{link}\n"
        ),
    }
}

/// A password reset.
pub fn password_reset(to: &str, link: &str) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Redefinição de senha / Password reset".into(),
        body: format!(
            "Alguém pediu para redefinir a sua senha do Conversa. Se foi você, use este link em até \
             1 hora:\n{link}\nSe não foi, ignore esta mensagem.\n\n\
             Someone asked to reset your Conversa password. If it was you, use this link within \
             1 hour:\n{link}\nIf not, ignore this message.\n"
        ),
    }
}
