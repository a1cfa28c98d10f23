//! One actor turn as one PostgreSQL transaction: in a cluster, the writer's fence checked first
//! against the shard's lease (share-locked until the end), then the conversation row moved forward only if the stored
//! seq is the one the turn follows (a conditional upsert, so two writers cannot both win), then its
//! events (each also appended to the tenant's feed), its messages (never to a lower status rank) with their outbox entries, and its keys.

use super::*;

impl PostgresStore {
    pub(super) async fn commit_turn(&self, commit: &ConversationCommit) -> StoreResult<()> {
        validate_commit(commit)?;
        let conversation = &commit.conversation;
        let (tenant, id) = (conversation.tenant_id.0, conversation.id.0);
        let expected = seq_to_db(expected_stored_seq(commit))?;
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        if let Some(fence) = commit.fence {
            super::cluster::check_fence(&mut tx, fence).await?;
        }
        let moved = upsert_conversation(&mut tx, conversation, expected).await?;
        if !moved {
            let stored: Option<i64> = sqlx::query_scalar(
                "SELECT last_seq FROM conversations WHERE tenant_id = $1 AND conversation_id = $2",
            )
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            return Err(StoreError::SeqConflict {
                conversation: conversation.id,
                stored: seq_from_db(stored.unwrap_or(0))?,
                first: expected_stored_seq(commit) + 1,
            });
        }
        for event in &commit.events {
            // The event and its entry in the tenant's feed, in one round trip.
            sqlx::query(
                "WITH event AS (INSERT INTO conversation_events (tenant_id, conversation_id, seq, body) \
                 VALUES ($1, $2, $3, $4::json)) \
                 INSERT INTO tenant_feed (tenant_id, conversation_id, seq, body) \
                 VALUES ($1, $2, $3, $4::json)",
            )
            .bind(tenant)
            .bind(id)
            .bind(seq_to_db(event.seq)?)
            .bind(to_json(event)?)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        for message in &commit.messages {
            write_message(&mut tx, message).await?;
        }
        for (key, reference) in &commit.message_keys {
            let (kind, value) = key_columns(key);
            sqlx::query(
                "INSERT INTO message_keys (tenant_id, conversation_id, kind, key, message_id, seq) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant_id, conversation_id, kind, key) \
                 DO UPDATE SET message_id = EXCLUDED.message_id, seq = EXCLUDED.seq",
            )
            .bind(tenant)
            .bind(id)
            .bind(kind)
            .bind(value)
            .bind(reference.message_id.0)
            .bind(seq_to_db(reference.seq)?)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        if !commit.search_terms.is_empty() {
            sqlx::query(
                "INSERT INTO message_terms (tenant_id, term, month, conversation_id) \
                 SELECT $1, term, $3, $2 FROM unnest($4::text[]) AS term ON CONFLICT DO NOTHING",
            )
            .bind(tenant)
            .bind(id)
            .bind(schema::helpdesk::search::month_of(
                conversation.last_activity_at,
            ))
            .bind(&commit.search_terms)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }
}

/// Moves the conversation row forward if the stored seq is the one the commit follows; `false` when it
/// is not (another writer got there first).
async fn upsert_conversation(
    tx: &mut Transaction<'_, Postgres>,
    conversation: &Conversation,
    expected: i64,
) -> StoreResult<bool> {
    let sql = if expected == 0 {
        "INSERT INTO conversations \
         (tenant_id, conversation_id, last_seq, last_activity_us, status, assignee, team, body, \
         due_us, shard, priority, tags) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json, $10, $11, $12, $13) \
         ON CONFLICT (tenant_id, conversation_id) DO UPDATE SET last_seq = EXCLUDED.last_seq, \
         last_activity_us = EXCLUDED.last_activity_us, status = EXCLUDED.status, \
         assignee = EXCLUDED.assignee, team = EXCLUDED.team, body = EXCLUDED.body, \
         due_us = EXCLUDED.due_us, shard = EXCLUDED.shard, priority = EXCLUDED.priority, \
         tags = EXCLUDED.tags \
         WHERE conversations.last_seq = $9"
    } else {
        "UPDATE conversations SET last_seq = $3, last_activity_us = $4, status = $5, assignee = $6, \
         team = $7, body = $8::json, due_us = $10, shard = $11, priority = $12, tags = $13 \
         WHERE tenant_id = $1 AND conversation_id = $2 AND last_seq = $9"
    };
    let done = sqlx::query(sql)
        .bind(conversation.tenant_id.0)
        .bind(conversation.id.0)
        .bind(seq_to_db(conversation.last_seq)?)
        .bind(micros(conversation.last_activity_at))
        .bind(conversation.status.as_str())
        .bind(conversation.assignee.map(|a| a.0))
        .bind(conversation.team.as_deref())
        .bind(to_json(conversation)?)
        .bind(expected)
        .bind(conversation.next_due().map(micros))
        .bind(i16::try_from(schema::cluster::ShardId::of(&conversation.id.0).0).unwrap_or(i16::MAX))
        .bind(conversation.priority.as_str())
        .bind(&conversation.tags)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Upserts a message unless the stored one has a higher status rank; the outbox follows the version
/// that was kept.
async fn write_message(tx: &mut Transaction<'_, Postgres>, message: &Message) -> StoreResult<()> {
    let (tenant, id, seq) = (
        message.tenant_id.0,
        message.conversation_id.0,
        seq_to_db(message.seq)?,
    );
    let direction = match message.direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    };
    let kept: Option<i16> = sqlx::query_scalar(
        "INSERT INTO messages (tenant_id, conversation_id, seq, message_id, direction, status_rank, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::json) \
         ON CONFLICT (tenant_id, conversation_id, seq) DO UPDATE SET message_id = EXCLUDED.message_id, \
         direction = EXCLUDED.direction, status_rank = EXCLUDED.status_rank, body = EXCLUDED.body \
         WHERE messages.status_rank <= EXCLUDED.status_rank \
         RETURNING status_rank",
    )
    .bind(tenant)
    .bind(id)
    .bind(seq)
    .bind(message.id.0)
    .bind(direction)
    .bind(message.status.rank())
    .bind(to_json(message)?)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    if kept.is_none() || message.direction != Direction::Outbound {
        return Ok(());
    }
    let outbox = if message.status == MessageStatus::Pending {
        sqlx::query(
            "INSERT INTO outbox (tenant_id, conversation_id, seq, queued_us) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(id)
        .bind(seq)
        .bind(micros(Timestamp::now()))
    } else {
        sqlx::query("DELETE FROM outbox WHERE tenant_id = $1 AND conversation_id = $2 AND seq = $3")
            .bind(tenant)
            .bind(id)
            .bind(seq)
    };
    outbox.execute(&mut **tx).await.map_err(db_error)?;
    Ok(())
}
