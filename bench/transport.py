"""Transport benchmark: hvsim served in a child process, driven by pypsrp 0.9.1.

    python bench/transport.py [--calls 10000] [--latency-calls 300]

Prints, measured in this one run on loopback:
  - median and p95 latency of one simple cmdlet call (Get-VMHost) over HTTP with
    Basic (client encryption off) and over HTTP with NTLM and message sealing;
  - throughput of 8 pipelines running in parallel (8 clients, one pool each);
  - the server's RSS before and after --calls calls (psutil);
  - the server's RSS through hostile requests: 20 unauthenticated 15 MiB posts
    (half with an NTLM negotiate token), then the same sealed calls again.
Targets: median <= 15 ms per call, RSS growth <= 10 %, RSS < 100 MB throughout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

ROOT = Path(__file__).resolve().parent.parent
USER = "hvadmin"
PASSWORD = "Bench-Passw0rd!"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(auth: str) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    env = dict(os.environ, HVSIM_PASSWORD=PASSWORD, HVSIM_USER=USER, PYTHONPATH=str(ROOT))
    # Basic sends its messages in clear over HTTP: only with AllowUnencrypted=true.
    code = (
        f"from hvsim.cli import serve; serve(port={port}, auth={auth!r}, "
        f"allow_unencrypted={auth == 'basic'})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True, cwd=str(ROOT)
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("hvsim listening on"):
            return proc, port
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"hvsim did not start within 60 s (last output: {line!r})")


def client(port: int, auth: str) -> RunspacePool:
    wsman = WSMan(
        "127.0.0.1",
        port=port,
        ssl=False,
        auth=auth,
        username=USER,
        password=PASSWORD,
        encryption="never" if auth == "basic" else "auto",
        operation_timeout=20,
    )
    pool = RunspacePool(wsman)
    pool.open()
    return pool


def call(pool: RunspacePool) -> None:
    ps = PowerShell(pool)
    ps.add_cmdlet("Get-VMHost")
    out = ps.invoke()
    if not out or ps.had_errors:
        raise RuntimeError(f"Get-VMHost failed: {ps.streams.error}")


def latency(port: int, auth: str, n: int) -> tuple[float, float]:
    pool = client(port, auth)
    try:
        for _ in range(20):  # warm up
            call(pool)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            call(pool)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        pool.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def throughput(port: int, auth: str, workers: int, per_worker: int) -> float:
    pools = [client(port, auth) for _ in range(workers)]

    def work(pool: RunspacePool) -> None:
        for _ in range(per_worker):
            call(pool)

    try:
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(workers) as ex:
            list(ex.map(work, pools))
        took = time.perf_counter() - t0
    finally:
        for p in pools:
            p.close()
    return workers * per_worker / took


def rss_growth(proc: subprocess.Popen[str], port: int, calls: int) -> tuple[float, float, float]:
    server = psutil.Process(proc.pid)
    pool = client(port, "basic")
    try:
        for _ in range(200):  # let caches and pools settle before the baseline
            call(pool)
        before = server.memory_info().rss
        t0 = time.perf_counter()
        for i in range(calls):
            call(pool)
            if i % 1000 == 999:
                # A fresh pool now and then, as clients come and go.
                pool.close()
                pool = client(port, "basic")
        took = time.perf_counter() - t0
        after = server.memory_info().rss
    finally:
        pool.close()
    return before / 2**20, after / 2**20, calls / took


def hostile_rss(proc: subprocess.Popen[str], port: int) -> tuple[float, float, float]:
    """RSS before, peak during, and after twenty unauthenticated 15 MiB posts."""
    server = psutil.Process(proc.pid)
    before = peak = server.memory_info().rss
    big = b"<" * (15 * 1024 * 1024)
    token = b"Authorization: Negotiate TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==\r\n"
    for i in range(20):
        head = (
            b"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Type: application/soap+xml\r\n"
            + (token if i % 2 else b"")
            + f"Content-Length: {len(big)}\r\n\r\n".encode()
        )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(head)
                sock.sendall(big)
                sock.recv(1024)
        except OSError:
            pass  # the server answers 401 and closes before the body is through
        peak = max(peak, server.memory_info().rss)
    pool = client(port, "ntlm")  # the server still serves
    try:
        call(pool)
    finally:
        pool.close()
    after = server.memory_info().rss
    return before / 2**20, max(peak, after) / 2**20, after / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--calls", type=int, default=10_000, help="calls for the RSS measurement")
    ap.add_argument("--latency-calls", type=int, default=300, help="calls per latency sample")
    args = ap.parse_args()

    results: dict[str, Any] = {}
    for auth in ("basic", "ntlm"):
        proc, port = start_server(auth)
        try:
            med, p95 = latency(port, auth, args.latency_calls)
            label = "HTTP+Basic (no encryption)" if auth == "basic" else "HTTP+NTLM (sealed)"
            print(f"latency {label:28s} median {med:6.2f} ms   p95 {p95:6.2f} ms", flush=True)
            results[auth] = (med, p95)
            if auth == "ntlm":
                rate = throughput(port, auth, 8, 50)
                print(f"throughput 8 parallel pipelines (NTLM)  {rate:7.1f} calls/s", flush=True)
                before, peak, after = hostile_rss(proc, port)
                print(
                    f"server RSS through 20 unauthenticated 15 MiB posts: {before:.1f} MiB before, "
                    f"peak {peak:.1f} MiB, {after:.1f} MiB after",
                    flush=True,
                )
            else:
                before, after, rate = rss_growth(proc, port, args.calls)
                growth = (after - before) / before * 100
                print(
                    f"server RSS {before:.1f} MiB before, {after:.1f} MiB after {args.calls} calls "
                    f"({growth:+.1f} %), {rate:.0f} calls/s sequential",
                    flush=True,
                )
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
