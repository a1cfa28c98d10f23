//! What the session providers (Evolution API, Z-API) share: their webhooks carry, besides messages
//! and statuses, the state of the WhatsApp Web session behind the connection (connected, dropped,
//! waiting for a QR code scan), and their addresses are WhatsApp JIDs or bare phone numbers.

use schema::inbound::InboundEvent;
use schema::records::ConnectionStatus;

/// One parsed webhook of a session provider.
#[derive(Debug, Default, PartialEq)]
pub struct SessionWebhook {
    /// The instance the payload says it comes from (Evolution `instance`, Z-API `instanceId`).
    pub instance: Option<String>,
    /// Messages, echoes and statuses, in payload order.
    pub events: Vec<InboundEvent>,
    /// A change of the session's state, if the webhook reports one.
    pub session: Option<SessionChange>,
    /// Parts acknowledged but not stored (presence, chats, contacts, events we do not serve).
    pub ignored: usize,
}

/// What a session webhook says about the session.
#[derive(Debug, PartialEq)]
pub enum SessionChange {
    /// The session's state moved (`connected`, `connecting`, `disconnected`).
    Status(ConnectionStatus),
    /// A QR code to scan: the number must be paired again.
    Qr(String),
}

/// Why a session webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum SessionWebhookError {
    #[error("malformed payload: {0}")]
    Malformed(String),
}

/// The contact address of a JID: the digits of a person (`5511999999999@s.whatsapp.net`), or the
/// whole JID of anything else (a group `…@g.us`, a `…@lid` identity), so replies go back to it.
pub fn address_of_jid(jid: &str) -> String {
    match jid.split_once('@') {
        Some((user, "s.whatsapp.net" | "c.us")) => {
            // Multi-device JIDs carry `:device` after the number.
            user.split(':').next().unwrap_or(user).to_string()
        }
        _ => jid.to_string(),
    }
}

/// The string at `key` of a JSON object, if there is one: both gateways' payloads are read field by
/// field this way, since their shapes vary too much between versions for fixed structs.
pub fn str_at<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(serde_json::Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_jids_become_digits_and_others_stay_whole() {
        assert_eq!(
            address_of_jid("5511988887777@s.whatsapp.net"),
            "5511988887777"
        );
        assert_eq!(
            address_of_jid("5511988887777:12@s.whatsapp.net"),
            "5511988887777"
        );
        assert_eq!(address_of_jid("120363025@g.us"), "120363025@g.us");
        assert_eq!(address_of_jid("5511988887777"), "5511988887777");
    }
}
