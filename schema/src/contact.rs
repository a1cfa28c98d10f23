//! Contacts: a tenant's customers, each with addresses on one or more channels (a WhatsApp number, an
//! Instagram- or page-scoped id), a name, an email, custom fields, tags and notes. Pure rules, no I/O:
//! what a valid contact is, the words it is found by, and what merging two contacts makes.
//!
//! A conversation belongs to the contact that holds its address: conversation ids derive from
//! (connection, address), so a contact's conversations across connections are found from its
//! addresses and the tenant's connections, with no index to keep in step, and a merge moves
//! conversations by moving addresses.
//!
//! **Architecture Invariant:** an address (channel and id) belongs to at most one contact of a tenant;
//! the stores refuse a write that would give it to a second one.

use crate::connection::Provider;
use crate::ids::{AgentId, ContactId, TenantId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

/// Most addresses of one contact.
pub const MAX_ADDRESSES: usize = 16;
/// Most tags of one contact.
pub const MAX_TAGS: usize = 32;
/// Most custom fields of one contact.
pub const MAX_CUSTOM_FIELDS: usize = 32;
/// Most notes kept on one contact (a merge keeps the newest).
pub const MAX_NOTES: usize = 50;
/// Longest note, name or custom field value, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Most words of a name a contact is found by.
pub const MAX_NAME_WORDS: usize = 16;
/// Shortest search, in characters (after folding).
pub const MIN_SEARCH_CHARS: usize = 2;

/// The channel an address lives on: WhatsApp numbers are the same on the Cloud API, Evolution and
/// Z-API, so one customer's number on two kinds of connection is one address.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Whatsapp,
    Instagram,
    Messenger,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Whatsapp => "whatsapp",
            Channel::Instagram => "instagram",
            Channel::Messenger => "messenger",
        }
    }

    /// The channel of a provider's connections.
    pub fn of(provider: Provider) -> Self {
        match provider {
            Provider::WhatsappCloud | Provider::Evolution | Provider::Zapi => Channel::Whatsapp,
            Provider::Instagram => Channel::Instagram,
            Provider::Messenger => Channel::Messenger,
        }
    }
}

/// One address of a contact: where a channel reaches them.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct ContactAddress {
    pub channel: Channel,
    /// WhatsApp: the number in digits (`wa_id`); Instagram/Messenger: the scoped id.
    pub address: String,
}

impl ContactAddress {
    pub fn new(channel: Channel, address: impl Into<String>) -> Self {
        Self {
            channel,
            address: address.into(),
        }
    }

    /// The stored key: `whatsapp:5511999990000`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.channel.as_str(), self.address)
    }

    /// An address as providers send it (a WhatsApp number, a business-scoped user id, a group or
    /// linked-device id): 1 to 128 characters, no space or control character. What a stored contact
    /// holds; [`Self::validate`] is the stricter rule for addresses people type.
    pub fn validate_stored(&self) -> Result<(), String> {
        let ok = (1..=128).contains(&self.address.chars().count())
            && !self
                .address
                .chars()
                .any(|c| c.is_whitespace() || c.is_control());
        match ok {
            true => Ok(()),
            false => Err(format!("address {:?} is not an address", self.address)),
        }
    }

    /// A WhatsApp number is 8 to 15 digits; a scoped id 1 to 64 of `0-9 A-Z a-z _ - .`.
    pub fn validate(&self) -> Result<(), String> {
        let ok = match self.channel {
            Channel::Whatsapp => {
                (8..=15).contains(&self.address.len())
                    && self.address.bytes().all(|b| b.is_ascii_digit())
            }
            Channel::Instagram | Channel::Messenger => {
                (1..=64).contains(&self.address.len())
                    && self
                        .address
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            }
        };
        match ok {
            true => Ok(()),
            false => Err(format!(
                "address {:?} is not a valid {} address",
                self.address,
                self.channel.as_str()
            )),
        }
    }
}

/// A note on a contact (internal, never sent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContactNote {
    pub id: Uuid,
    pub body: String,
    pub by: Option<AgentId>,
    pub at: Timestamp,
}

/// A contact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContactRecord {
    pub id: ContactId,
    pub tenant_id: TenantId,
    pub name: Option<String>,
    pub email: Option<String>,
    pub addresses: Vec<ContactAddress>,
    /// Scalar values (text, number, boolean) by key (`a-z 0-9 _`, up to 64).
    #[serde(default)]
    pub custom_fields: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub notes: Vec<ContactNote>,
    /// Grows by one with every stored change: a write names the version it read, and is refused when
    /// another write came first.
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ContactRecord {
    /// The contact created for an address the first time it writes (or is written to).
    pub fn for_address(
        tenant: TenantId,
        address: ContactAddress,
        name: Option<String>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: ContactId::for_address(tenant, &address.key()),
            tenant_id: tenant,
            name: name
                .map(|n| n.trim().chars().take(MAX_TEXT_CHARS).collect::<String>())
                .filter(|n| !n.is_empty()),
            email: None,
            addresses: vec![address],
            custom_fields: BTreeMap::new(),
            tags: Vec::new(),
            notes: Vec::new(),
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// Checks every field against its bounds; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(name) = &self.name
            && (name.trim().is_empty() || name.chars().count() > MAX_TEXT_CHARS)
        {
            return Err(format!("name must have 1 to {MAX_TEXT_CHARS} characters"));
        }
        if let Some(email) = &self.email
            && !valid_email(email)
        {
            return Err(format!("email {email:?} is not an address"));
        }
        if self.addresses.len() > MAX_ADDRESSES {
            return Err(format!("a contact has at most {MAX_ADDRESSES} addresses"));
        }
        let mut seen = BTreeSet::new();
        for address in &self.addresses {
            address.validate_stored()?;
            if !seen.insert(address) {
                return Err(format!("address {} is listed twice", address.key()));
            }
        }
        if self.tags.len() > MAX_TAGS {
            return Err(format!("a contact has at most {MAX_TAGS} tags"));
        }
        for tag in &self.tags {
            crate::helpdesk::change::tag(tag).map_err(|e| e.to_string())?;
        }
        if self.custom_fields.len() > MAX_CUSTOM_FIELDS {
            return Err(format!(
                "a contact has at most {MAX_CUSTOM_FIELDS} custom fields"
            ));
        }
        for (key, value) in &self.custom_fields {
            let key_ok = (1..=64).contains(&key.len())
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !key_ok {
                return Err(format!(
                    "custom field key {key:?} must be 1 to 64 of a-z, 0-9 or '_'"
                ));
            }
            let value_ok = match value {
                serde_json::Value::String(s) => s.chars().count() <= MAX_TEXT_CHARS,
                serde_json::Value::Number(_) | serde_json::Value::Bool(_) => true,
                _ => false,
            };
            if !value_ok {
                return Err(format!(
                    "custom field {key:?} must be a text of at most {MAX_TEXT_CHARS} characters, a number or a boolean"
                ));
            }
        }
        if self.notes.len() > MAX_NOTES {
            return Err(format!("a contact keeps at most {MAX_NOTES} notes"));
        }
        for note in &self.notes {
            let chars = note.body.trim().chars().count();
            if chars == 0 || chars > MAX_TEXT_CHARS {
                return Err(format!("a note has 1 to {MAX_TEXT_CHARS} characters"));
            }
        }
        Ok(())
    }

    /// The words the contact is found by: each word of the name, the email and its local part, and
    /// each address (for a WhatsApp number also its last 8 to 11 digits, the number as people type
    /// it without the country code, or the area code). Folded: lower case, no accents.
    pub fn search_terms(&self) -> BTreeSet<String> {
        let mut terms = BTreeSet::new();
        if let Some(name) = &self.name {
            terms.extend(words(name).take(MAX_NAME_WORDS));
        }
        if let Some(email) = &self.email {
            let email = fold(email);
            if let Some((local, _)) = email.split_once('@') {
                terms.insert(local.to_string());
            }
            terms.insert(email);
        }
        for address in &self.addresses {
            let folded = fold(&address.address);
            if address.channel == Channel::Whatsapp && folded.bytes().all(|b| b.is_ascii_digit()) {
                for tail in [8, 9, 10, 11] {
                    if folded.len() > tail {
                        terms.insert(folded[folded.len() - tail..].to_string());
                    }
                }
            }
            terms.insert(folded);
        }
        terms.retain(|t| t.chars().count() >= MIN_SEARCH_CHARS && t.len() <= 256);
        terms
    }

    /// Whether every word of `query` starts one of the contact's search terms.
    pub fn matches(&self, query: &[String]) -> bool {
        let terms = self.search_terms();
        query
            .iter()
            .all(|word| terms.iter().any(|term| term.starts_with(word.as_str())))
    }
}

/// A search as words to match, folded; `None` when no word has at least [`MIN_SEARCH_CHARS`]
/// characters. A search without letters is a phone number, its digits one word (`(11) 99999-0000`
/// → `11999990000`).
pub fn query_words(query: &str) -> Option<Vec<String>> {
    if !query.chars().any(char::is_alphabetic) {
        let digits: String = query.chars().filter(char::is_ascii_digit).collect();
        return (digits.len() >= MIN_SEARCH_CHARS).then(|| vec![digits]);
    }
    let mut out: Vec<String> = Vec::new();
    for word in query.split_whitespace().take(8) {
        let folded = fold(word);
        // An email stays whole (it is stored whole); other words split like stored names do
        // (`Silva-Santos`, `D'Ávila`).
        let phone_like = !folded.chars().any(char::is_alphabetic);
        let parts: Vec<String> = if folded.contains('@') {
            vec![folded]
        } else if phone_like {
            vec![folded.chars().filter(char::is_ascii_digit).collect()]
        } else {
            words(&folded).collect()
        };
        for word in parts {
            if word.chars().count() >= MIN_SEARCH_CHARS && !out.contains(&word) {
                out.push(word);
            }
        }
    }
    // The longest word narrows the index scan most.
    out.sort_by_key(|w| std::cmp::Reverse(w.len()));
    (!out.is_empty()).then_some(out)
}

/// Lower case without accents (`João` → `joao`).
pub fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(fold)
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

/// `from` merged into `into`: `into` keeps its own name, email and custom fields and takes what only
/// `from` has; addresses, tags and notes are joined (the newest [`MAX_NOTES`] notes kept). Refused when
/// the joined addresses or tags pass their bounds.
pub fn merge(
    into: &ContactRecord,
    from: &ContactRecord,
    now: Timestamp,
) -> Result<ContactRecord, String> {
    if into.id == from.id {
        return Err("a contact cannot be merged into itself".into());
    }
    let mut merged = into.clone();
    if merged.name.is_none() {
        merged.name = from.name.clone();
    }
    if merged.email.is_none() {
        merged.email = from.email.clone();
    }
    for address in &from.addresses {
        if !merged.addresses.contains(address) {
            merged.addresses.push(address.clone());
        }
    }
    for tag in &from.tags {
        if !merged.tags.contains(tag) {
            merged.tags.push(tag.clone());
        }
    }
    for (key, value) in &from.custom_fields {
        merged
            .custom_fields
            .entry(key.clone())
            .or_insert_with(|| value.clone());
    }
    merged.notes.extend(from.notes.iter().cloned());
    merged.notes.sort_by_key(|n| n.at);
    let excess = merged.notes.len().saturating_sub(MAX_NOTES);
    merged.notes.drain(..excess);
    merged.version = into.version + 1;
    merged.updated_at = now;
    merged.validate()?;
    Ok(merged)
}

/// One contact's change in an atomic [`ContactStore::write_contacts`]: `before` is the version it was
/// read at (`None`: a new contact), `after` what to store (`None`: remove it).
///
/// [`ContactStore::write_contacts`]: crate::store::ContactStore::write_contacts
#[derive(Clone, Debug, PartialEq)]
pub struct ContactWrite {
    pub before: Option<ContactRecord>,
    pub after: Option<ContactRecord>,
}

impl ContactWrite {
    /// The contact's id.
    pub fn id(&self) -> Option<ContactId> {
        self.after.as_ref().or(self.before.as_ref()).map(|c| c.id)
    }

    /// Addresses the write gives the contact (claims) and takes from it (releases).
    pub fn address_changes(&self) -> (Vec<&ContactAddress>, Vec<&ContactAddress>) {
        let before: &[ContactAddress] = self.before.as_ref().map_or(&[], |c| &c.addresses);
        let after: &[ContactAddress] = self.after.as_ref().map_or(&[], |c| &c.addresses);
        let claims = after.iter().filter(|a| !before.contains(a)).collect();
        let releases = before.iter().filter(|a| !after.contains(a)).collect();
        (claims, releases)
    }

    /// Search terms the write adds and removes.
    pub fn term_changes(&self) -> (Vec<String>, Vec<String>) {
        let before = self
            .before
            .as_ref()
            .map(ContactRecord::search_terms)
            .unwrap_or_default();
        let after = self
            .after
            .as_ref()
            .map(ContactRecord::search_terms)
            .unwrap_or_default();
        (
            after.difference(&before).cloned().collect(),
            before.difference(&after).cloned().collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(name: &str, number: &str) -> ContactRecord {
        ContactRecord::for_address(
            TenantId::new(),
            ContactAddress::new(Channel::Whatsapp, number),
            Some(name.into()),
            Timestamp::UNIX_EPOCH,
        )
    }

    #[test]
    fn a_contact_is_found_by_folded_name_words_email_and_phone_tails() {
        let mut c = contact("João da Silva", "5511999990000");
        c.email = Some("Joao.Silva@Example.com".into());
        let terms = c.search_terms();
        for expected in [
            "joao",
            "silva",
            "da",
            "joao.silva@example.com",
            "joao.silva",
            "5511999990000",
            "999990000",
            "99990000",
        ] {
            assert!(
                terms.contains(expected),
                "{expected} missing from {terms:?}"
            );
        }
        assert!(c.matches(&query_words("JOÃO sil").unwrap()));
        assert!(c.matches(&query_words("(11) 99999-0000").unwrap()));
        let mut hyphen = contact("Ana Silva-Santos D'Ávila", "5511999990001");
        assert!(hyphen.matches(&query_words("silva-santos").unwrap()));
        assert!(hyphen.matches(&query_words("d'avila").unwrap()));
        // Addresses as providers send them are stored, and never cut inside a character.
        hyphen.addresses = vec![ContactAddress::new(Channel::Whatsapp, "ção.123456789@lid")];
        assert!(hyphen.validate().is_ok());
        assert!(!hyphen.search_terms().is_empty());
        assert!(
            hyphen.addresses[0].validate().is_err(),
            "not as typed input"
        );
        assert!(!c.matches(&query_words("maria").unwrap()));
    }

    #[test]
    fn a_search_needs_a_word_of_two_characters() {
        assert_eq!(query_words("a - ."), None);
        assert_eq!(query_words(" Ana  ").unwrap(), vec!["ana".to_string()]);
    }

    #[test]
    fn merging_keeps_the_target_fields_and_joins_addresses_tags_and_notes() {
        let mut into = contact("Ana", "5511999990000");
        into.custom_fields.insert("plan".into(), "gold".into());
        let mut from = contact("Ana Souza", "5511988887777");
        from.email = Some("ana@example.com".into());
        from.tags = vec!["vip".into()];
        from.custom_fields.insert("plan".into(), "free".into());
        from.custom_fields.insert("city".into(), "Recife".into());
        let merged = merge(&into, &from, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(merged.id, into.id);
        assert_eq!(merged.name.as_deref(), Some("Ana"));
        assert_eq!(merged.email.as_deref(), Some("ana@example.com"));
        assert_eq!(merged.addresses.len(), 2);
        assert_eq!(merged.custom_fields["plan"], "gold");
        assert_eq!(merged.custom_fields["city"], "Recife");
        assert_eq!(merged.tags, vec!["vip".to_string()]);
        assert_eq!(merged.version, into.version + 1);
        assert!(merge(&into, &into, Timestamp::UNIX_EPOCH).is_err());
    }

    #[test]
    fn invalid_fields_are_refused_with_a_reason() {
        let mut c = contact("Ana", "5511999990000");
        c.email = Some("not-an-email".into());
        assert!(c.validate().unwrap_err().contains("email"));
        c.email = None;
        c.addresses
            .push(ContactAddress::new(Channel::Whatsapp, "12 ab"));
        assert!(
            c.validate().is_err(),
            "no spaces, even as providers send them"
        );
        assert!(
            ContactAddress::new(Channel::Whatsapp, "12ab")
                .validate()
                .is_err()
        );
        c.addresses.pop();
        c.custom_fields
            .insert("Bad Key".into(), serde_json::Value::Null);
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_write_lists_the_addresses_and_terms_it_moves() {
        let before = contact("Ana", "5511999990000");
        let mut after = before.clone();
        after.addresses = vec![ContactAddress::new(Channel::Whatsapp, "5511988887777")];
        let write = ContactWrite {
            before: Some(before),
            after: Some(after),
        };
        let (claims, releases) = write.address_changes();
        assert_eq!(claims[0].address, "5511988887777");
        assert_eq!(releases[0].address, "5511999990000");
        let (added, removed) = write.term_changes();
        assert!(added.contains(&"5511988887777".to_string()));
        assert!(removed.contains(&"5511999990000".to_string()));
    }
}
