#!/usr/bin/env python3
"""CPU time and time spent waiting for a CPU, by kind of thread, from /proc/<pid>/task/*/schedstat
(kernels with CONFIG_SCHED_INFO): for each thread, the ns it ran and the ns it was runnable on a
run queue without a CPU. A kind is a thread's name without its number (sled-io-3 -> sled-io).

    thread_times.py PID...        # one line per kind of the processes' threads: "<kind> <ran ns> <waited ns>"

Used by cpu_per_request.sh (before and after a window) and, as a module, by tail_by_second.sh
(every second) and sched_waits.py (`thread_kind`)."""
import glob
import re
import sys

KERNEL_THREADS = ("kworker", "ksoftirqd", "jbd2", "kswapd")


def thread_kind(name):
    """A thread's kind: its name without its number (sled-io-3 -> sled-io)."""
    return re.sub(r"[-_/:]?\d+.*$", "", name)


def by_kind(pid, tag="", kernel_only=False):
    """{tag + kind: (ran ns, waited ns)} over the threads of process `pid` ("*": every process;
    with `kernel_only`, only the kernel's own workers among them)."""
    kinds = {}
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            ran, waited, _ = open(path).read().split()
            name = open(path[: -len("schedstat")] + "comm").read().strip()
        except (OSError, ValueError):
            continue  # the thread ended
        if kernel_only and not name.startswith(KERNEL_THREADS):
            continue
        kind = tag + thread_kind(name)
        total_ran, total_waited = kinds.get(kind, (0, 0))
        kinds[kind] = (total_ran + int(ran), total_waited + int(waited))
    return kinds


if __name__ == "__main__":
    for pid in sys.argv[1:]:
        kinds = by_kind(pid)
        if not kinds:
            sys.exit(f"no /proc/{pid}/task/*/schedstat: no such process, or a kernel without CONFIG_SCHED_INFO")
        for kind, (ran, waited) in sorted(kinds.items()):
            print(kind, ran, waited)
