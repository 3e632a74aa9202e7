//! The Linux scheduling policy of the host's threads (`host.cpu_scheduling`).
//!
//! A request crosses three threads (a tokio worker, the ledger engine, the WAL writer and back),
//! and each hand-off wakes the next one. Under the default policy a woken thread may preempt
//! the one that woke it, which usually still has work to hand over (the WAL thread wakes every
//! request of a group in turn): two context switches for one wake-up. `SCHED_BATCH` marks the
//! threads as throughput work, so a wake-up waits for the running thread to block or use up its
//! slice instead (docs/BENCHMARKS.md has the figures). It needs no privilege, and every thread
//! inherits it from the one that creates it, so it is set once, on the main thread, before
//! any other starts. (The snapshot thread steps down to `SCHED_IDLE` while it writes a
//! periodic snapshot and comes back to this policy: `ledger::engine::priority`.)

use serde::Deserialize;

/// How the kernel schedules the host's threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuScheduling {
    /// `SCHED_BATCH`: a woken thread does not preempt the running one.
    Batch,
    /// `SCHED_OTHER`, the kernel's default.
    Normal,
}

#[cfg(target_os = "linux")]
impl CpuScheduling {
    fn policy(self) -> libc::c_int {
        match self {
            CpuScheduling::Batch => libc::SCHED_BATCH,
            CpuScheduling::Normal => libc::SCHED_OTHER,
        }
    }
}

/// Puts the calling thread, and so every thread it starts afterwards, under `scheduling`.
#[cfg(target_os = "linux")]
pub fn apply_to_this_thread(scheduling: CpuScheduling) -> std::io::Result<()> {
    // Both policies take priority 0; pid 0 is the calling thread.
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call.
    if unsafe { libc::sched_setscheduler(0, scheduling.policy(), &param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere the policy is left to the system.
#[cfg(not(target_os = "linux"))]
pub fn apply_to_this_thread(_scheduling: CpuScheduling) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The policy the calling thread runs under, as `sched_getscheduler` reports it.
    fn policy_of_this_thread() -> std::io::Result<libc::c_int> {
        // SAFETY: no pointers; pid 0 is the calling thread.
        match unsafe { libc::sched_getscheduler(0) } {
            -1 => Err(std::io::Error::last_os_error()),
            policy => Ok(policy),
        }
    }

    #[test]
    fn threads_started_after_batch_inherit_it_and_normal_undoes_it() {
        // On a thread of its own: the test harness's threads keep their policy.
        std::thread::spawn(|| {
            apply_to_this_thread(CpuScheduling::Batch).expect("SCHED_BATCH needs no privilege");
            assert_eq!(policy_of_this_thread().unwrap(), libc::SCHED_BATCH);
            let child = std::thread::spawn(policy_of_this_thread).join().unwrap();
            assert_eq!(child.unwrap(), libc::SCHED_BATCH);
            apply_to_this_thread(CpuScheduling::Normal).unwrap();
            assert_eq!(policy_of_this_thread().unwrap(), libc::SCHED_OTHER);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_configuration_names_the_policies_in_lowercase() {
        #[derive(Deserialize)]
        struct Wrapper {
            cpu_scheduling: CpuScheduling,
        }
        let parse = |text: &str| toml::from_str::<Wrapper>(text).map(|w| w.cpu_scheduling);
        assert_eq!(
            parse("cpu_scheduling = 'batch'").unwrap(),
            CpuScheduling::Batch
        );
        assert_eq!(
            parse("cpu_scheduling = 'normal'").unwrap(),
            CpuScheduling::Normal
        );
        assert!(parse("cpu_scheduling = 'fifo'").is_err());
    }
}
