//! LGPD erasure of a conversation's contact (`schema::privacy`), run by the conversation's owner
//! between its other turns: the stored events (and the feed's copies) and messages are rewritten a
//! page at a time without what the contact said or carried, the words they were searched by are
//! dropped, then the record loses the contact's name and the last preview in an ordinary turn.
//!
//! Nothing is published: agents' screens show the old text until they reload or resume, which reads
//! the rewritten history. A rewrite that stops part way (a store failure) is finished by asking again:
//! every step is idempotent.

use super::{ConversationError, ConversationState, store_error};
use crate::turn::Turn;
use schema::privacy;
use schema::store::SeqWindow;

/// Events or messages rewritten per store call.
const PAGE: usize = 500;

impl ConversationState {
    pub(super) async fn erase(&mut self) -> Result<(), ConversationError> {
        let Some(conversation) = self.conversation.clone() else {
            return Ok(());
        };
        let (tenant, id) = (self.tenant, self.id);
        let mut after = 0;
        loop {
            let page = self
                .store()
                .events(tenant, id, after, PAGE)
                .await
                .map_err(store_error)?;
            let Some(last) = page.last().map(|e| e.seq) else {
                break;
            };
            let unindex: Vec<(String, i32)> =
                page.iter().flat_map(privacy::indexed_terms).collect();
            let events: Vec<_> = page.iter().filter_map(privacy::erase_event).collect();
            if !events.is_empty() || !unindex.is_empty() {
                self.store()
                    .rewrite_history(tenant, id, &events, &[], &unindex)
                    .await
                    .map_err(store_error)?;
            }
            after = last;
        }
        let mut after = 0;
        loop {
            let page = self
                .store()
                .messages(tenant, id, SeqWindow::After(after), PAGE)
                .await
                .map_err(store_error)?;
            let Some(last) = page.last().map(|m| m.seq) else {
                break;
            };
            let messages: Vec<_> = page
                .iter()
                .filter(|m| !privacy::is_erased(m))
                .map(privacy::erase_message)
                .collect();
            if !messages.is_empty() {
                self.store()
                    .rewrite_history(tenant, id, &[], &messages, &[])
                    .await
                    .map_err(store_error)?;
            }
            after = last;
        }
        let erased = privacy::erase_conversation(&conversation);
        if erased != conversation {
            // The rewrite may have taken most of the turn's time: the record's commit gets its own.
            self.turn_deadline =
                tokio::time::Instant::now() + self.directory.services().config.turn_deadline;
            self.commit(Turn::new(erased, false), None).await?;
        }
        metrics::counter!("conversa_conversations_erased_total").increment(1);
        Ok(())
    }
}
