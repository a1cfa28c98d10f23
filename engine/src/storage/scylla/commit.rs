//! Writing one actor turn to the CQL tables: the statements it takes (conversation row, inbox and
//! view moves, events, messages with their rank timestamps, outbox, keys), sent as one logged batch or,
//! over Cassandra's batch size limit, one by one in an order that keeps a failure invisible.
//!
//! In cluster mode a turn first reserves its seqs with a lightweight transaction on the
//! conversation's fence row (`conversation_fences`): applied only if no newer lease epoch has written
//! the conversation and the reserved seq is the one the turn follows. The turn's rows live in other
//! partitions, so they cannot join that transaction; reserving first means a former owner that wakes
//! up mid-turn can only ever write into seqs it reserved before the takeover, never over the new
//! owner's, and is refused from the new owner's first commit on. Seqs reserved and never written
//! are never reused: a conversation whose first turn was reserved by an owner that stopped starts
//! after them (`MessageStore::reserved_seq`).

use super::*;

impl ScyllaStore {
    pub(super) async fn commit_turn(&self, commit: &ConversationCommit) -> StoreResult<()> {
        validate_commit(commit)?;
        let conversation = &commit.conversation;
        let (tenant, id) = (conversation.tenant_id, conversation.id);
        let expected = expected_stored_seq(commit);
        let new = match commit.fence {
            // Cluster mode: the turn's seqs are reserved first, under the writer's fence.
            Some(fence) => {
                self.reserve(commit, fence).await?;
                // The reservation is made; the turn itself cannot join it. A writer whose lease
                // window ran out meanwhile (a long pause) stops here: the reserved seqs stay empty,
                // and the next owner follows them.
                if commit
                    .write_by
                    .is_some_and(|by| std::time::Instant::now() >= by)
                {
                    return Err(StoreError::Fenced(fence));
                }
                commit.previous.is_none()
            }
            None => {
                // A single node after a cluster ran on this keyspace: seqs a cluster turn reserved
                // count as taken (loading the conversation follows them too).
                let (row, reserved) = futures::future::try_join(
                    self.last_seq(tenant, id),
                    self.fence_seq(tenant, id),
                )
                .await?;
                let stored = row.unwrap_or(0).max(reserved.unwrap_or(0));
                if stored != expected {
                    return Err(StoreError::SeqConflict {
                        conversation: id,
                        stored,
                        first: expected + 1,
                    });
                }
                row.is_none()
            }
        };
        let (writes, bytes) = self.turn_writes(commit, new)?;
        if bytes <= BATCH_BYTES {
            let mut batch = Batch::new(BatchType::Logged);
            let mut values = Vec::with_capacity(writes.len());
            for (statement, value) in writes {
                batch.append_statement(statement.clone());
                values.push(value);
            }
            self.session
                .batch(&batch, values)
                .await
                .map(drop)
                .map_err(driver_error)
        } else {
            // Data first (events, messages, inbox rows), then the idempotency keys, then the
            // conversation row (which publishes the new last_seq), then the removal of the inbox rows
            // it moved from and the moves of the active-ticket counts (a failure before them leaves a
            // count off by one, the one loss of precision this rare path has): a failure before the row leaves data past the stored last_seq, which
            // reads ignore and a key lookup does not trust (the message at the key's seq must be the
            // one it names), and the old inbox rows (and due entry) still list the conversation.
            let s = &self.statements;
            let is = |statement: &PreparedStatement, other: &PreparedStatement| {
                std::ptr::eq(statement, other)
            };
            let (removals, rest): (Vec<_>, Vec<_>) =
                writes.into_iter().partition(|(statement, _)| {
                    is(statement, &s.delete_inbox)
                        || is(statement, &s.delete_due)
                        || is(statement, &s.delete_active_view)
                        || is(statement, &s.insert_active_view)
                });
            let (rows, rest): (Vec<_>, Vec<_>) = rest
                .into_iter()
                .partition(|(statement, _)| is(statement, &s.upsert_conversation));
            let (keys, data): (Vec<_>, Vec<_>) = rest
                .into_iter()
                .partition(|(statement, _)| is(statement, &s.insert_message_key));
            for (statement, value) in data.into_iter().chain(keys).chain(rows).chain(removals) {
                self.session
                    .execute_unpaged(statement, value)
                    .await
                    .map_err(driver_error)?;
            }
            Ok(())
        }
    }

    /// Moves the conversation's fence row from the seq the turn follows to its last seq, under the
    /// writer's epoch. An earlier attempt of this same turn (a retry after an ambiguous failure) finds
    /// its own reservation and goes on; anything else is a seq conflict or, with a newer epoch, fenced.
    async fn reserve(&self, commit: &ConversationCommit, fence: Fence) -> StoreResult<()> {
        let s = &self.statements;
        let conversation = &commit.conversation;
        let (tenant, id) = (conversation.tenant_id.0, conversation.id.0);
        let expected = expected_stored_seq(commit);
        let (epoch, last) = (epoch_to_db(fence.epoch), seq_to_db(conversation.last_seq)?);
        // Names this turn: a retry of it carries the same stamp, another turn never does.
        let stamp = conversation.stamp_us;
        let moved: Vec<Row> = self
            .rows(
                &s.move_fence,
                (epoch, last, stamp, tenant, id, epoch, seq_to_db(expected)?),
            )
            .await?;
        if applied(&moved) {
            return Ok(());
        }
        let current = self.fence(conversation.tenant_id, conversation.id).await?;
        let (stored_epoch, stored_seq, stored_stamp) = match current {
            Some(row) => row,
            None => {
                // The first fenced commit of a conversation (new, or written before cluster mode):
                // the fence row starts where the conversation row is.
                let stored = self
                    .last_seq(conversation.tenant_id, conversation.id)
                    .await?;
                if stored.unwrap_or(0) != expected {
                    return Err(StoreError::SeqConflict {
                        conversation: conversation.id,
                        stored: stored.unwrap_or(0),
                        first: expected + 1,
                    });
                }
                let inserted: Vec<Row> = self
                    .rows(&s.insert_fence, (tenant, id, epoch, last, stamp))
                    .await?;
                if applied(&inserted) {
                    return Ok(());
                }
                self.fence(conversation.tenant_id, conversation.id)
                    .await?
                    .unwrap_or((0, 0, 0))
            }
        };
        if stored_epoch == fence.epoch
            && stored_seq == conversation.last_seq
            && stored_stamp == stamp
        {
            // Reserved by an earlier attempt of this very turn.
            return Ok(());
        }
        if stored_epoch > fence.epoch {
            return Err(StoreError::Fenced(fence));
        }
        if stored_seq < expected
            && self
                .last_seq(conversation.tenant_id, conversation.id)
                .await?
                == Some(expected)
        {
            // The fence row is behind the conversation (turns were written on a single node since
            // it last moved): bring it to where the conversation is, under this turn's fence.
            let moved: Vec<Row> = self
                .rows(
                    &s.move_fence,
                    (
                        epoch,
                        last,
                        stamp,
                        tenant,
                        id,
                        epoch,
                        seq_to_db(stored_seq)?,
                    ),
                )
                .await?;
            if applied(&moved) {
                return Ok(());
            }
        }
        Err(StoreError::SeqConflict {
            conversation: conversation.id,
            stored: stored_seq,
            first: expected + 1,
        })
    }

    /// The statements of one turn, conversation row first, and their approximate size.
    fn turn_writes(
        &self,
        commit: &ConversationCommit,
        new: bool,
    ) -> StoreResult<(Vec<Write<'_>>, usize)> {
        let s = &self.statements;
        let conversation = &commit.conversation;
        let (tenant, id) = (conversation.tenant_id.0, conversation.id.0);
        let mut writes: Vec<Write<'_>> = Vec::new();
        let mut bytes = 0;
        let body = to_json(conversation)?;
        bytes += body.len();
        let activity = micros(conversation.last_activity_at);
        writes.push((
            &s.upsert_conversation,
            Box::new((
                tenant,
                id,
                seq_to_db(conversation.last_seq)?,
                activity,
                conversation.status.as_str(),
                conversation.assignee.map(|a| a.0),
                conversation.team.clone(),
                body,
                // The conversation's own strictly increasing stamp, not the clock: after a
                // backwards step (a restart on a host whose clock was ahead) a newer turn must still
                // win over an older one.
                if conversation.stamp_us > 0 {
                    conversation.stamp_us
                } else {
                    micros(jiff::Timestamp::now())
                },
            )),
        ));
        // The rows of the inbox (`all`) and of each view the conversation is in, before and after.
        let rows_of = |position: &InboxPosition| {
            let at = micros(position.last_activity_at);
            std::iter::once(InboxView::All.key())
                .chain(position.views().iter().map(InboxView::key))
                .map(move |view| (view, at))
                .collect::<Vec<_>>()
        };
        let now_rows = rows_of(&InboxPosition::of(conversation));
        // The due index moves only when the due time changes (a delete and an insert of one key in
        // one batch would leave the delete).
        let due_shard = i32::from(schema::cluster::ShardId::of(&id).0);
        let before = commit.previous.as_ref().and_then(|p| p.due).map(micros);
        let after = conversation.next_due().map(micros);
        if before != after {
            if let Some(at) = before {
                writes.push((
                    &s.delete_due,
                    Box::new((due_shard, day_of(at), at, tenant, id)),
                ));
            }
            if let Some(at) = after {
                writes.push((&s.insert_due_day, Box::new((day_of(at), due_shard))));
                writes.push((
                    &s.insert_due,
                    Box::new((due_shard, day_of(at), at, tenant, id)),
                ));
            }
        }
        if let Some(previous) = &commit.previous {
            for (view, at) in rows_of(previous) {
                // A row that stays put is not deleted: a delete and an insert of one key with one
                // batch timestamp would leave the delete.
                if !now_rows.contains(&(view.clone(), at)) {
                    writes.push((
                        &s.delete_inbox,
                        Box::new((tenant, view, day_of(at), at, id)),
                    ));
                }
            }
        }
        for (view, at) in now_rows {
            writes.push((
                &s.insert_inbox_day,
                Box::new((tenant, view.clone(), day_of(at))),
            ));
            writes.push((
                &s.insert_inbox,
                Box::new((tenant, view, day_of(at), at, id)),
            ));
        }
        let (left, entered) =
            InboxPosition::count_moves(commit.previous.as_ref(), &InboxPosition::of(conversation));
        for view in left {
            writes.push((&s.delete_active_view, Box::new((tenant, view.key(), id))));
        }
        for view in entered {
            writes.push((&s.insert_active_view, Box::new((tenant, view.key(), id))));
        }
        let month = schema::helpdesk::search::month_of(conversation.last_activity_at);
        for term in &commit.search_terms {
            bytes += term.len() + 40;
            writes.push((
                &s.insert_message_term,
                Box::new((tenant, term.clone(), month, id)),
            ));
        }
        if new {
            writes.push((
                &s.insert_contact,
                Box::new((
                    tenant,
                    conversation.contact.address.clone(),
                    conversation.connection_id.0,
                    id,
                    conversation.contact.name.clone(),
                )),
            ));
        }
        let mut feed_hours: Vec<i64> = commit
            .events
            .iter()
            .map(|e| feed_hour(micros(e.at)))
            .collect();
        feed_hours.dedup();
        for hour in feed_hours {
            writes.push((&s.insert_feed_hour, Box::new((tenant, hour))));
        }
        for event in &commit.events {
            let body = to_json(event)?;
            bytes += body.len() + 64;
            writes.push((
                &s.insert_event,
                Box::new((tenant, id, bucket(event.seq)?, seq_to_db(event.seq)?, body)),
            ));
            let at = micros(event.at);
            writes.push((
                &s.insert_feed,
                Box::new((tenant, feed_hour(at), at, id, seq_to_db(event.seq)?)),
            ));
        }
        for message in &commit.messages {
            let body = to_json(message)?;
            bytes += body.len();
            let written_at = rank_timestamp(message);
            let direction = match message.direction {
                Direction::Inbound => "inbound",
                Direction::Outbound => "outbound",
            };
            let seq = seq_to_db(message.seq)?;
            writes.push((
                &s.insert_message,
                Box::new((
                    tenant,
                    id,
                    bucket(message.seq)?,
                    seq,
                    message.id.0,
                    direction,
                    format!("{:?}", message.status).to_lowercase(),
                    body,
                    written_at,
                )),
            ));
            if message.direction == Direction::Outbound {
                let shard = outbox_shard(conversation.id);
                if message.status == MessageStatus::Pending {
                    writes.push((
                        &s.insert_outbox,
                        Box::new((shard, tenant, id, seq, written_at)),
                    ));
                } else {
                    writes.push((
                        &s.delete_outbox,
                        Box::new((written_at, shard, tenant, id, seq)),
                    ));
                }
            }
        }
        for (key, reference) in &commit.message_keys {
            let (kind, value) = key_columns(key);
            bytes += value.len();
            writes.push((
                &s.insert_message_key,
                Box::new((
                    tenant,
                    id,
                    kind,
                    value.to_string(),
                    reference.message_id.0,
                    seq_to_db(reference.seq)?,
                )),
            ));
        }
        Ok((writes, bytes))
    }
}

/// The write timestamp of a message row: its creation time plus its status rank, so a later status
/// always carries a larger timestamp than an earlier one, whatever order the writes arrive in. A
/// deletion is final: a deleted message's writes come after every write of it undeleted (ranks are
/// below [`DELETED_STEP`]).
pub(super) fn rank_timestamp(message: &Message) -> i64 {
    let deleted = if message.deleted.is_some() {
        DELETED_STEP
    } else {
        0
    };
    micros(message.created_at).saturating_add(i64::from(message.status.rank()) + deleted)
}

/// What a deletion adds to a message row's write timestamp.
const DELETED_STEP: i64 = 16;

pub(super) fn outbox_shard(conversation: ConversationId) -> i32 {
    let bytes = conversation.as_bytes();
    i32::from(bytes[15]) % OUTBOX_SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_status_always_writes_with_a_larger_timestamp() {
        let message: Message = serde_json::from_value(serde_json::json!({
            "id": MessageId::new(), "tenant_id": TenantId::new(),
            "conversation_id": ConversationId::new(), "seq": 3, "direction": "outbound",
            "content": {"type": "text", "body": "oi"}, "status": "read",
            "provider_message_id": null, "reply_to": null, "sent_by": null,
            "client_message_id": null, "error": null,
            "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"
        }))
        .expect("message");
        let mut delivered = message.clone();
        delivered.status = MessageStatus::Delivered;
        let mut failed = message.clone();
        failed.status = MessageStatus::Failed;
        let mut sent = message.clone();
        sent.status = MessageStatus::Sent;
        assert!(rank_timestamp(&message) > rank_timestamp(&delivered));
        // A failure can follow a send, never a delivery: a late `failed` loses to `delivered`/`read`.
        assert!(rank_timestamp(&delivered) > rank_timestamp(&failed));
        assert!(rank_timestamp(&failed) > rank_timestamp(&sent));
    }
}
