//! Repository locks: `locks/<id>` objects, sealed like snapshot records.
//!
//! Snapshots, imports, exports and restores take shared locks and run side
//! by side; forget, prune and repairs take the exclusive lock. Acquiring
//! writes our lock first, then lists the others: of two processes racing,
//! at least one sees the other and backs off (with random jitter, so they
//! do not collide forever). A lock of a process that no longer runs on this
//! host is removed on sight; locks of other hosts are never guessed stale:
//! `opc-store unlock --remove-all` is for the operator who knows.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Repository;
use crate::error::{Error, Result};
use crate::id::Id;

const DIR: &str = "locks";

/// Shared or exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// Many at once (snapshot, restore, import, export).
    Shared,
    /// Alone (forget, prune, repair).
    Exclusive,
}

/// What a lock says about its holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Shared or exclusive.
    pub kind: LockKind,
    /// Host of the holder.
    pub host: String,
    /// Process id of the holder.
    pub pid: u32,
    /// When it was taken (RFC 3339).
    pub time: String,
    /// What the holder runs, e.g. `snapshot`.
    pub command: String,
}

impl LockInfo {
    /// One line for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} lock held by `{}` (pid {} on {}) since {}",
            match self.kind {
                LockKind::Shared => "a shared",
                LockKind::Exclusive => "an exclusive",
            },
            self.command,
            self.pid,
            self.host,
            self.time
        )
    }

    /// Whether the holder is a process of this host that no longer runs.
    pub fn is_dead_here(&self) -> bool {
        if self.host != crate::hostname() {
            return false;
        }
        crate::util::process_gone(self.pid as i32)
    }
}

/// A held lock; released on drop.
pub struct RepoLock<'r> {
    repo: &'r Repository,
    id: Id,
    kind: LockKind,
}

impl RepoLock<'_> {
    /// Shared or exclusive.
    pub fn kind(&self) -> LockKind {
        self.kind
    }

    /// Fails unless this is the exclusive lock (for operations that delete).
    pub fn require_exclusive(&self) -> Result<()> {
        match self.kind {
            LockKind::Exclusive => Ok(()),
            LockKind::Shared => Err(Error::Locked(
                "this operation needs the exclusive lock".into(),
            )),
        }
    }
}

impl Drop for RepoLock<'_> {
    fn drop(&mut self) {
        if let Err(e) = self
            .repo
            .backend()
            .delete(&format!("{DIR}/{}", self.id.to_hex()))
        {
            tracing::warn!("could not release lock {}: {e}", self.id.short());
        }
    }
}

impl Repository {
    /// Takes a lock of `kind` for `command`, waiting up to `wait` for
    /// conflicting holders; `on_wait` is told once whom we wait for.
    pub fn lock(
        &self,
        kind: LockKind,
        command: &str,
        wait: Duration,
        on_wait: &dyn Fn(&LockInfo),
    ) -> Result<RepoLock<'_>> {
        let deadline = Instant::now() + wait;
        let mut told = false;
        loop {
            let info = LockInfo {
                kind,
                host: crate::hostname(),
                pid: std::process::id(),
                time: chrono::Local::now().fixed_offset().to_rfc3339(),
                command: command.to_string(),
            };
            let id = Id::random();
            let json = serde_json::to_vec(&info).expect("lock serializes");
            self.write_object(DIR, &id, &json)?;
            let mine = RepoLock {
                repo: self,
                id,
                kind,
            };
            let conflict = self
                .locks()?
                .into_iter()
                .filter(|(other, _)| *other != id)
                .find(|(_, o)| kind == LockKind::Exclusive || o.kind == LockKind::Exclusive);
            let Some((_, holder)) = conflict else {
                // What we saw at open may be stale: a prune may have run
                // while we waited. Work from what the lock now protects.
                // A rotation or re-encryption may have run while we waited;
                // our keyring could then lack the keys others now use.
                self.check_slots_unchanged()?;
                self.sync_packs()?;
                self.sync_snapshot_cache()?;
                return Ok(mine);
            };
            drop(mine);
            if Instant::now() >= deadline {
                return Err(Error::Locked(format!(
                    "the repository is locked: {}; wait for it with --lock-wait DURATION, or if that process is gone, run `opc-store unlock`{}",
                    holder.describe(),
                    if holder.host == crate::hostname() { "" } else { " --remove-all (it runs on another host: make sure it has stopped)" }
                )));
            }
            if !told {
                on_wait(&holder);
                told = true;
            }
            let jitter = u64::from(Id::random().0[0]) * 4;
            let left = deadline.saturating_duration_since(Instant::now());
            std::thread::sleep(Duration::from_millis(200 + jitter).min(left));
        }
    }

    /// Every readable lock, after removing those of dead local processes.
    pub fn locks(&self) -> Result<Vec<(Id, LockInfo)>> {
        let mut out = Vec::new();
        for id in self.list_objects(DIR)? {
            // A lock released between listing and reading is simply gone.
            let Ok(plain) = self.read_object(DIR, &id) else {
                continue;
            };
            let Ok(info) = serde_json::from_slice::<LockInfo>(&plain) else {
                continue;
            };
            if info.is_dead_here() {
                tracing::info!("removing stale lock: {}", info.describe());
                self.backend().delete(&format!("{DIR}/{}", id.to_hex()))?;
                continue;
            }
            out.push((id, info));
        }
        Ok(out)
    }

    /// Removes stale locks (dead local processes), or with `all` every lock.
    /// Returns what was removed.
    pub fn remove_locks(&self, all: bool) -> Result<Vec<LockInfo>> {
        let mut removed = Vec::new();
        for id in self.list_objects(DIR)? {
            let info = self
                .read_object(DIR, &id)
                .ok()
                .and_then(|p| serde_json::from_slice::<LockInfo>(&p).ok());
            let stale = info.as_ref().is_none_or(LockInfo::is_dead_here);
            if all || stale {
                self.backend().delete(&format!("{DIR}/{}", id.to_hex()))?;
                if let Some(i) = info {
                    removed.push(i);
                }
            }
        }
        Ok(removed)
    }
}
