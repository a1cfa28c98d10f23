//! Search by message text: the words a message is found by, and the month its index rows go to. The
//! index holds, per tenant, word and month, the conversations whose messages that month had the word
//! (written by the turn's commit); a search lists the newest months first and needs every word of
//! the query in the same month of the same conversation.

use crate::contact::fold;
use crate::records::MessageContent;
use jiff::Timestamp;
use std::collections::BTreeSet;

/// Shortest word indexed and searched, in characters (`oi`, `ok` are everywhere).
pub const MIN_WORD_CHARS: usize = 3;
/// Longest word indexed, in characters; longer ones are cut.
pub const MAX_WORD_CHARS: usize = 40;
/// Most distinct words indexed per message, and per turn.
pub const MAX_WORDS_PER_MESSAGE: usize = 64;
pub const MAX_WORDS_PER_TURN: usize = 256;
/// How many months back a search looks.
pub const SEARCH_MONTHS: i32 = 24;

/// The text of a message a customer or an agent wrote (bodies and captions; not templates, media ids
/// or raw payloads).
pub fn searchable_text(content: &MessageContent) -> Option<&str> {
    match content {
        MessageContent::Text { body }
        | MessageContent::Interactive { body, .. }
        | MessageContent::InteractiveList { body, .. } => Some(body),
        MessageContent::Media { caption, .. } | MessageContent::MediaLink { caption, .. } => {
            caption.as_deref()
        }
        MessageContent::InteractiveReply { title, .. } => Some(title),
        MessageContent::Location { name, .. } => name.as_deref(),
        _ => None,
    }
}

/// The distinct folded words of a text, at least [`MIN_WORD_CHARS`] long, at most
/// [`MAX_WORDS_PER_MESSAGE`] of them.
pub fn words(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.chars().count() < MIN_WORD_CHARS {
            continue;
        }
        out.insert(fold(word).chars().take(MAX_WORD_CHARS).collect());
        if out.len() == MAX_WORDS_PER_MESSAGE {
            break;
        }
    }
    out
}

/// A search as words, longest first (it narrows the scan most); `None` when no word is long enough.
pub fn query_words(query: &str) -> Option<Vec<String>> {
    let mut words: Vec<String> = words(query).into_iter().take(8).collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    (!words.is_empty()).then_some(words)
}

/// Months since 1970-01 (UTC) of an instant: the index's month.
pub fn month_of(at: Timestamp) -> i32 {
    let date = at.to_zoned(jiff::tz::TimeZone::UTC).date();
    (i32::from(date.year()) - 1970) * 12 + i32::from(date.month()) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_found_by_its_folded_words_of_three_letters_or_more() {
        let words = words("Oi! Meu PEDIDO nº 4512 não chegou, pedido atrasado");
        assert_eq!(
            words.into_iter().collect::<Vec<_>>(),
            vec!["4512", "atrasado", "chegou", "meu", "nao", "pedido"]
        );
        assert_eq!(
            query_words("ok pedido não").unwrap(),
            vec!["pedido".to_string(), "nao".to_string()]
        );
        assert_eq!(query_words("ok oi"), None);
    }

    #[test]
    fn months_count_from_the_epoch_in_utc() {
        assert_eq!(month_of(Timestamp::UNIX_EPOCH), 0);
        let at: Timestamp = "2026-11-30T23:30:00-03:00".parse().unwrap();
        assert_eq!(month_of(at), 56 * 12 + 11, "December in UTC");
    }
}
