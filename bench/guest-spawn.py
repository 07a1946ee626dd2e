"""Task source for the in-guest benchmarks (run inside the test guest only, by bench/guest-bench.ts).

    python3 bench/guest-spawn.py threads CGROUP_FILE

Moves itself into a cgroup (writes its pid to CGROUP_FILE, e.g. .../bench-src/cgroup.procs), then reads target
counts from stdin, one per line, and grows to that many tasks (itself plus threads, which inherit the cgroup),
answering "ready N PID" on stdout. Threads block on a lock forever; they are created while the process is pinned
to one CPU (no cross-CPU wake-up per thread under TCG), then every thread gets all CPUs back, so no thread has a
narrower mask than a normal one. Exits, and so ends its threads, when stdin closes.
"""
import _thread
import os
import sys
import threading


def main() -> None:
    kind, cgroup_file = sys.argv[1], sys.argv[2]
    if kind != "threads":
        raise SystemExit(f"unknown kind {kind}")
    with open(cgroup_file, "w") as f:
        f.write(str(os.getpid()))
    all_cpus = os.sched_getaffinity(0)
    threading.stack_size(32 * 1024)
    lock = _thread.allocate_lock()
    lock.acquire()
    task_dir = f"/proc/{os.getpid()}/task"
    count = 1
    for line in sys.stdin:
        want = int(line)
        if want > count:
            before = set(os.listdir(task_dir))
            os.sched_setaffinity(0, {min(all_cpus)})
            for _ in range(want - count):
                _thread.start_new_thread(lock.acquire, ())
            while len(os.listdir(task_dir)) < want:
                pass
            for tid in set(os.listdir(task_dir)) - before:
                os.sched_setaffinity(int(tid), all_cpus)
            os.sched_setaffinity(0, all_cpus)
            count = want
        sys.stdout.write(f"ready {count} {os.getpid()}\n")
        sys.stdout.flush()


main()
