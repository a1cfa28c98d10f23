//! Quick replies: a shortcut (`/saudacao`) names a text with variables (`{{contact.name}}`) filled
//! from what the agent's console knows. Pure rendering: an unknown variable stays visible (so the
//! agent sees what was not filled) and is reported.

use std::collections::BTreeMap;

/// Longest rendered reply (a WhatsApp text is at most 4,096 characters).
pub const MAX_RENDERED_CHARS: usize = 4096;

/// A rendered reply and the variables that had no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub missing: Vec<String>,
}

/// Fills `{{name}}` placeholders (spaces inside the braces allowed) from `values`.
pub fn render(template: &str, values: &BTreeMap<&str, String>) -> Rendered {
    let mut text = String::with_capacity(template.len());
    let mut missing = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        text.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            text.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let name = after[..close].trim();
        match values.get(name) {
            Some(value) => text.push_str(value),
            None => {
                text.push_str(&rest[open..open + 2 + close + 2]);
                if !missing.iter().any(|m| m == name) {
                    missing.push(name.to_string());
                }
            }
        }
        rest = &after[close + 2..];
    }
    text.push_str(rest);
    if text.chars().count() > MAX_RENDERED_CHARS {
        text = text.chars().take(MAX_RENDERED_CHARS).collect();
    }
    Rendered { text, missing }
}

/// Whether a shortcut is well formed: `/` then 1–32 of `a-z 0-9 _ -`.
pub fn valid_shortcut(shortcut: &str) -> bool {
    shortcut.strip_prefix('/').is_some_and(|name| {
        (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_filled_and_unknown_ones_stay_visible() {
        let values = BTreeMap::from([("contact.name", "Maria".to_string())]);
        let rendered = render("Olá, {{ contact.name }}! Sou {{agent.name}}.", &values);
        assert_eq!(rendered.text, "Olá, Maria! Sou {{agent.name}}.");
        assert_eq!(rendered.missing, vec!["agent.name".to_string()]);
    }

    #[test]
    fn an_unclosed_placeholder_is_kept_as_text() {
        let rendered = render("Oi {{contact.name", &BTreeMap::new());
        assert_eq!(rendered.text, "Oi {{contact.name");
        assert!(rendered.missing.is_empty());
    }

    #[test]
    fn a_rendered_reply_is_bounded() {
        let values = BTreeMap::from([("x", "a".repeat(10_000))]);
        assert_eq!(
            render("{{x}}", &values).text.chars().count(),
            MAX_RENDERED_CHARS
        );
    }

    #[test]
    fn shortcuts_are_slash_and_a_short_lowercase_name() {
        assert!(valid_shortcut("/saudacao"));
        assert!(valid_shortcut("/fora-do-horario_2"));
        assert!(!valid_shortcut("saudacao"));
        assert!(!valid_shortcut("/"));
        assert!(!valid_shortcut("/Saudação"));
    }
}
