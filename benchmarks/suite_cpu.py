"""Where the test suite's CPU goes: runs pytest with the given arguments and samples every process on the machine
once a second, so the tests that burn the two cores can be told from those that wait, and what burns them (pytest
itself, Ray's workers and actors by name, the raylet, PostgreSQL, Chromium, Tesseract, Label Studio, Java).

Each second's CPU (every process's user + system time since the last sample, read from ``/proc``) goes to the test
that was running then, as a small plugin writes it down at each test's start. Printed: the machine's CPU against
the wall time (cores busy), the CPU per kind of process, and the tests that took the most CPU with what took it.
CPU of processes that started and ended between two samples is counted in the machine's total (``/proc/stat``) but
not by kind ("unseen"). Linux only.

    python benchmarks/suite_cpu.py [pytest arguments, e.g. tests/scheduler -m "not slow"]
    python benchmarks/suite_cpu.py --run bash .ci/run    # any command that runs pytest (the plugin goes in PYTEST_ADDOPTS)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PLUGIN = '''
import os
def pytest_runtest_logstart(nodeid, location):
    with open(os.environ["SUITE_CPU_CURRENT"], "w") as f:
        f.write(nodeid)
'''
KINDS = [("raylet", "raylet"), ("gcs_server", "ray gcs"), ("dashboard", "ray dashboard"), ("postgres", "postgresql"),
         ("chrom", "chromium"), ("tesseract", "tesseract"), ("label-studio", "label studio"), ("label_studio", "label studio"),
         ("java", "java (spark)"), ("uvicorn", "uvicorn"), ("annoray up", "annoray up"), ("bin/annoray", "annoray cli")]


def kind(pid: int, root: int, cmdline: str) -> str:
    if pid == root:
        return "pytest"
    if cmdline.startswith("ray::"):  # a Ray worker's title: ray::IDLE, ray::Actor.method, ray::ServeReplica:app:dep
        return "ray::" + re.split(r"[.:\s]", cmdline[5:], maxsplit=1)[0]
    for needle, name in KINDS:
        if needle in cmdline:
            return name
    if "/ray/" in cmdline:
        return "ray (other)"
    program, *args = cmdline.split(" ")
    if Path(program).name.startswith("python"):  # python -m module, python script.py
        named = [a for a in args if not a.startswith("-")]
        return f"python {Path(named[0]).name}" if named else "python"
    return Path(program).name or "?"


def processes() -> dict[int, tuple[float, str]]:
    """CPU seconds used so far and command line of every process."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[int(entry.name)] = ((int(fields[11]) + int(fields[12])) / TICK, cmd or stat.split("(", 1)[1].split(")")[0])
    return out


def machine_busy() -> float:
    """The machine's busy CPU seconds so far (all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="suite-cpu-"))
    (work / "suite_cpu_plugin.py").write_text(PLUGIN)
    current = work / "current"
    current.write_text("(collection)")
    env = os.environ | {"SUITE_CPU_CURRENT": str(current), "PYTHONPATH": f"{work}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                        "PYTEST_ADDOPTS": f"-p suite_cpu_plugin {os.environ.get('PYTEST_ADDOPTS', '')}"}
    command = sys.argv[2:] if sys.argv[1:2] == ["--run"] else [sys.executable, "-m", "pytest", *sys.argv[1:]]
    began, busy_began = time.monotonic(), machine_busy()
    seen = {pid: cpu for pid, (cpu, _) in processes().items()}  # what ran before the suite counts from here
    pytest = subprocess.Popen(command, env=env)
    per_test: dict[str, Counter[str]] = defaultdict(Counter)
    wall: Counter[str] = Counter()
    busy_last, last = busy_began, time.monotonic()
    while pytest.poll() is None:
        time.sleep(1)
        test = current.read_text() or "?"
        now, busy = time.monotonic(), machine_busy()
        for pid, (cpu, cmd) in processes().items():
            per_test[test][kind(pid, pytest.pid, cmd)] += cpu - seen.get(pid, 0.0)
            seen[pid] = cpu
        per_test[test]["(machine)"] += busy - busy_last
        wall[test] += now - last
        busy_last, last = busy, now
    elapsed, total = time.monotonic() - began, machine_busy() - busy_began
    report(per_test, wall, elapsed, total)
    sys.exit(pytest.returncode)


def report(per_test: dict[str, Counter[str]], wall: Counter[str], elapsed: float, total: float) -> None:
    kinds: Counter[str] = Counter()
    for counts in per_test.values():
        kinds.update(counts)
    machine = kinds.pop("(machine)")
    print(f"\nsuite: {elapsed:.0f} s wall, {total:.0f} CPU s ({total / elapsed:.2f} of {os.cpu_count()} cores busy)")
    print("CPU s by kind of process: " + ", ".join(f"{k} {v:.0f}" for k, v in kinds.most_common(15) if v >= 1)
          + f"; unseen {machine - sum(kinds.values()):.0f}")
    print(f"\n{'CPU s':>7} {'wall s':>7} {'cores':>6}  test (and what took its CPU)")
    for test, counts in sorted(per_test.items(), key=lambda kv: -kv[1]["(machine)"])[:30]:
        cpu = counts["(machine)"]
        parts = ", ".join(f"{k} {v:.0f}" for k, v in counts.most_common(6) if k != "(machine)" and v >= 1)
        print(f"{cpu:7.0f} {wall[test]:7.0f} {cpu / max(wall[test], 1):6.2f}  {test}\n{'':24}{parts}")


if __name__ == "__main__":
    main()
