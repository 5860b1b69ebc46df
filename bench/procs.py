"""What the benchmarks share about processes: gunicorn started and stopped in its own session, and
CPU seconds read from /proc (a process tree's, the machine's, the PostgreSQL server's)."""

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command's name ([] when the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def children(ppid: int) -> list[int]:
    found = (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
    return [pid for pid in found if proc_stat(pid)[1:2] == [str(ppid)]]


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and its children, those still running and those it has reaped
    (gunicorn's master and its workers; the postmaster and its backends, autovacuum included)."""
    fields = proc_stat(root)
    if not fields:
        return 0.0
    ticks = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    for pid in children(root):
        child = proc_stat(pid)
        ticks += int(child[11]) + int(child[12]) if child else 0
    return ticks / CLOCK_TICK


def machine_cpu() -> tuple[float, float]:
    """Busy and idle seconds of all the machine's CPUs since boot."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICK, (idle + iowait) / CLOCK_TICK


def postmaster_pid(url: str) -> int:
    """The PostgreSQL server's main process, or 0 when it does not run on this machine's /proc."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    backend = proc_stat(row[0]) if row else []
    return int(backend[1]) if backend else 0


class Gunicorn:
    """gunicorn in its own session, so that Ctrl-C reaches the benchmark only and it stops the server."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        port: int,
        workers: int,
        worker_class: str,
        threads: int,
        log: Path,
        timeout: int = 120,
        backlog: int = 2048,
    ) -> None:
        self.env, self.port, self.workers, self.worker_class, self.threads = env, port, workers, worker_class, threads
        self.timeout, self.backlog = timeout, backlog
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = log

    def describe(self) -> str:
        extra = f" --threads {self.threads}" if self.worker_class == "gthread" else ""
        return f"gunicorn -w {self.workers} --worker-class {self.worker_class}{extra}"

    def start(self) -> None:
        """Start it and wait for its /healthz to answer 200."""
        args = [GUNICORN, "billing_platform.wsgi:application", "-b", f"127.0.0.1:{self.port}", "-w", str(self.workers)]
        args += ["--worker-class", self.worker_class, "--timeout", str(self.timeout), "--log-level", "warning"]
        args += ["--backlog", str(self.backlog)]
        if self.worker_class == "gthread":
            args += ["--threads", str(self.threads)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer /healthz; its log:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()  # the master stops its workers
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the group is its id
                self.proc.wait()
        self.proc = None

    def errors(self) -> str:
        text = self.log.read_text(errors="replace")
        return "\n".join(line for line in text.splitlines() if "error" in line.lower())[-2000:]
