//! The cluster part of the storage contract: membership, shard leases and fenced commits, on every
//! backend that offers them; a backend without them (embedded) must refuse a fenced commit instead of
//! ignoring its fence. No case waits on a clock: a lease given a zero length has lapsed when read.

use crate::backends::Backend;
use jiff::Timestamp;
use schema::TenantId;
use schema::cluster::{ClusterStore, Fence, Lease, Member, NodeId, ShardId};
use schema::fixtures::Live;
use schema::store::StoreError;
use std::sync::Arc;
use std::time::Duration;

/// A case: its name (used in the test name) and its body.
pub type CaseFn = for<'a> fn(&'a Backend) -> futures::future::BoxFuture<'a, ()>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        pub const CASES: &[(&str, CaseFn)] = &[$((stringify!($name), |b| Box::pin($name(b)))),*];
    };
}

/// On a backend without leases (embedded).
pub const WITHOUT_LEASES: &[(&str, CaseFn)] =
    &[("a_backend_without_leases_refuses_a_fenced_commit", |b| {
        Box::pin(a_backend_without_leases_refuses_a_fenced_commit(b))
    })];

/// On CQL only: reservations (a fenced turn reserves its seqs before writing them).
pub const CQL_RESERVATIONS: &[(&str, CaseFn)] = &[
    (
        "a_first_turn_reserved_but_never_written_is_followed_not_reused",
        |b| Box::pin(a_first_turn_reserved_but_never_written_is_followed_not_reused(b)),
    ),
    (
        "a_writer_past_its_lease_window_reserves_but_writes_nothing",
        |b| {
            Box::pin(a_writer_past_its_lease_window_reserves_but_writes_nothing(
                b,
            ))
        },
    ),
];

// On a backend with leases.
cases!(
    a_free_shard_is_taken_by_one_of_two_racing_nodes_with_the_next_epoch,
    a_lease_is_renewed_only_by_its_holder_at_its_epoch,
    a_lapsed_lease_is_taken_over_and_the_old_owners_commits_are_refused,
    a_released_shard_is_free_and_keeps_its_epoch,
    two_fenced_writers_of_one_seq_store_only_one_turn,
    members_are_listed_while_their_heartbeat_is_recent,
);

const LONG: Duration = Duration::from_secs(60);

async fn cluster(b: &Backend) -> Arc<dyn ClusterStore> {
    b.cluster()
        .await
        .unwrap_or_else(|| panic!("the {} backend has no cluster store", b.name))
}

async fn lease_of(store: &dyn ClusterStore, shard: ShardId) -> Lease {
    store
        .leases()
        .await
        .expect("leases")
        .into_iter()
        .find(|l| l.shard == shard)
        .expect("every shard has a lease row")
}

/// Makes sure `shard` is free (released by whoever held it in an earlier case) and answers its epoch.
async fn free(store: &dyn ClusterStore, shard: ShardId) -> u64 {
    let lease = lease_of(store, shard).await;
    if let Some(owner) = lease.owner {
        store
            .release(shard, owner, lease.epoch)
            .await
            .expect("release");
    }
    lease_of(store, shard).await.epoch
}

async fn a_backend_without_leases_refuses_a_fenced_commit(b: &Backend) {
    assert!(b.cluster().await.is_none(), "this backend has leases");
    let store = b.store().await;
    let mut live = Live::new(TenantId::new(), "5511900000001");
    let mut commit = live.inbound("wamid.F1", "oi", Timestamp::now());
    commit.fence = Some(Fence {
        shard: ShardId(1),
        epoch: 1,
    });
    let refused = store.commit(commit).await;
    assert!(
        matches!(refused, Err(StoreError::Unsupported(_))),
        "{refused:?}"
    );
    let stored = store
        .conversation(live.tenant(), live.id())
        .await
        .expect("read");
    assert_eq!(stored, None, "a refused commit wrote something");
}

async fn a_free_shard_is_taken_by_one_of_two_racing_nodes_with_the_next_epoch(b: &Backend) {
    let store = cluster(b).await;
    let shard = ShardId(200);
    let epoch = free(store.as_ref(), shard).await;
    let (a, c) = (NodeId::new(), NodeId::new());
    let (first, second) = tokio::join!(
        store.acquire(shard, a, epoch, LONG),
        store.acquire(shard, c, epoch, LONG)
    );
    let won: Vec<Lease> = [first.expect("acquire"), second.expect("acquire")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(won.len(), 1, "both or neither won: {won:?}");
    assert_eq!(won[0].epoch, epoch + 1);
    let stored = lease_of(store.as_ref(), shard).await;
    assert_eq!(stored.owner, won[0].owner);
    assert_eq!(stored.epoch, epoch + 1);
    assert!(!stored.is_free());
    // Taking it again with the epoch seen before fails: it is held, and the epoch moved on.
    let again = store
        .acquire(shard, NodeId::new(), epoch, LONG)
        .await
        .expect("acquire");
    assert_eq!(again, None);
}

async fn a_lease_is_renewed_only_by_its_holder_at_its_epoch(b: &Backend) {
    let store = cluster(b).await;
    let shard = ShardId(201);
    let epoch = free(store.as_ref(), shard).await;
    let holder = NodeId::new();
    let lease = store
        .acquire(shard, holder, epoch, LONG)
        .await
        .expect("acquire")
        .expect("free shard taken");
    let renewed = store
        .renew(holder, &[(shard, lease.epoch)], LONG)
        .await
        .expect("renew");
    assert_eq!(renewed, vec![shard]);
    let stranger = store
        .renew(NodeId::new(), &[(shard, lease.epoch)], LONG)
        .await
        .expect("renew");
    assert!(stranger.is_empty(), "another node renewed the lease");
    let stale = store
        .renew(holder, &[(shard, lease.epoch - 1)], LONG)
        .await
        .expect("renew");
    assert!(stale.is_empty(), "an old epoch renewed the lease");
}

async fn a_lapsed_lease_is_taken_over_and_the_old_owners_commits_are_refused(b: &Backend) {
    let cluster = cluster(b).await;
    let store = b.store().await;
    let shard = ShardId(202);
    let epoch = free(cluster.as_ref(), shard).await;
    let (old, new) = (NodeId::new(), NodeId::new());
    // A zero-length lease has lapsed by the time anyone reads it: the old owner "paused" at once.
    let stale = cluster
        .acquire(shard, old, epoch, Duration::ZERO)
        .await
        .expect("acquire")
        .expect("taken");
    let mut live = Live::new(TenantId::new(), "5511900000002");
    let mut first = live.inbound("wamid.L1", "antes", Timestamp::now());
    first.fence = Some(Fence {
        shard,
        epoch: stale.epoch,
    });
    store
        .commit(first)
        .await
        .expect("the owner's commit is accepted");

    let seen = lease_of(cluster.as_ref(), shard).await;
    assert!(seen.is_free(), "a zero-length lease still held: {seen:?}");
    let current = cluster
        .acquire(shard, new, seen.epoch, LONG)
        .await
        .expect("acquire")
        .expect("a lapsed lease is taken over");
    assert_eq!(current.epoch, stale.epoch + 1);

    // The new owner commits the next turn with its fence...
    let mut late = live.clone();
    let mut accepted = live.inbound("wamid.L2", "depois", Timestamp::now());
    accepted.fence = Some(Fence {
        shard,
        epoch: current.epoch,
    });
    store
        .commit(accepted)
        .await
        .expect("the new owner's commit");
    // ...and the old owner, waking up with the state it had, commits its own: refused, nothing of it
    // stored.
    let mut refused = late.inbound("wamid.L3", "da pausa", Timestamp::now());
    refused.fence = Some(Fence {
        shard,
        epoch: stale.epoch,
    });
    let answer = store.commit(refused).await;
    assert!(
        matches!(answer, Err(StoreError::Fenced(f)) if f.epoch == stale.epoch),
        "{answer:?}"
    );
    let stored = store
        .conversation(live.tenant(), live.id())
        .await
        .expect("read")
        .expect("conversation");
    assert_eq!(
        stored.last_seq, 3,
        "the fenced commit moved the conversation"
    );
    let events = store
        .events(live.tenant(), live.id(), 0, 10)
        .await
        .expect("events");
    assert_eq!(events.len(), 3, "{events:?}");
    let third = store
        .message(live.tenant(), live.id(), 3)
        .await
        .expect("read");
    assert_eq!(
        third.map(|m| m.provider_message_id),
        Some(Some("wamid.L2".to_string())),
        "the new owner's message was overwritten"
    );
    // The old owner cannot renew either.
    let renewed = cluster
        .renew(old, &[(shard, stale.epoch)], LONG)
        .await
        .expect("renew");
    assert!(renewed.is_empty());
}

async fn a_released_shard_is_free_and_keeps_its_epoch(b: &Backend) {
    let store = cluster(b).await;
    let shard = ShardId(203);
    let epoch = free(store.as_ref(), shard).await;
    let holder = NodeId::new();
    let lease = store
        .acquire(shard, holder, epoch, LONG)
        .await
        .expect("acquire")
        .expect("taken");
    // A release by anyone else, or at another epoch, changes nothing.
    store
        .release(shard, NodeId::new(), lease.epoch)
        .await
        .expect("release");
    store
        .release(shard, holder, lease.epoch + 7)
        .await
        .expect("release");
    assert!(!lease_of(store.as_ref(), shard).await.is_free());
    store
        .release(shard, holder, lease.epoch)
        .await
        .expect("release");
    let released = lease_of(store.as_ref(), shard).await;
    assert!(released.is_free());
    assert_eq!(released.owner, None);
    assert_eq!(
        released.epoch, lease.epoch,
        "a release must never lower the epoch"
    );
    let next = store
        .acquire(shard, NodeId::new(), released.epoch, LONG)
        .await
        .expect("acquire")
        .expect("taken");
    assert_eq!(next.epoch, lease.epoch + 1);
}

async fn two_fenced_writers_of_one_seq_store_only_one_turn(b: &Backend) {
    // Two different turns at the same seq under the same valid fence (two actors of one conversation:
    // a placement bug): one is stored, the other refused, on every backend (CQL included: the seq is
    // reserved with a lightweight transaction in cluster mode).
    let cluster = cluster(b).await;
    let store = b.store().await;
    let shard = ShardId(204);
    let epoch = free(cluster.as_ref(), shard).await;
    let lease = cluster
        .acquire(shard, NodeId::new(), epoch, LONG)
        .await
        .expect("acquire")
        .expect("taken");
    let fence = Some(Fence {
        shard,
        epoch: lease.epoch,
    });
    let mut live = Live::new(TenantId::new(), "5511900000003");
    let mut first = live.inbound("wamid.W1", "um", Timestamp::now());
    first.fence = fence;
    store.commit(first).await.expect("first turn");
    let (mut a, mut c) = (live.clone(), live.clone());
    let mut one = a.inbound("wamid.W2", "de um lado", Timestamp::now());
    let mut other = c.inbound("wamid.W3", "do outro", Timestamp::now());
    one.conversation.stamp_us += 1;
    other.conversation.stamp_us += 2;
    one.fence = fence;
    other.fence = fence;
    let (x, y) = tokio::join!(store.commit(one), store.commit(other));
    let outcomes = [x, y];
    assert_eq!(
        outcomes.iter().filter(|r| r.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|r| matches!(r, Err(StoreError::SeqConflict { .. }))),
        "{outcomes:?}"
    );
    let winner = if outcomes[0].is_ok() {
        "wamid.W2"
    } else {
        "wamid.W3"
    };
    let stored = store
        .message(live.tenant(), live.id(), 3)
        .await
        .expect("read");
    assert_eq!(
        stored.and_then(|m| m.provider_message_id).as_deref(),
        Some(winner)
    );
}

async fn members_are_listed_while_their_heartbeat_is_recent(b: &Backend) {
    let store = cluster(b).await;
    let now = Timestamp::now();
    let member = Member {
        node: NodeId::new(),
        name: "node-a".into(),
        rpc_url: "http://127.0.0.1:7100".into(),
        started_at: now,
        heartbeat_at: now,
    };
    store.heartbeat(&member).await.expect("heartbeat");
    let alive = store.members(LONG).await.expect("members");
    let listed = alive
        .iter()
        .find(|m| m.node == member.node)
        .expect("a fresh member is listed");
    assert_eq!(
        (listed.name.as_str(), listed.rpc_url.as_str()),
        ("node-a", "http://127.0.0.1:7100")
    );
    let within_nothing = store.members(Duration::ZERO).await.expect("members");
    assert!(
        within_nothing.iter().all(|m| m.node != member.node),
        "a heartbeat older than the window is still listed"
    );
    store.leave(member.node).await.expect("leave");
    let after = store.members(LONG).await.expect("members");
    assert!(after.iter().all(|m| m.node != member.node));
}

async fn a_first_turn_reserved_but_never_written_is_followed_not_reused(b: &Backend) {
    // An owner reserved seqs 1..=2 for a new conversation's first turn and stopped (or paused) before
    // writing it: written here straight into the fence table, as that owner's lightweight
    // transaction would have.
    let cluster = cluster(b).await;
    let store = b.store().await;
    let live = Live::new(TenantId::new(), "5511900000009");
    let shard = ShardId::of(&live.id().0);
    let epoch = free(cluster.as_ref(), shard).await;
    let old = cluster
        .acquire(shard, NodeId::new(), epoch, Duration::ZERO)
        .await
        .expect("acquire")
        .expect("taken");
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(&b.config.scylla.nodes)
        .build()
        .await
        .expect("CQL session");
    session
        .query_unpaged(
            format!(
                "INSERT INTO {}.conversation_fences (tenant_id, conversation_id, epoch, last_seq, \
                 turn_stamp) VALUES (?, ?, ?, ?, ?)",
                b.config.scylla.keyspace
            ),
            (
                live.tenant().0,
                live.id().0,
                i64::try_from(old.epoch).expect("epoch"),
                2_i64,
                1_i64,
            ),
        )
        .await
        .expect("reservation written");
    assert_eq!(
        store
            .reserved_seq(live.tenant(), live.id())
            .await
            .expect("read"),
        2
    );
    assert_eq!(
        store
            .conversation(live.tenant(), live.id())
            .await
            .expect("read"),
        None
    );
    // The new owner takes the lapsed lease.
    let seen = lease_of(cluster.as_ref(), shard).await;
    let current = cluster
        .acquire(shard, NodeId::new(), seen.epoch, LONG)
        .await
        .expect("acquire")
        .expect("a lapsed lease is taken over");
    let fence = Some(Fence {
        shard,
        epoch: current.epoch,
    });
    // Reusing the reserved seqs is refused (the old owner may still write them)...
    let mut reuse = live.clone().inbound("wamid.RS1", "oi", Timestamp::now());
    reuse.fence = fence;
    let refused = store.commit(reuse).await;
    assert!(
        matches!(refused, Err(StoreError::SeqConflict { .. })),
        "{refused:?}"
    );
    // ...and the first turn that follows them is stored.
    let mut after = live.clone();
    after.conversation.last_seq = 2;
    let mut first = after.inbound("wamid.RS1", "oi", Timestamp::now());
    first.fence = fence;
    store
        .commit(first)
        .await
        .expect("the first turn after the reservation");
    let stored = store
        .conversation(live.tenant(), live.id())
        .await
        .expect("read")
        .expect("created");
    assert_eq!(stored.last_seq, 4);
    let seqs: Vec<u64> = store
        .events(live.tenant(), live.id(), 0, 10)
        .await
        .expect("events")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![3, 4]);
}

async fn a_writer_past_its_lease_window_reserves_but_writes_nothing(b: &Backend) {
    // A writer that paused between reserving its seqs and writing its turn finds its lease window
    // over: it stops, and what the next owner sees is only the reservation, which it follows.
    let cluster = cluster(b).await;
    let store = b.store().await;
    let mut live = Live::new(TenantId::new(), "5511900000010");
    let shard = ShardId::of(&live.id().0);
    let epoch = free(cluster.as_ref(), shard).await;
    let lease = cluster
        .acquire(shard, NodeId::new(), epoch, LONG)
        .await
        .expect("acquire")
        .expect("taken");
    let mut late = live.inbound("wamid.LATE", "oi", Timestamp::now());
    late.fence = Some(Fence {
        shard,
        epoch: lease.epoch,
    });
    late.write_by = Some(std::time::Instant::now());
    let refused = store.commit(late).await;
    assert!(matches!(refused, Err(StoreError::Fenced(_))), "{refused:?}");
    assert_eq!(
        store
            .conversation(live.tenant(), live.id())
            .await
            .expect("read"),
        None,
        "the turn was written after its lease window"
    );
    assert_eq!(
        store
            .reserved_seq(live.tenant(), live.id())
            .await
            .expect("read"),
        2
    );
}
