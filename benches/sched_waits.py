#!/usr/bin/env python3
"""Who waited for a CPU, and behind whom, from `perf sched timehist --state` output (one line
per time a thread left a CPU: when, which CPU, the thread, its wait, its scheduling delay and
its run time in ms, and its state as it left: R when preempted).

    sched_waits.py TIMEHIST HOST_PID LOADGEN_PID [HOST_NAME]   # HOST_NAME: bursar unless given

Prints how idle the machine's CPUs were, then per kind of thread of the host (bursar or the
echo host) and of loadgen: the time it ran, the time it was runnable but waited for a CPU
(after a wake-up, perf's "sch delay"; after a preemption, its "wait time"), the part of that
wait during which some other CPU was idle (a thread queued on a busy CPU while another could
have run it), and the threads that ran on its CPU while it waited ("<idle>": the CPU was
waking up). Used by cpu_placement.sh."""
import bisect
import collections
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from thread_times import thread_kind  # noqa: E402 (beside this script, not installed)

LINE = re.compile(
    r"\s*([\d.]+)\s+\[(\d+)\]\s+(.+?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([A-Z])\s*$"
)


def kind(task, labels):
    """"bursar:ledger-wal", "loadgen:tokio-rt-worker", "<idle>", "kworker" and so on."""
    if task.startswith("<idle>"):
        return "<idle>"
    found = re.match(r"(.*)\[(\d+)(?:/(\d+))?\]$", task)
    if not found:
        return task
    name, pid = found.group(1), found.group(3) or found.group(2)
    name = thread_kind(name)
    return f"{labels[pid]}:{name}" if pid in labels else name


def runs(path, labels):
    """(cpu, kind, runnable since, started at, ended at) per line, in seconds."""
    preempted = set()  # threads whose last run ended in a preemption: still runnable
    for line in open(path):
        found = LINE.match(line)
        if not found:
            continue
        end, cpu, task = float(found.group(1)), int(found.group(2)), found.group(3).strip()
        wait, delay, ran = (float(found.group(i)) / 1e3 for i in (4, 5, 6))
        # After a preemption the whole wait was on a run queue; after a sleep, the delay.
        queued = wait if task in preempted else delay
        if found.group(7) == "R":
            preempted.add(task)
        else:
            preempted.discard(task)
        start = end - ran
        yield cpu, kind(task, labels), start - queued, start, end


class Timeline:
    """One CPU's runs in time order (they do not overlap): how long a kind ran in a window."""

    def __init__(self, runs):
        self.runs = sorted(runs)
        self.ends = [end for _, end, _ in self.runs]

    def within(self, a, b):
        """(kind, from, to) of each run, or part of one, between a and b."""
        i = bisect.bisect_right(self.ends, a)
        while i < len(self.runs) and self.runs[i][0] < b:
            start, end, what = self.runs[i]
            yield what, max(a, start), min(b, end)
            i += 1


def union_length(intervals):
    """Seconds covered by at least one of the (from, to) intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def main():
    path, host, loadgen = sys.argv[1:4]
    host_name = sys.argv[4] if len(sys.argv) > 4 else "bursar"
    labels = {host: host_name, loadgen: "loadgen"}
    all_runs = list(runs(path, labels))
    if not all_runs:
        sys.exit(f"sched_waits.py: no scheduling records in {path}")
    by_cpu = collections.defaultdict(list)
    for cpu, what, _, start, end in all_runs:
        by_cpu[cpu].append((start, end, what))
    cpus = sorted(by_cpu)
    timelines = {cpu: Timeline(by_cpu[cpu]) for cpu in cpus}
    span = max(r[4] for r in all_runs) - min(r[3] for r in all_runs)
    idle_total = sum(e - s for cpu in cpus for s, e, what in by_cpu[cpu] if what == "<idle>")
    print(f"{len(cpus)} CPUs over {span:.2f} s: idle {100 * idle_total / (span * len(cpus)):.1f} %")

    ran = collections.Counter()
    waited = collections.Counter()
    waited_with_idle = collections.Counter()
    behind = collections.defaultdict(collections.Counter)
    for cpu, what, woken, start, end in all_runs:
        if what == "<idle>" or not what.startswith((host_name + ":", "loadgen:")):
            continue
        ran[what] += end - start
        waited[what] += start - woken
        if start <= woken:
            continue
        waited_with_idle[what] += union_length(
            (a, b)
            for other in cpus
            if other != cpu
            for running, a, b in timelines[other].within(woken, start)
            if running == "<idle>"
        )
        for running, a, b in timelines[cpu].within(woken, start):
            behind[what][running] += b - a

    ms_per_s = 1e3 / span
    print(f"{'thread kind':28} {'ran':>8} {'waited':>8} {'of it, another CPU idle':>24}   (ms per second)  waited behind")
    for what, _ in ran.most_common():
        if ran[what] * ms_per_s < 5:
            continue
        top = ", ".join(
            f"{other} {t * ms_per_s:.0f}" for other, t in behind[what].most_common(4)
        )
        print(
            f"{what:28} {ran[what] * ms_per_s:8.0f} {waited[what] * ms_per_s:8.0f} "
            f"{waited_with_idle[what] * ms_per_s:24.0f}   {top}"
        )


if __name__ == "__main__":
    main()
