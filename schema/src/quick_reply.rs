//! Quick replies (Chatwoot's canned responses): a shortcut (`/saudacao`) naming a text with variables
//! (`{{contact.name}}`), for the whole tenant or one department. Re-exported from `records`; the
//! rendering is a pure rule in `helpdesk::quick_reply`.

use crate::ids::TenantId;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most quick replies one tenant keeps.
pub const MAX_QUICK_REPLIES: usize = 1000;
/// Longest quick reply text, in characters (a WhatsApp text is at most 4,096).
pub const MAX_CONTENT_CHARS: usize = 4096;

/// A quick reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuickReply {
    pub id: Uuid,
    pub tenant_id: TenantId,
    /// `/` then 1–32 of `a-z 0-9 _ -`; unique within its scope (the tenant, or one department).
    pub short_code: String,
    pub content: String,
    /// The department it belongs to; `None`: the whole tenant's.
    pub team: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl QuickReply {
    /// Checks the shortcut and the text; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !crate::helpdesk::quick_reply::valid_shortcut(&self.short_code) {
            return Err("short_code is '/' then 1 to 32 of a-z, 0-9, '_' or '-'".into());
        }
        let chars = self.content.trim().chars().count();
        if chars == 0 || chars > MAX_CONTENT_CHARS {
            return Err(format!(
                "content must have 1 to {MAX_CONTENT_CHARS} characters"
            ));
        }
        if let Some(team) = &self.team {
            crate::helpdesk::change::team_key(team).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
