//! The rules a conversation applies to what an agent sends, from WhatsApp's documented limits: what
//! each kind of content may hold, and which kinds need the 24-hour customer-service window (everything
//! but an approved template). Pure functions: the conversation actor calls them before storing anything.

use crate::conversation::ConversationError;
use schema::records::MessageContent;

/// Longest text an agent may send (WhatsApp's own limit is 4096 characters).
pub const MAX_TEXT_CHARS: usize = 4096;
/// WhatsApp's customer-service window: free text is allowed this long after the contact's last message.
pub const CUSTOMER_SERVICE_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Checks an agent's outbound content against WhatsApp's documented limits; answers whether it needs
/// the 24-hour customer-service window (everything but a template does).
pub fn validate_outbound(content: &MessageContent) -> Result<bool, ConversationError> {
    let invalid = |why: &str| Err(ConversationError::Invalid(why.to_string()));
    let chars = |s: &str| s.chars().count();
    match content {
        MessageContent::Text { body } => {
            if body.trim().is_empty() || chars(body) > MAX_TEXT_CHARS {
                return invalid("text must have 1 to 4096 characters");
            }
            Ok(true)
        }
        MessageContent::Template {
            name,
            language,
            body_parameters,
        } => {
            if name.trim().is_empty()
                || chars(name) > 512
                || language.trim().is_empty()
                || chars(language) > 16
            {
                return invalid(
                    "a template needs a name (at most 512 characters) and a language code",
                );
            }
            if body_parameters.len() > 32
                || body_parameters
                    .iter()
                    .any(|p| p.trim().is_empty() || chars(p) > 1024)
            {
                return invalid(
                    "template parameters must have 1 to 1024 characters, at most 32 of them",
                );
            }
            Ok(false)
        }
        MessageContent::Interactive { body, buttons } => {
            if body.trim().is_empty() || chars(body) > 1024 {
                return invalid(
                    "the body of an interactive message must have 1 to 1024 characters",
                );
            }
            let mut ids = std::collections::HashSet::new();
            let bad_button = |b: &schema::records::ReplyButton| {
                b.title.trim().is_empty()
                    || chars(&b.title) > 20
                    || b.id.is_empty()
                    || chars(&b.id) > 256
            };
            if buttons.is_empty()
                || buttons.len() > 3
                || buttons.iter().any(|b| bad_button(b) || !ids.insert(&b.id))
            {
                return invalid(
                    "1 to 3 buttons, each with a unique id and a title of 1 to 20 characters",
                );
            }
            Ok(true)
        }
        MessageContent::InteractiveList {
            body,
            button,
            sections,
        } => {
            if body.trim().is_empty()
                || chars(body) > 1024
                || button.trim().is_empty()
                || chars(button) > 20
            {
                return invalid(
                    "a list needs a body (1 to 1024 characters) and a button label (1 to 20)",
                );
            }
            let rows: Vec<_> = sections.iter().flat_map(|s| &s.rows).collect();
            let mut ids = std::collections::HashSet::new();
            let bad_row = |r: &&schema::records::ListRow| {
                r.id.is_empty()
                    || chars(&r.id) > 200
                    || r.title.trim().is_empty()
                    || chars(&r.title) > 24
                    || r.description.as_deref().is_some_and(|d| chars(d) > 72)
            };
            if sections.is_empty()
                || sections.len() > 10
                || sections
                    .iter()
                    .any(|s| s.rows.is_empty() || chars(&s.title) > 24)
                || rows.len() > 10
                || rows.iter().any(|r| bad_row(r) || !ids.insert(&r.id))
            {
                return invalid(
                    "1 to 10 sections (titles up to 24) with 1 to 10 rows in all: unique ids, titles up to 24, descriptions up to 72",
                );
            }
            Ok(true)
        }
        MessageContent::MediaLink {
            kind,
            url,
            caption,
            filename,
        } => {
            if !url.starts_with("https://") || chars(url) > 2048 {
                return invalid("media must be a public https URL of at most 2048 characters");
            }
            if caption.as_deref().is_some_and(|c| chars(c) > 1024)
                || filename
                    .as_deref()
                    .is_some_and(|f| f.trim().is_empty() || chars(f) > 240)
            {
                return invalid("a caption has at most 1024 characters, a filename 1 to 240");
            }
            if caption.is_some()
                && matches!(
                    kind,
                    schema::records::MediaKind::Audio | schema::records::MediaKind::Sticker
                )
            {
                return invalid("audio and stickers take no caption");
            }
            Ok(true)
        }
        MessageContent::Reaction { target, emoji } => {
            if target.is_empty() || chars(emoji) > 8 {
                return invalid("a reaction needs the reacted message and at most one emoji");
            }
            Ok(true)
        }
        _ => invalid(
            "only text, media by URL, templates, interactive buttons and reactions can be sent",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::records::ReplyButton;

    fn button(id: &str, title: &str) -> ReplyButton {
        ReplyButton {
            id: id.into(),
            title: title.into(),
        }
    }

    #[test]
    fn templates_need_no_window_and_everything_else_does() {
        let template = MessageContent::Template {
            name: "ola".into(),
            language: "pt_BR".into(),
            body_parameters: vec![],
        };
        assert_eq!(validate_outbound(&template), Ok(false));
        assert_eq!(
            validate_outbound(&MessageContent::Text { body: "oi".into() }),
            Ok(true)
        );
        let reaction = MessageContent::Reaction {
            target: "wamid.X".into(),
            emoji: "".into(),
        };
        assert_eq!(
            validate_outbound(&reaction),
            Ok(true),
            "an empty emoji removes a reaction"
        );
    }

    #[test]
    fn list_messages_follow_whatsapps_limits() {
        use schema::records::{ListRow, ListSection};
        let row = |id: &str| ListRow {
            id: id.into(),
            title: "Plano".into(),
            description: None,
        };
        let list = |rows: Vec<ListRow>| MessageContent::InteractiveList {
            body: "Escolha".into(),
            button: "Ver planos".into(),
            sections: vec![ListSection {
                title: "Planos".into(),
                rows,
            }],
        };
        assert_eq!(validate_outbound(&list(vec![row("a"), row("b")])), Ok(true));
        assert!(
            validate_outbound(&list(vec![])).is_err(),
            "a section needs rows"
        );
        assert!(
            validate_outbound(&list((0..11).map(|i| row(&i.to_string())).collect())).is_err(),
            "at most 10 rows"
        );
        assert!(
            validate_outbound(&list(vec![row("a"), row("a")])).is_err(),
            "row ids are unique"
        );
    }

    #[test]
    fn limits_follow_whatsapp() {
        let too_long = MessageContent::Text {
            body: "x".repeat(MAX_TEXT_CHARS + 1),
        };
        assert!(validate_outbound(&too_long).is_err());
        let four = MessageContent::Interactive {
            body: "b".into(),
            buttons: vec![
                button("1", "a"),
                button("2", "b"),
                button("3", "c"),
                button("4", "d"),
            ],
        };
        assert!(validate_outbound(&four).is_err());
        let duplicate = MessageContent::Interactive {
            body: "b".into(),
            buttons: vec![button("1", "a"), button("1", "b")],
        };
        assert!(validate_outbound(&duplicate).is_err());
        let long_title = MessageContent::Interactive {
            body: "b".into(),
            buttons: vec![button("1", &"t".repeat(21))],
        };
        assert!(validate_outbound(&long_title).is_err());
        let empty_param = MessageContent::Template {
            name: "t".into(),
            language: "pt_BR".into(),
            body_parameters: vec![" ".into()],
        };
        assert!(validate_outbound(&empty_param).is_err());
        let location = MessageContent::Location {
            latitude: 0.0,
            longitude: 0.0,
            name: None,
            address: None,
        };
        assert!(
            validate_outbound(&location).is_err(),
            "inbound-only content cannot be sent"
        );
    }
}
