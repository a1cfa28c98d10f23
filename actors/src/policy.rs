//! The rules a conversation applies to what an agent sends, from the channels' documented limits: what
//! each kind of content may hold, which kinds need the 24-hour customer-service window (everything but
//! an approved template), and what each channel carries at all (`channel_allows`). Pure functions: the
//! conversation actor calls them before storing anything.

use crate::conversation::ConversationError;
use schema::records::{MessageContent, Provider};

/// Longest text an agent may send (WhatsApp's own limit is 4096 characters).
pub const MAX_TEXT_CHARS: usize = 4096;
/// WhatsApp's customer-service window: free text is allowed this long after the contact's last message.
pub const CUSTOMER_SERVICE_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);
/// Messenger and Instagram: a person may answer this long after the contact's last message with the
/// `HUMAN_AGENT` tag, when the app has that permission.
pub const HUMAN_AGENT_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(7 * 24);
/// The message tag Meta documents for a person answering outside the 24-hour window.
pub const HUMAN_AGENT_TAG: &str = "HUMAN_AGENT";

/// What the connection's channel allows, checked before anything is stored: which content kinds it
/// can carry, and whether the reply is inside the channel's window. Answers the message tag the send
/// needs (Messenger and Instagram between 24 hours and 7 days, with the Human Agent permission).
pub fn channel_allows(
    provider: Provider,
    human_agent: bool,
    content: &MessageContent,
    needs_window: bool,
    since_contact_wrote: Option<jiff::SignedDuration>,
) -> Result<Option<&'static str>, ConversationError> {
    let refuse = |why: &str| Err(ConversationError::Invalid(why.to_string()));
    let inside = |window: jiff::SignedDuration| since_contact_wrote.is_some_and(|d| d < window);
    match provider {
        Provider::WhatsappCloud => {
            if needs_window && !inside(CUSTOMER_SERVICE_WINDOW) {
                return Err(ConversationError::WindowClosed(
                    "the contact last wrote more than 24 hours ago: WhatsApp accepts only an approved \
                     template now"
                        .into(),
                ));
            }
            Ok(None)
        }
        Provider::Messenger | Provider::Instagram => {
            match content {
                MessageContent::Template { .. } => {
                    return refuse(
                        "templates are a WhatsApp feature: Messenger and Instagram take text, media \
                         and quick replies",
                    );
                }
                MessageContent::InteractiveList { .. } => {
                    return refuse(
                        "list messages are a WhatsApp feature: send quick replies instead",
                    );
                }
                MessageContent::Reaction { .. } => {
                    return refuse("reactions are not sent to Messenger or Instagram from here");
                }
                _ => {}
            }
            if inside(CUSTOMER_SERVICE_WINDOW) {
                return Ok(None);
            }
            if human_agent && inside(HUMAN_AGENT_WINDOW) {
                return Ok(Some(HUMAN_AGENT_TAG));
            }
            let why = if human_agent {
                "the contact last wrote more than 7 days ago: Messenger and Instagram accept no reply \
                 now until they write again"
            } else {
                "the contact last wrote more than 24 hours ago: Messenger and Instagram accept a reply \
                 up to 7 days later only with the HUMAN_AGENT tag, which needs Meta's Human Agent \
                 permission (set human_agent_tag on the connection once the app has it)"
            };
            Err(ConversationError::WindowClosed(why.into()))
        }
        Provider::Evolution | Provider::Zapi => match content {
            MessageContent::Template { .. }
            | MessageContent::Interactive { .. }
            | MessageContent::InteractiveList { .. } => refuse(
                "templates, buttons and lists need the WhatsApp Cloud API; this connection is a \
                 WhatsApp Web session (Evolution or Z-API): send text or media",
            ),
            // WhatsApp Web has no customer-service window.
            _ => Ok(None),
        },
    }
}

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

    fn hours(h: i64) -> Option<jiff::SignedDuration> {
        Some(jiff::SignedDuration::from_hours(h))
    }

    #[test]
    fn messenger_and_instagram_refuse_what_they_cannot_carry_before_anything_is_stored() {
        let template = MessageContent::Template {
            name: "t".into(),
            language: "pt_BR".into(),
            body_parameters: vec![],
        };
        let reaction = MessageContent::Reaction {
            target: "m_1".into(),
            emoji: "👍".into(),
        };
        for provider in [Provider::Messenger, Provider::Instagram] {
            for content in [&template, &reaction] {
                assert!(matches!(
                    channel_allows(provider, true, content, false, hours(1)),
                    Err(ConversationError::Invalid(_))
                ));
            }
        }
    }

    #[test]
    fn messenger_answers_within_24_hours_then_7_days_only_with_the_human_agent_tag() {
        let text = MessageContent::Text { body: "oi".into() };
        let allows = |human_agent, since| {
            channel_allows(Provider::Instagram, human_agent, &text, true, since)
        };
        assert_eq!(allows(false, hours(23)), Ok(None));
        assert_eq!(allows(true, hours(30)), Ok(Some(HUMAN_AGENT_TAG)));
        let Err(ConversationError::WindowClosed(why)) = allows(false, hours(30)) else {
            panic!("open without the permission")
        };
        assert!(
            why.contains("HUMAN_AGENT") && !why.contains("template"),
            "{why}"
        );
        assert!(matches!(
            allows(true, hours(8 * 24)),
            Err(ConversationError::WindowClosed(_))
        ));
    }

    #[test]
    fn whatsapp_outside_the_window_names_templates_and_sessions_have_no_window() {
        let text = MessageContent::Text { body: "oi".into() };
        let Err(ConversationError::WindowClosed(why)) =
            channel_allows(Provider::WhatsappCloud, false, &text, true, hours(25))
        else {
            panic!("open")
        };
        assert!(why.contains("template"));
        assert_eq!(
            channel_allows(Provider::Zapi, false, &text, true, hours(25 * 30)),
            Ok(None)
        );
    }
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
