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
//! How: after each group the committer notes each hot keyspace's active memtable and keeps a
//! reference to it. When fjall rotates it, the committer hands its reference to the reaper thread,
//! which holds it until it is the only holder left (fjall has flushed it and forgotten it), then drops
//! it, on its own time and under no lock of fjall's. Nothing is read or written through these
//! references: they only move where the memory is freed.
//!
//! `Keyspace::tree` and `AbstractTree` are public but hidden from fjall's docs; the workspace pins
//! fjall to the version read for this (see `Cargo.toml`), and if either went away the build would say
//! so. When the reaper's queue is full, or the reaper could not start, the reference is dropped at
//! once: fjall then frees the memtable as it did before, under its lock, which costs time, never data.

use fjall::{AbstractTree, Keyspace};
use std::any::Any;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

/// A memtable of fjall's, its type erased (lsm-tree's `Memtable` is not re-exported by fjall).
type Memtable = Arc<dyn Any + Send + Sync>;

/// Rotated memtables waiting for the reaper at most (fjall holds writes at 4 sealed per keyspace).
const QUEUE: usize = 256;

/// How often the reaper looks again at the memtables it holds, while it holds any.
const POLL: Duration = Duration::from_millis(10);

/// The committer's side: the active memtable of each hot keyspace, as last seen.
pub(super) struct Keeper {
    watched: Vec<(Keyspace, Memtable)>,
    reaper: Option<(SyncSender<Memtable>, JoinHandle<()>)>,
}

impl Keeper {
    /// Watches `keyspaces` and starts the reaper thread; if the thread cannot start, watches nothing.
    pub(super) fn start(keyspaces: Vec<Keyspace>) -> Self {
        let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUE);
        let reaper = std::thread::Builder::new()
            .name("conversa-reaper".into())
            .spawn(move || run_reaper(receiver));
        match reaper {
            Ok(handle) => Self {
                watched: keyspaces
                    .into_iter()
                    .map(|keyspace| {
                        let active: Memtable = keyspace.tree.active_memtable();
                        (keyspace, active)
                    })
                    .collect(),
                reaper: Some((sender, handle)),
            },
            Err(error) => {
                tracing::warn!(%error, "no memtable reaper: fjall frees memtables under its locks");
                Self {
                    watched: Vec::new(),
                    reaper: None,
                }
            }
        }
    }

    /// After a group: hands every memtable fjall has rotated since the last look to the reaper.
    pub(super) fn observe(&mut self) {
        let Some((sender, _)) = &self.reaper else {
            return;
        };
        for (keyspace, held) in &mut self.watched {
            let active: Memtable = keyspace.tree.active_memtable();
            if Arc::ptr_eq(&active, held) {
                continue;
            }
            let rotated = std::mem::replace(held, active);
            match sender.try_send(rotated) {
                Ok(()) => {}
                // Dropped here, while fjall still holds it: only fjall's last drop frees it.
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
            }
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.watched.clear();
        if let Some((sender, handle)) = self.reaper.take() {
            drop(sender);
            let _ = handle.join();
        }
    }
}

/// Holds each memtable it is given until no one else does, then frees it.
fn run_reaper(receiver: Receiver<Memtable>) {
    let mut held: Vec<Memtable> = Vec::new();
    loop {
        let next = if held.is_empty() {
            receiver.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            receiver.recv_timeout(POLL)
        };
        match next {
            Ok(memtable) => held.push(memtable),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // A count of 1 is this thread's own reference: fjall has let go, and cannot take it again.
        held.retain(|memtable| Arc::strong_count(memtable) > 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjall::{Database, KeyspaceCreateOptions};
    use std::sync::Weak;

    #[test]
    fn a_flushed_memtable_is_freed_by_the_reaper_once_fjall_lets_go_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let keyspace = db
            .keyspace("index", KeyspaceCreateOptions::default)
            .unwrap();
        keyspace.insert("a", "1").unwrap();
        let first: Weak<dyn Any + Send + Sync> = {
            let active: Memtable = keyspace.tree.active_memtable();
            Arc::downgrade(&active)
        };
        let mut keeper = Keeper::start(vec![keyspace.clone()]);

        keyspace.rotate_memtable_and_wait().unwrap();
        keyspace.insert("b", "2").unwrap();
        // fjall forgets old versions (and the memtables in them) at its next rotation or flush.
        keyspace.rotate_memtable_and_wait().unwrap();
        assert_eq!(
            first.strong_count(),
            1,
            "fjall has let go: the keeper's reference is the last, so the free happens where it says"
        );

        keeper.observe();
        let freed = (0..500).any(|_| {
            if first.upgrade().is_none() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
            false
        });
        assert!(freed, "the reaper frees it once it is the only holder");
        assert_eq!(
            keyspace.get("a").unwrap().as_deref(),
            Some(&b"1"[..]),
            "the flushed entries are read from disk"
        );
    }

    #[test]
    fn the_reaper_keeps_a_memtable_someone_else_still_holds() {
        let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUE);
        let reaper = std::thread::spawn(move || run_reaper(receiver));
        let shared: Memtable = Arc::new(vec![0_u8; 16]);
        let watch = Arc::downgrade(&shared);
        sender.send(shared.clone()).unwrap();
        // Freeing `later` means the reaper has looked at everything it holds at least once since.
        let later: Memtable = Arc::new(1_u8);
        let later_watch = Arc::downgrade(&later);
        sender.send(later).unwrap();
        let looked = (0..500).any(|_| {
            if later_watch.upgrade().is_none() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
            false
        });
        assert!(looked, "the reaper frees what only it holds");
        assert_eq!(
            Arc::strong_count(&shared),
            2,
            "the reaper still holds its copy"
        );
        drop(shared);
        drop(sender);
        reaper.join().unwrap();
        assert!(watch.upgrade().is_none(), "freed when the reaper stops");
    }
}
