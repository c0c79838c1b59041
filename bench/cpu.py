"""CPU accounting from /proc: what each server and this process spend, what the rest of the machine
spends meanwhile (it competes with the measurement), and waiting for an idle machine."""

import os
import pathlib
import resource
import time


class CpuMeter:
    """CPU seconds (user + system) used from now on by named groups of processes, by this process
    ("client"), and by everything else on the machine ("others": what competes with the measurement)."""

    def __init__(self, pids_by_name):
        self.pids_by_name = pids_by_name
        self.start = self._snapshot()

    def _snapshot(self):
        values = {name: sum(map(cpu_seconds, pids)) for name, pids in self.pids_by_name.items()}
        values.update(client=_own_cpu_seconds(), machine=machine_busy_seconds(), wall=time.perf_counter())
        return values

    def read(self):
        """({name: CPU seconds, ..., "others": ...}, wall seconds) since the meter was made."""
        end = self._snapshot()
        used = {name: end[name] - self.start[name] for name in end}
        wall, machine = used.pop("wall"), used.pop("machine")
        used["others"] = max(0.0, machine - sum(used.values()))
        return used, wall


def others_cores(meter):
    """How many cores' worth of CPU other processes used since ``meter`` was made."""
    used, wall = meter.read()
    return used["others"] / wall


def machine_busy_seconds():
    """CPU seconds all cores have spent busy since boot (/proc/stat; idle and iowait excluded)."""
    fields = [int(x) for x in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(limit):
    """Wait up to ``limit`` seconds for 3 quiet seconds in a row; returns the seconds waited."""
    start = time.perf_counter()
    quiet = 0
    while quiet < 3 and time.perf_counter() - start < limit:
        quiet = quiet + 1 if busy_cores(1.0) < 0.15 else 0
    return time.perf_counter() - start


def busy_cores(seconds):
    """How many cores' worth of CPU the machine used over ``seconds`` (nothing of ours runs then)."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / seconds


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc/PID/stat utime, stime)."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
