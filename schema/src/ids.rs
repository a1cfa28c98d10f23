//! Typed identifiers. Every entity id is a UUID newtype so a tenant id can never be passed where a
//! conversation id is expected. Ids that must be created without coordination (messages) are UUIDv7,
//! ordered by creation time; a conversation id is derived (UUIDv5) from its natural key so every node and
//! every concurrent webhook computes the same id for the same contact on the same connection.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Position of an event in one conversation's event stream: 1, 2, 3, ... with no gaps.
pub type Seq = u64;

macro_rules! entity_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new random, time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The 16 bytes of the id, for building storage keys.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// Rebuild an id from the 16 bytes produced by [`Self::as_bytes`].
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

entity_id!(
    /// A customer of Conversa (a business). Everything is scoped by it.
    TenantId
);
entity_id!(
    /// One channel connection: one WhatsApp number, one Instagram account, one Evolution instance.
    ConnectionId
);
entity_id!(
    /// One conversation (the support ticket) between a tenant's connection and one contact.
    ConversationId
);
entity_id!(
    /// One message, inbound or outbound.
    MessageId
);
entity_id!(
    /// A user of a tenant: agent, supervisor, admin, auditor or bot.
    AgentId
);
entity_id!(
    /// An internal note on a ticket.
    NoteId
);
entity_id!(
    /// A contact: one customer of a tenant, with an address on one or more channels.
    ContactId
);

/// Namespace for deriving conversation ids; never change it, ids on disk depend on it.
const CONVERSATION_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2b9e_8a4d_4c7e_9b3f_1d2a_5e6f_7a80);

impl ConversationId {
    /// The conversation between `connection` and the contact known to the provider as `contact_address`
    /// (a WhatsApp `wa_id`, an Instagram-scoped id, ...). Deterministic, so concurrent webhooks for a new
    /// contact all route to one conversation actor without a lookup race.
    pub fn for_contact(tenant: TenantId, connection: ConnectionId, contact_address: &str) -> Self {
        let mut name = Vec::with_capacity(32 + contact_address.len());
        name.extend_from_slice(tenant.as_bytes());
        name.extend_from_slice(connection.as_bytes());
        name.extend_from_slice(contact_address.as_bytes());
        Self(Uuid::new_v5(&CONVERSATION_NAMESPACE, &name))
    }
}

/// Namespace for deriving the id of a contact created for an address; never change it.
const CONTACT_NAMESPACE: Uuid = Uuid::from_u128(0x2d7e_91c4_5b3a_4f08_a6e1_0c9d_84b2_f317);

impl ContactId {
    /// The contact created for `address_key` (`whatsapp:5511999990000`) when it first wrote:
    /// deterministic, so two conversations of one new customer (two numbers of the tenant) create
    /// one contact. A merge may later move the address to another contact.
    pub fn for_address(tenant: TenantId, address_key: &str) -> Self {
        let mut name = Vec::with_capacity(16 + address_key.len());
        name.extend_from_slice(tenant.as_bytes());
        name.extend_from_slice(address_key.as_bytes());
        Self(Uuid::new_v5(&CONTACT_NAMESPACE, &name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_id_is_stable_per_contact_and_distinct_across_tenants() {
        let (t1, t2, c) = (TenantId::new(), TenantId::new(), ConnectionId::new());
        assert_eq!(
            ConversationId::for_contact(t1, c, "5511999990000"),
            ConversationId::for_contact(t1, c, "5511999990000")
        );
        assert_ne!(
            ConversationId::for_contact(t1, c, "5511999990000"),
            ConversationId::for_contact(t2, c, "5511999990000")
        );
        assert_ne!(
            ConversationId::for_contact(t1, c, "5511999990000"),
            ConversationId::for_contact(t1, c, "5511999990001")
        );
    }

    #[test]
    fn ids_round_trip_through_text_and_bytes() {
        let id = MessageId::new();
        assert_eq!(id.to_string().parse::<MessageId>().ok(), Some(id));
        assert_eq!(MessageId::from_bytes(*id.as_bytes()), id);
    }
}
