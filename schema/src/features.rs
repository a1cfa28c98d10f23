//! A tenant's feature flags: stored per tenant, served to clients (`GET /api/v1/features`), and
//! honoured by the features that exist: `notes_on_messages` (the notes route),
//! `automatic_distribution` (departments distribute only while it is on), `groups` (WhatsApp
//! groups' messages are stored only while it is on), `transfer_groups`, `group_media`,
//! `service_rating` (the satisfaction survey), `show_deleted_messages`, `show_dashboard` and
//! `admin_security`. The other `show_*` and `notify_*` flags tell the console what to show; the
//! rest (`customer_wallet`, `ticket_metrics`, `group_history`, `ignore_assigned_connection`,
//! `start_groups_as_waiting`) are kept for the features they will govern.
//!
//! Stored flags are read leniently (a flag a newer version stored and this one does not know is
//! ignored, one it does not have takes its default), so nodes of two versions share them; a change
//! is checked strictly ([`FeatureFlags::patched`]).

use serde::{Deserialize, Serialize};

/// The flags, each with its default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct FeatureFlags {
    pub group_media: bool,
    pub show_contacts: bool,
    pub show_tags: bool,
    pub show_connections: bool,
    pub show_deleted_messages: bool,
    pub show_dashboard: bool,
    pub customer_wallet: bool,
    pub notes_on_messages: bool,
    pub admin_security: bool,
    pub automatic_distribution: bool,
    pub service_rating: bool,
    pub ticket_metrics: bool,
    pub groups: bool,
    pub group_history: bool,
    pub ignore_assigned_connection: bool,
    pub start_groups_as_waiting: bool,
    pub transfer_groups: bool,
    pub notify_bots: bool,
    pub notify_groups: bool,
}

impl Default for FeatureFlags {
    fn default() -> Self {
        Self {
            group_media: true,
            show_contacts: true,
            show_tags: true,
            show_connections: true,
            show_deleted_messages: false,
            show_dashboard: true,
            customer_wallet: false,
            notes_on_messages: true,
            admin_security: false,
            automatic_distribution: true,
            service_rating: false,
            ticket_metrics: true,
            groups: false,
            group_history: false,
            ignore_assigned_connection: false,
            start_groups_as_waiting: false,
            transfer_groups: false,
            notify_bots: false,
            notify_groups: false,
        }
    }
}

/// A change that names a flag that does not exist or gives it a value that is not a boolean.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadFlags(pub String);

impl FeatureFlags {
    /// These flags with the named ones changed (`{"groups": true}`); every name must be a flag.
    pub fn patched(
        &self,
        patch: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, BadFlags> {
        let mut value = serde_json::to_value(self).map_err(|e| BadFlags(e.to_string()))?;
        let Some(object) = value.as_object_mut() else {
            return Err(BadFlags("flags are not an object".into()));
        };
        for (name, flag) in patch {
            if !object.contains_key(name) {
                return Err(BadFlags(format!("no feature flag {name:?}")));
            }
            if !flag.is_boolean() {
                return Err(BadFlags(format!("{name:?} takes true or false")));
            }
            object.insert(name.clone(), flag.clone());
        }
        serde_json::from_value(value).map_err(|e| BadFlags(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_patch_changes_only_the_named_flags() {
        let flags = FeatureFlags::default();
        let changed = flags
            .patched(&patch(json!({"groups": true, "notes_on_messages": false})))
            .expect("patch");
        assert!(changed.groups && !changed.notes_on_messages);
        assert_eq!(
            FeatureFlags {
                groups: false,
                notes_on_messages: true,
                ..changed
            },
            flags
        );
    }

    #[test]
    fn unknown_flags_and_non_booleans_are_refused() {
        let flags = FeatureFlags::default();
        assert!(flags.patched(&patch(json!({"teleport": true}))).is_err());
        assert!(flags.patched(&patch(json!({"groups": "yes"}))).is_err());
    }

    #[test]
    fn flags_stored_before_a_flag_existed_read_with_its_default() {
        let stored: FeatureFlags = serde_json::from_value(json!({"groups": true})).expect("flags");
        assert!(stored.groups && stored.automatic_distribution);
    }
}
