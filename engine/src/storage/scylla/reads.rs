//! Reading the CQL tables: inbox pages walked back day by day (skipping rows of moves still in
//! flight), and a conversation's events or messages walked bucket by bucket.

use super::*;

impl ScyllaStore {
    /// Conversation ids of the inbox in order, newest first, strictly after `cursor`, stopping before
    /// activity older than `since`.
    async fn inbox_ids(
        &self,
        tenant: TenantId,
        view: &InboxView,
        cursor: Option<InboxCursor>,
        since: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<(ConversationId, i64)>> {
        let s = &self.statements;
        let view = view.key();
        let top_day = match cursor {
            Some(c) => day_of(micros(c.last_activity_at)),
            None => i32::MAX,
        };
        let days: Vec<(i32,)> = self
            .rows(&s.select_inbox_days, (tenant.0, &view, top_day))
            .await?;
        let mut ids = Vec::new();
        for (day,) in days {
            if since.is_some_and(|since| day < day_of(since)) || ids.len() >= limit {
                break;
            }
            let want = limit_to_db(limit - ids.len());
            let mut rows: Vec<(i64, Uuid)> = Vec::new();
            match cursor {
                Some(c) if day == top_day => {
                    let at = micros(c.last_activity_at);
                    rows.extend(
                        self.rows::<(i64, Uuid)>(
                            &s.select_inbox_ties,
                            (tenant.0, &view, day, at, c.conversation_id.0, want),
                        )
                        .await?,
                    );
                    rows.extend(
                        self.rows::<(i64, Uuid)>(
                            &s.select_inbox_older,
                            (tenant.0, &view, day, at, want),
                        )
                        .await?,
                    );
                }
                _ => rows.extend(
                    self.rows::<(i64, Uuid)>(&s.select_inbox_day, (tenant.0, &view, day, want))
                        .await?,
                ),
            }
            for (at, id) in rows {
                if since.is_some_and(|since| at < since) || ids.len() >= limit {
                    return Ok(ids);
                }
                ids.push((ConversationId(id), at));
            }
        }
        Ok(ids)
    }

    /// A full page of a view: rows skipped as stale or dangling are made up for by reading on from the
    /// last row read, so a short page always means the end (callers stop paging on one).
    pub(super) async fn listed(
        &self,
        tenant: TenantId,
        view: &InboxView,
        mut cursor: Option<InboxCursor>,
        since: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<Conversation>> {
        let mut page = Vec::new();
        while page.len() < limit {
            let want = limit - page.len();
            let rows = self.inbox_ids(tenant, view, cursor, since, want).await?;
            let fetched = rows.len();
            let last = rows.last().copied();
            page.extend(self.conversations(tenant, view, rows).await?);
            match last {
                Some((id, at)) if fetched == want => {
                    let at = Timestamp::from_microsecond(at)
                        .map_err(|e| StoreError::Corrupt(format!("inbox time: {e}")))?;
                    cursor = Some(InboxCursor {
                        last_activity_at: at,
                        conversation_id: id,
                    });
                }
                _ => break,
            }
        }
        Ok(page)
    }

    /// The conversations an inbox page names. A row whose conversation is missing, or whose time is
    /// not the conversation's (a move not yet complete: the partitions of one logged batch are not
    /// isolated from readers), is skipped rather than failing the page or listing a conversation twice.
    async fn conversations(
        &self,
        tenant: TenantId,
        view: &InboxView,
        rows: Vec<(ConversationId, i64)>,
    ) -> StoreResult<Vec<Conversation>> {
        let reads = rows.into_iter().map(|(id, at)| async move {
            let found = self
                .body::<Conversation>(&self.statements.select_conversation, (tenant.0, id.0))
                .await?;
            Ok::<_, StoreError>(found.filter(|c| {
                micros(c.last_activity_at) == at
                    && (*view == InboxView::All || InboxPosition::of(c).views().contains(view))
            }))
        });
        Ok(try_join_all(reads).await?.into_iter().flatten().collect())
    }

    /// Reads a conversation's stream (events or messages) bucket by bucket.
    pub(super) async fn stream<T: serde::de::DeserializeOwned>(
        &self,
        statement: &PreparedStatement,
        tenant: TenantId,
        conversation: ConversationId,
        window: SeqWindow,
        limit: usize,
        seq_of: fn(&T) -> Seq,
    ) -> StoreResult<Vec<T>> {
        let Some(last) = self.last_seq(tenant, conversation).await? else {
            return Ok(Vec::new());
        };
        // Every bucket query uses the window's own bound; only the partition changes.
        let bound = match window {
            SeqWindow::After(after) => after,
            SeqWindow::Before(before) => before.min(last.saturating_add(1)),
        };
        let mut out = Vec::new();
        for bucket_no in buckets(window, last) {
            if out.len() >= limit {
                break;
            }
            let want = limit_to_db(limit - out.len());
            let b = i64::try_from(bucket_no).unwrap_or(i64::MAX);
            let page: Vec<T> = self
                .bodies(
                    statement,
                    (tenant.0, conversation.0, b, clamp_seq(bound), want),
                )
                .await?;
            // Rows past the stored last seq belong to a turn that never completed.
            out.extend(page.into_iter().filter(|item| seq_of(item) <= last));
        }
        if matches!(window, SeqWindow::Before(_)) {
            // Read newest first, answered in ascending order like every window.
            out.reverse();
        }
        Ok(out)
    }
}

/// The buckets a window reads, in reading order: upwards from the one after `after` to the one
/// holding `last` for `After`, downwards from the one before the bound to bucket 0 for `Before`.
fn buckets(window: SeqWindow, last: Seq) -> Box<dyn Iterator<Item = u64> + Send> {
    match window {
        // Nothing is stored past `last`: no bucket to read.
        SeqWindow::After(after) if after >= last => Box::new(std::iter::empty()),
        SeqWindow::After(after) => Box::new((after.saturating_add(1) / BUCKET)..=(last / BUCKET)),
        SeqWindow::Before(before) => match before.min(last.saturating_add(1)) {
            // Seqs start at 1: nothing lies below 1.
            0 | 1 => Box::new(std::iter::empty()),
            upper => Box::new((0..=((upper - 1) / BUCKET)).rev()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(window: SeqWindow, last: Seq) -> Vec<u64> {
        buckets(window, last).collect()
    }

    #[test]
    fn windows_cross_bucket_boundaries_in_reading_order() {
        assert_eq!(walk(SeqWindow::After(0), 10), vec![0]);
        assert_eq!(walk(SeqWindow::After(10), 10), Vec::<u64>::new());
        assert_eq!(walk(SeqWindow::After(4094), 4096), vec![0, 1]);
        assert_eq!(walk(SeqWindow::After(4095), 8200), vec![1, 2]);
        assert_eq!(walk(SeqWindow::After(9000), 8200), Vec::<u64>::new());
        assert_eq!(walk(SeqWindow::Before(Seq::MAX), 8200), vec![2, 1, 0]);
        assert_eq!(walk(SeqWindow::Before(4096), 9000), vec![0]);
        assert_eq!(walk(SeqWindow::Before(4097), 9000), vec![1, 0]);
        assert_eq!(walk(SeqWindow::Before(1), 9000), Vec::<u64>::new());
        assert_eq!(walk(SeqWindow::Before(Seq::MAX), 0), Vec::<u64>::new());
        assert_eq!(walk(SeqWindow::Before(Seq::MAX), 1), vec![0]);
    }

    #[test]
    fn inbox_days_and_buckets_split_where_expected() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_400_000_000 - 1), 0);
        assert_eq!(day_of(86_400_000_000), 1);
        assert_eq!(bucket(4095).ok(), Some(0));
        assert_eq!(bucket(4096).ok(), Some(1));
    }
}
