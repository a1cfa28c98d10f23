//! Frees fjall's flushed memtables on a thread of ours, outside fjall's locks.
//!
//! Why: in fjall 3.1 (lsm-tree 3.1) the last reference to a flushed memtable is dropped while the
//! keyspace's version lock is held for writing (`SuperVersions::maintenance`, run after a rotation or
//! a flush). Freeing a skiplist of 8 MiB of index entries (tens of thousands of nodes, each freed on a
//! thread that did not allocate it) took 15–35 ms on the CI machine, and every write to that keyspace
//! waited for it: the committer's batch, and so every webhook behind it. Those waits were the tail of
//! the webhook→agent latency (`strace` of the committer: its only waits over 10 ms were on that lock,
//! never on fsync; `perf`: a quarter of fjall's worker samples were that drop).
//!
//! How: the reaper thread keeps a reference to each hot keyspace's active memtable. When fjall
//! rotates one, the reaper keeps its reference until it is the only holder left (fjall has flushed
//! the memtable and forgotten it), then drops it, on its own time and under no lock of fjall's.
//! Nothing is read or written through these references: they only move where the memory is freed.
//! The committer only signals that it wrote (a `try_send` into a channel of one slot); the reaper looks
//! every 10 ms while it holds a rotated memtable or has been signalled in the last second, and
//! sleeps in `recv` otherwise, so an idle node has no wake-ups. It holds at most one memtable per
//! watched keyspace beyond fjall's own: the one fjall has just let go of, for at most 10 ms while
//! writes come. One that fjall rotates by itself on an idle node (to free an old journal) is freed
//! at the next write.
//!
//! `Keyspace::tree` and `AbstractTree` are public but hidden from fjall's docs; the workspace pins
//! fjall and lsm-tree to the versions read for this (see `Cargo.toml`), and if either went away the
//! build would say so. If the reaper cannot start, or two rotations of one keyspace fall between two
//! looks, fjall frees that memtable as it did before, under its lock: that costs time, never data.

use fjall::{AbstractTree, Keyspace};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A memtable of fjall's (lsm-tree's type: fjall does not re-export it).
type Memtable = Arc<lsm_tree::Memtable>;

/// How often the reaper looks, while it has reason to.
const POLL: Duration = Duration::from_millis(10);

/// How long after the last write the reaper keeps looking: fjall rotates a memtable after the write
/// that filled it, on its own thread.
const LINGER: Duration = Duration::from_secs(1);

/// The committer's handle on the reaper thread.
pub(super) struct Keeper {
    written: Option<SyncSender<()>>,
    reaper: Option<JoinHandle<()>>,
}

impl Keeper {
    /// Starts the reaper thread watching `keyspaces` (without it, fjall frees as before).
    pub(super) fn start(keyspaces: Vec<Keyspace>) -> Self {
        let (written, signals) = std::sync::mpsc::sync_channel(1);
        let reaper = Reaper::watching(keyspaces);
        match std::thread::Builder::new()
            .name("conversa-reaper".into())
            .spawn(move || reaper.run(signals))
        {
            Ok(handle) => Self {
                written: Some(written),
                reaper: Some(handle),
            },
            Err(error) => {
                tracing::warn!(%error, "no memtable reaper: fjall frees memtables under its locks");
                Self {
                    written: None,
                    reaper: None,
                }
            }
        }
    }

    /// After a group: tells the reaper there was a write (never blocks; a pending signal suffices).
    pub(super) fn written(&self) {
        if let Some(written) = &self.written {
            let _ = written.try_send(());
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        drop(self.written.take());
        if let Some(handle) = self.reaper.take() {
            let _ = handle.join();
        }
    }
}

/// The memtables the reaper holds.
struct Reaper {
    /// Each watched keyspace with its active memtable, as last seen.
    watched: Vec<(Keyspace, Memtable)>,
    /// Rotated memtables, held until no one else does.
    rotated: Vec<Memtable>,
}

impl Reaper {
    fn watching(keyspaces: Vec<Keyspace>) -> Self {
        let watched = keyspaces
            .into_iter()
            .map(|keyspace| {
                let active = keyspace.tree.active_memtable();
                (keyspace, active)
            })
            .collect();
        Self {
            watched,
            rotated: Vec::new(),
        }
    }

    fn run(mut self, signals: Receiver<()>) {
        let mut last_write = None::<Instant>;
        loop {
            let lingering = last_write.is_some_and(|at| at.elapsed() < LINGER);
            if self.rotated.is_empty() && !lingering {
                // Nothing to do until the next write: sleep without wake-ups.
                if signals.recv().is_err() {
                    return;
                }
                last_write = Some(Instant::now());
            } else {
                // A fixed pace, not a wake-up per group: the committer's signals wait in the slot.
                std::thread::sleep(POLL);
                match signals.try_recv() {
                    Ok(()) => last_write = Some(Instant::now()),
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            self.look();
            self.sweep();
        }
    }

    /// Takes over every memtable fjall has rotated since the last look.
    fn look(&mut self) {
        for (keyspace, held) in &mut self.watched {
            let active = keyspace.tree.active_memtable();
            if !Arc::ptr_eq(&active, held) {
                self.rotated.push(std::mem::replace(held, active));
            }
        }
    }

    /// Frees every rotated memtable no one else holds. A count of 1 is the reaper's own reference:
    /// fjall has let go, and cannot take it again.
    fn sweep(&mut self) {
        self.rotated
            .retain(|memtable| Arc::strong_count(memtable) > 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjall::{Database, KeyspaceCreateOptions};
    use std::sync::Weak;

    /// Polls (up to 5 s) until `done`.
    fn eventually(mut done: impl FnMut() -> bool) -> bool {
        (0..500).any(|_| {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
            false
        })
    }

    #[test]
    fn a_flushed_memtable_is_freed_by_the_reaper_once_fjall_lets_go_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let keyspace = db
            .keyspace("index", KeyspaceCreateOptions::default)
            .unwrap();
        keyspace.insert("a", "1").unwrap();
        let first: Weak<lsm_tree::Memtable> = Arc::downgrade(&keyspace.tree.active_memtable());
        let keeper = Keeper::start(vec![keyspace.clone()]);

        keyspace.rotate_memtable_and_wait().unwrap();
        keyspace.insert("b", "2").unwrap();
        // fjall forgets old versions (and the memtables in them) at its next rotation or flush.
        keyspace.rotate_memtable_and_wait().unwrap();
        assert!(
            eventually(|| first.strong_count() == 1),
            "fjall lets go, and the reaper's reference is the last: the free happens where it says"
        );

        keeper.written();
        assert!(
            eventually(|| first.upgrade().is_none()),
            "the reaper frees it after a write"
        );
        assert_eq!(
            keyspace.get("a").unwrap().as_deref(),
            Some(&b"1"[..]),
            "the flushed entries are read from disk"
        );
    }

    #[test]
    fn the_reaper_keeps_a_rotated_memtable_until_it_is_the_last_holder() {
        let mut reaper = Reaper::watching(Vec::new());
        let shared: Memtable = Arc::new(lsm_tree::Memtable::new(1));
        let only_ours: Memtable = Arc::new(lsm_tree::Memtable::new(2));
        let (shared_watch, ours_watch) = (Arc::downgrade(&shared), Arc::downgrade(&only_ours));
        reaper.rotated = vec![shared.clone(), only_ours];

        reaper.sweep();
        assert!(ours_watch.upgrade().is_none(), "freed: no one else held it");
        assert_eq!(
            Arc::strong_count(&shared),
            2,
            "kept while someone else holds it"
        );

        drop(shared);
        reaper.sweep();
        assert!(
            shared_watch.upgrade().is_none(),
            "freed once the reaper is the last holder"
        );
    }
}
