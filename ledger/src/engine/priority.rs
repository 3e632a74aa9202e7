//! The snapshot thread's CPU priority.
//!
//! A periodic snapshot is background work: it runs as `SCHED_IDLE`, on a core nothing else
//! wants, and a commit thread or a tokio worker that wakes takes the core from it at once. At
//! nice 10 it kept the core for the rest of its slice: the seconds with a snapshot had a p99
//! of 9-30 ms against 5-7 ms (docs/BENCHMARKS.md). A snapshot someone waits for (the close
//! of a business day), or one a saturated machine starved for [`BACKGROUND_FOR`], runs at
//! nice 10 instead, under the policy the thread started with (the host's `SCHED_BATCH`, or
//! `SCHED_OTHER`).
//!
//! Linux lets a thread lower its own priority freely, but leaving `SCHED_IDLE` needs
//! `CAP_SYS_NICE` or an `RLIMIT_NICE` of at least 10 (systemd: `LimitNICE=10`); without
//! them a raise fails, is logged once, and the snapshot stays in the background.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How long a background snapshot may wait for idle cores before it is raised to nice 10:
/// a snapshot takes about a second of CPU, and the WAL is trimmed only behind one.
pub(crate) const BACKGROUND_FOR: Duration = Duration::from_secs(5);

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Priority {
    /// `SCHED_IDLE`: only the CPU time no other thread wants.
    Background,
    /// The thread's starting policy at nice 10: a fair share, below the commit path's
    /// threads (nice 0).
    Lowered,
}

#[cfg(target_os = "linux")]
const LOWERED_NICE: libc::c_int = 10;

/// The snapshot thread as other threads see it: its kernel thread id, once it has started.
#[derive(Debug, Default)]
pub(crate) struct SnapshotThread {
    tid: AtomicI32,
    /// The policy the thread started with, which [`Priority::Lowered`] returns to.
    policy: AtomicI32,
    /// A raise already failed: warned once, not tried again.
    cannot_raise: AtomicBool,
}

impl SnapshotThread {
    /// Called by the snapshot thread itself when it starts.
    pub(crate) fn register_current(&self) {
        self.policy.store(current_policy(), Relaxed);
        self.tid.store(current_tid(), Relaxed);
    }

    /// Sets the snapshot thread's priority. Best effort: a failure is logged (a raise once)
    /// and leaves the priority as it was.
    pub(crate) fn set(&self, priority: Priority) {
        let tid = self.tid.load(Relaxed);
        if tid == 0 || (priority == Priority::Lowered && self.cannot_raise.load(Relaxed)) {
            return;
        }
        if let Err(error) = set_priority(tid, priority, self.policy.load(Relaxed)) {
            if priority == Priority::Background {
                tracing::warn!(%error, "cannot put the snapshot thread in the background");
            } else if !self.cannot_raise.swap(true, Relaxed) {
                tracing::warn!(
                    %error,
                    "cannot raise the snapshot thread out of SCHED_IDLE (needs CAP_SYS_NICE or \
                     RLIMIT_NICE >= 10): snapshots get only idle CPU time"
                );
            }
        }
    }
}

/// Kept by the WAL thread: raises a background snapshot that has waited too long.
#[derive(Debug, Default)]
pub(crate) struct StarvationWatch {
    since: Option<Instant>,
}

impl StarvationWatch {
    /// A background snapshot was handed to the snapshot thread.
    pub(crate) fn started(&mut self) {
        self.since = Some(Instant::now());
    }

    /// Raises the snapshot thread if the background snapshot is still being written after
    /// [`BACKGROUND_FOR`]. `in_flight`: snapshots handed over and not yet written.
    pub(crate) fn check(&mut self, in_flight: u64, thread: &SnapshotThread) {
        let Some(since) = self.since else { return };
        if in_flight == 0 {
            self.since = None;
        } else if since.elapsed() >= BACKGROUND_FOR {
            self.since = None;
            tracing::info!(
                waited_ms = since.elapsed().as_millis() as u64,
                "snapshot starved of idle CPU: raised to nice 10"
            );
            thread.set(Priority::Lowered);
        }
    }
}

#[cfg(target_os = "linux")]
fn current_tid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

#[cfg(not(target_os = "linux"))]
fn current_tid() -> i32 {
    0
}

#[cfg(target_os = "linux")]
fn current_policy() -> i32 {
    // SAFETY: no pointers; pid 0 is the calling thread.
    match unsafe { libc::sched_getscheduler(0) } {
        -1 => libc::SCHED_OTHER,
        policy => policy,
    }
}

#[cfg(not(target_os = "linux"))]
fn current_policy() -> i32 {
    0
}

/// `sched_setscheduler` and `setpriority` apply to one thread when given its tid. `lowered`:
/// the policy [`Priority::Lowered`] sets.
#[cfg(target_os = "linux")]
fn set_priority(tid: i32, priority: Priority, lowered: i32) -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    let check = |result: libc::c_int| {
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: plain system calls on a thread id; `param` outlives the call.
    unsafe {
        match priority {
            Priority::Background => check(libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param)),
            Priority::Lowered => {
                check(libc::sched_setscheduler(tid, lowered, &param))?;
                check(libc::setpriority(
                    libc::PRIO_PROCESS,
                    tid as libc::id_t,
                    LOWERED_NICE,
                ))
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn set_priority(_tid: i32, _priority: Priority, _lowered: i32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn policy_and_nice() -> (libc::c_int, libc::c_int) {
        // SAFETY: plain queries of the calling thread.
        unsafe {
            let tid = current_tid();
            (
                libc::sched_getscheduler(tid),
                libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t),
            )
        }
    }

    /// On a thread started under `policy`: lowered, in the background, lowered again.
    fn background_then_lowered_under(policy: libc::c_int) {
        let thread = SnapshotThread::default();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let param = libc::sched_param { sched_priority: 0 };
                    // SAFETY: `param` outlives the call; pid 0 is this thread.
                    let set = unsafe { libc::sched_setscheduler(0, policy, &param) };
                    assert_eq!(set, 0, "policies at priority 0 need no privilege");
                    thread.register_current();
                    thread.set(Priority::Lowered);
                    assert_eq!(policy_and_nice(), (policy, 10));
                    thread.set(Priority::Background);
                    assert_eq!(policy_and_nice().0, libc::SCHED_IDLE);
                    thread.set(Priority::Lowered);
                    if !thread.cannot_raise.load(Relaxed) {
                        assert_eq!(policy_and_nice(), (policy, 10), "back to its own policy");
                    }
                })
                .join()
                .unwrap();
        });
    }

    #[test]
    fn background_then_lowered_on_the_registered_thread_only() {
        background_then_lowered_under(libc::SCHED_OTHER);
        assert_eq!(
            policy_and_nice().0,
            libc::SCHED_OTHER,
            "the test's thread is untouched"
        );
    }

    #[test]
    fn lowered_returns_to_the_policy_the_thread_started_with() {
        background_then_lowered_under(libc::SCHED_BATCH);
    }

    #[test]
    fn an_unregistered_thread_is_left_alone() {
        let before = policy_and_nice();
        SnapshotThread::default().set(Priority::Background);
        assert_eq!(policy_and_nice(), before);
    }

    #[test]
    fn the_watch_raises_only_a_snapshot_still_in_flight_after_the_wait() {
        let thread = SnapshotThread::default();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    thread.register_current();
                    thread.set(Priority::Background);
                    let mut watch = StarvationWatch::default();
                    watch.started();
                    watch.check(1, &thread);
                    assert_eq!(policy_and_nice().0, libc::SCHED_IDLE, "not waited long yet");
                    watch.since = Some(Instant::now() - BACKGROUND_FOR);
                    watch.check(0, &thread);
                    assert_eq!(policy_and_nice().0, libc::SCHED_IDLE, "written meanwhile");
                    assert!(watch.since.is_none());
                    watch.since = Some(Instant::now() - BACKGROUND_FOR);
                    watch.check(1, &thread);
                    assert!(watch.since.is_none(), "raised once");
                    if !thread.cannot_raise.load(Relaxed) {
                        assert_eq!(policy_and_nice(), (libc::SCHED_OTHER, 10));
                    }
                })
                .join()
                .unwrap();
        });
    }
}
