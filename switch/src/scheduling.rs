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
//!
//! The two commit threads (the ledger engine and the WAL writer) are the exception
//! (`host.commit_thread_slice_us`): every request waits for each of them in turn, and each
//! mostly sleeps, so a wake-up that waits behind a busy tokio worker or loadgen (up to a
//! scheduler tick, 4 ms on this VM's `HZ=250` kernel) is latency no one used. They run
//! `SCHED_OTHER` asking for a short slice (`sched_setattr`'s `sched_runtime`, which Linux 6.12
//! and later take as the EEVDF slice of a fair thread): a woken commit thread's early
//! deadline lets it preempt at once, and it gives the core back after its short slice.
//! Older kernels have no such slice: they ignore it or refuse the call (a warning is logged
//! and the thread keeps the host's policy).

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

/// `struct sched_attr` as `sched_setattr(2)` takes it (its first version, 48 bytes).
#[cfg(target_os = "linux")]
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    /// For a fair policy, the slice the thread asks for, in ns (Linux 6.12 and later).
    runtime_ns: u64,
    deadline_ns: u64,
    period_ns: u64,
}

/// Puts the calling thread under `SCHED_OTHER` at nice 0, asking for `slice` (a commit
/// thread: see the module's comment). The kernel takes 100 us to 100 ms.
#[cfg(target_os = "linux")]
pub fn prompt_commit_thread(slice: std::time::Duration) -> std::io::Result<()> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        runtime_ns: u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX),
        ..SchedAttr::default()
    };
    // SAFETY: `attr` is a valid, fully initialised sched_attr of the size it declares and
    // outlives the call; pid 0 is the calling thread; no flags.
    let result = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub fn prompt_commit_thread(_slice: std::time::Duration) -> std::io::Result<()> {
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

    /// The running kernel's major and minor version.
    fn kernel_release() -> (u32, u32) {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse().unwrap_or(0));
        (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
    }

    /// The calling thread's policy and requested slice, as `sched_getattr` reports them.
    fn attr_of_this_thread() -> (u32, u64) {
        let mut attr = SchedAttr::default();
        let size = std::mem::size_of::<SchedAttr>() as u32;
        // SAFETY: `attr` is writable and `size` bytes long; pid 0 is the calling thread.
        let result = unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                0,
                &mut attr as *mut SchedAttr,
                size,
                0,
            )
        };
        assert_eq!(result, 0, "{}", std::io::Error::last_os_error());
        (attr.policy, attr.runtime_ns)
    }

    #[test]
    fn a_commit_thread_leaves_batch_for_normal_with_a_short_slice() {
        std::thread::spawn(|| {
            apply_to_this_thread(CpuScheduling::Batch).unwrap();
            let applied = prompt_commit_thread(std::time::Duration::from_micros(100));
            if kernel_release() < (6, 12) {
                return; // no fair slices to ask for: ignored or refused, and logged
            }
            applied.expect("SCHED_OTHER with a slice needs no privilege");
            assert_eq!(attr_of_this_thread(), (libc::SCHED_OTHER as u32, 100_000));
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
