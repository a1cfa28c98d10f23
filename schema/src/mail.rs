//! Email: the SMTP account a tenant sends through (its own, or the platform's), and the messages
//! Conversa sends (invitations, password resets; later alerts and reports). The account's password is
//! sealed by the store like a connection's secrets and never served back.

use serde::{Deserialize, Serialize};

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain SMTP, upgraded with STARTTLS (required): port 587.
    #[default]
    StartTls,
    /// TLS from the first byte: port 465.
    Tls,
    /// No encryption: a relay on the same host or network only.
    None,
}

/// An SMTP account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpAccount {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub security: SmtpSecurity,
    pub username: Option<String>,
    /// Sealed at rest; never served back.
    pub password: Option<String>,
    /// The sender's address (`no-reply@example.com`).
    pub from_email: String,
    pub from_name: Option<String>,
}

impl std::fmt::Debug for SmtpAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpAccount")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from_email", &self.from_email)
            .finish()
    }
}

impl SmtpAccount {
    /// What is wrong with the account, if anything.
    pub fn problem(&self) -> Option<&'static str> {
        let host_ok = !self.host.is_empty()
            && self.host.len() <= 253
            && self
                .host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !host_ok {
            return Some("host is a host name or address");
        }
        if self.port == 0 {
            return Some("port is 1 to 65535");
        }
        if crate::account::normalized_email(&self.from_email).is_none() {
            return Some("from_email is not an address");
        }
        let long = |v: &Option<String>| v.as_ref().is_some_and(|v| v.len() > 256);
        if long(&self.username) || long(&self.password) || long(&self.from_name) {
            return Some("username, password and from_name have at most 256 bytes");
        }
        if self
            .from_name
            .as_ref()
            .is_some_and(|n| n.chars().any(char::is_control))
        {
            return Some("from_name has no control characters");
        }
        let loopback =
            matches!(self.host.as_str(), "localhost" | "::1") || self.host.starts_with("127.");
        if self.security == SmtpSecurity::None && self.password.is_some() && !loopback {
            return Some("a password goes only over TLS (security start_tls or tls) off this host");
        }
        None
    }
}

/// An account as served: everything but the password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SmtpAccountView {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub has_password: bool,
    pub from_email: String,
    pub from_name: Option<String>,
}

impl From<&SmtpAccount> for SmtpAccountView {
    fn from(account: &SmtpAccount) -> Self {
        Self {
            host: account.host.clone(),
            port: account.port,
            security: account.security,
            username: account.username.clone(),
            has_password: account.password.is_some(),
            from_email: account.from_email.clone(),
            from_name: account.from_name.clone(),
        }
    }
}

/// One email to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    /// Plain text.
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> SmtpAccount {
        SmtpAccount {
            host: "smtp.example.com".into(),
            port: 587,
            security: SmtpSecurity::StartTls,
            username: Some("user".into()),
            password: Some("secret".into()),
            from_email: "no-reply@example.com".into(),
            from_name: Some("Loja".into()),
        }
    }

    #[test]
    fn an_account_is_checked_before_it_is_kept() {
        assert_eq!(account().problem(), None);
        let bad_host = SmtpAccount {
            host: "smtp.example.com\r\nRCPT".into(),
            ..account()
        };
        assert!(bad_host.problem().is_some());
        let bad_from = SmtpAccount {
            from_email: "nobody".into(),
            ..account()
        };
        assert!(bad_from.problem().is_some());
        let header_injection = SmtpAccount {
            from_name: Some("Loja\r\nBcc: x@y.z".into()),
            ..account()
        };
        assert!(header_injection.problem().is_some());
    }

    #[test]
    fn the_served_view_never_carries_the_password() {
        let view = SmtpAccountView::from(&account());
        assert!(view.has_password);
        let json = serde_json::to_string(&view).unwrap_or_default();
        assert!(!json.contains("secret"));
    }
}
