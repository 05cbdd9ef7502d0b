"""A small closed-loop HTTP load generator for loopback benchmarks, a helper that starts a real
server process and waits until it is ready, and the serving sweeps every app's bench runs.

Each of ``concurrency`` workers keeps one keep-alive HTTP/1.1 connection and sends the same
request back to back, for ``duration_s`` seconds after ``warmup_s`` (so it stops by itself).
It speaks raw HTTP over asyncio streams rather than through an HTTP client library, so that the
generator itself costs little CPU next to the server it measures on the same machine.

    from bench.loadgen import load, ServerProcess
    with ServerProcess([python, "-m", "tabular_mining", "serve", "--port", "8765"], port=8765):
        stats = load("127.0.0.1", 8765, "/predict", body_bytes, concurrency=8, duration_s=5)

The sweeps (:func:`batching_sweep`: batching on, off and the ceiling; :func:`workers_sweep`) start
their servers together and drive them in turn, a few rounds each, so that on a machine shared with
other jobs every server sees the same load; each row also has the server's CPU time per request,
which load changes much less than latency.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from typing_extensions import Self


@dataclass
class LoadStats:
    concurrency: int
    requests: int
    seconds: float
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    statuses: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _request_bytes(host: str, port: int, path: str, body: bytes, content_type: str, headers: dict) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n")
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:].strip())
    if length:
        await reader.readexactly(length)
    return status


def _stats(concurrency: int, latencies: list[float], statuses: dict, seconds: float) -> LoadStats:
    lat = np.array(latencies) * 1000.0
    n = len(lat)
    return LoadStats(concurrency, n, seconds, n / seconds,
                     float(np.percentile(lat, 50)) if n else float("nan"),
                     float(np.percentile(lat, 90)) if n else float("nan"),
                     float(np.percentile(lat, 99)) if n else float("nan"),
                     {str(k): v for k, v in sorted(statuses.items())})


async def _run(host, port, request: bytes, concurrency: int, duration_s: float, warmup_s: float,
               latencies: list[float], statuses: dict[int, int], done: list[int]) -> None:
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s

    async def worker():
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    break
                writer.write(request)
                status = await _read_response(reader)
                t1 = time.perf_counter()
                done[0] += 1
                if t0 >= measure_from:
                    latencies.append(t1 - t0)
                    statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _drive(host: str, port: int, path: str, body: bytes | dict, concurrency: int, duration_s: float, warmup_s: float,
           latencies: list[float], statuses: dict[int, int], done: list[int], content_type: str = "application/json",
           headers: dict | None = None) -> None:
    """One closed-loop run; adds its measured latencies (s) and statuses to those given, and every
    answered request, warm-up included, to ``done[0]``."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    request = _request_bytes(host, port, path, body, content_type, headers or {})
    run = _run(host, port, request, concurrency, duration_s, warmup_s, latencies, statuses, done)
    try:
        import uvloop

        uvloop.run(run)
    except ImportError:
        asyncio.run(run)


def load(host: str, port: int, path: str, body: bytes | dict, concurrency: int = 1, duration_s: float = 5.0,
         warmup_s: float = 1.0, content_type: str = "application/json", headers: dict | None = None) -> LoadStats:
    """Drive ``POST path`` at ``concurrency`` for ``duration_s`` seconds; latency percentiles in ms."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    _drive(host, port, path, body, concurrency, duration_s, warmup_s, latencies, statuses, [0], content_type, headers)
    return _stats(concurrency, latencies, statuses, duration_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """Start a server command in a subprocess; wait for ``GET /readyz`` to answer 200; stop it on exit."""

    def __init__(self, cmd: list[str], port: int, timeout_s: float = 180.0, env: dict | None = None):
        self.cmd, self.port, self.timeout_s = cmd, port, timeout_s
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + self.timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError(f"server on port {self.port} not ready after {self.timeout_s}s")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server has used so far, its worker processes included."""
        import psutil

        proc = psutil.Process(self.proc.pid)
        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def python() -> str:
    return sys.executable


def run_or_quick(app: str, task: str, quick_config: str, run: str | None = None) -> Path:
    """The run to benchmark: ``run`` if given, else the task's latest, training ``quick_config``
    first when there is none yet."""
    from shared.runs import resolve_run, task_dir

    if run:
        return resolve_run(run)
    latest = task_dir(app, task) / "latest"
    if not latest.exists():
        subprocess.run([python(), "-m", app, "train", "--config", quick_config], check=True)
    return resolve_run(latest)


CEILING_CMD = [python(), "-m", "bench.ceiling"]


def interleaved_sweep(servers: dict, key: str, body: bytes | dict, concurrencies=(1, 16), duration_s: float = 5.0,
                      rounds: int = 3) -> list[dict]:
    """Start every server of ``servers`` (label → serve command without ``--port``) at once, then
    at each concurrency drive them in turn, ``rounds`` times ``duration_s / rounds`` seconds each,
    and pool each one's latencies: on a shared machine whose load drifts, every server sees the
    same load, so their ratios hold even where the absolute figures do not. Rows carry ``key``: the
    label."""
    from contextlib import ExitStack

    ports = {label: free_port() for label in servers}
    rows = []
    with ExitStack() as stack:
        procs = {label: stack.enter_context(ServerProcess([*cmd, "--port", str(ports[label])], ports[label]))
                 for label, cmd in servers.items()}
        for conc in concurrencies:
            pooled: dict = {label: ([], {}, [0]) for label in servers}
            cpu = dict.fromkeys(servers, 0.0)
            for r in range(rounds):
                for label in servers:
                    before = procs[label].cpu_seconds()
                    _drive("127.0.0.1", ports[label], "/predict", body, conc, duration_s / rounds,
                           1.0 if r == 0 else 0.2, *pooled[label])
                    cpu[label] += procs[label].cpu_seconds() - before
            for label in servers:
                latencies, statuses, done = pooled[label]
                s = _stats(conc, latencies, statuses, duration_s)
                # the server's CPU over every request it answered (warm-up too): its cost, which
                # unlike latency does not grow with what else the machine is running
                rows.append({key: label, **s.as_dict(), "server_cpu_ms": 1000 * cpu[label] / max(done[0], 1)})
                print(f"{key}={label!s:7} c={conc:2}: {s.throughput_rps:8.1f} req/s  p50 {s.p50_ms:7.2f} ms  "
                      f"p99 {s.p99_ms:7.2f} ms  cpu {rows[-1]['server_cpu_ms']:.3f} ms/req  {s.statuses}", flush=True)
    return rows


def batching_sweep(serve_cmd: list[str], body: bytes | dict, concurrencies=(1, 16), duration_s: float = 5.0,
                   ceiling: bool = True, extra: tuple[str, ...] = ()) -> list[dict]:
    """``serve_cmd`` (without ``--port``; ``extra``: more ``key=value`` overrides) with micro-batching
    on and off, and the ceiling (:mod:`bench.ceiling`: bare FastAPI + uvicorn parsing the same body,
    answering a constant) when ``ceiling``, driven side by side (:func:`interleaved_sweep`) at each
    concurrency. Rows carry ``batching``: True, False or "ceiling"."""
    servers: dict = {"ceiling": CEILING_CMD} if ceiling else {}
    for batching in (True, False):
        servers[batching] = [*serve_cmd, f"serve.batching={str(batching).lower()}", "serve.max_queue=4096", *extra]
    return interleaved_sweep(servers, "batching", body, concurrencies, duration_s)


def workers_sweep(serve_cmd: list[str], body: bytes | dict, concurrencies=(1, 32), duration_s: float = 5.0,
                  workers=(1, 2)) -> list[dict]:
    """``serve_cmd`` with each ``serve.workers`` count (batching on), driven side by side
    (:func:`interleaved_sweep`); rows carry ``workers``."""
    servers = {n: [*serve_cmd, f"serve.workers={n}", "serve.max_queue=4096"] for n in workers}
    return interleaved_sweep(servers, "workers", body, concurrencies, duration_s)


def _cpu(row: dict) -> str:
    return f"{row['server_cpu_ms']:.3f}" if "server_cpu_ms" in row else "—"


def _label(batching) -> str:
    return "ceiling (bare FastAPI)" if batching == "ceiling" else ("batching on" if batching else "batching off")


def sweep_markdown(rows: list[dict]) -> str:
    """The sweep as a table, plus the ratios that matter: ours against the ceiling (p50 at the
    lowest concurrency, throughput at the highest) and batching on against off."""
    lines = ["| server | concurrency | req/s | p50 ms | p99 ms | server CPU ms/req |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {_label(r['batching'])} | {r['concurrency']} | {r['throughput_rps']:,.1f} | "
                     f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {_cpu(r)} |")
    by = {(r["batching"], r["concurrency"]): r for r in rows}
    top, low = max(r["concurrency"] for r in rows), min(r["concurrency"] for r in rows)
    notes = []
    ceil_low, ceil_top, on_low, on_top = (by.get(k, {}) for k in
                                          (("ceiling", low), ("ceiling", top), (True, low), (True, top)))
    if ceil_low.get("p50_ms") and on_low.get("p50_ms"):
        notes.append(f"p50 at concurrency {low}: {on_low['p50_ms'] / ceil_low['p50_ms']:.2f}× the ceiling's")
    if ceil_top.get("throughput_rps") and on_top.get("throughput_rps"):
        notes.append(f"throughput at concurrency {top}: {on_top['throughput_rps'] / ceil_top['throughput_rps']:.0%} "
                     "of the ceiling's (batching on)")
    if ceil_top.get("server_cpu_ms") and on_top.get("server_cpu_ms"):
        notes.append(f"server CPU per request at concurrency {top}: "
                     f"{on_top['server_cpu_ms'] / ceil_top['server_cpu_ms']:.2f}× the ceiling's")
    if by.get((False, top), {}).get("throughput_rps") and on_top:
        ratio = on_top["throughput_rps"] / by[(False, top)]["throughput_rps"]
        notes.append(f"batching on/off throughput at concurrency {top}: {ratio:.2f}×; p99 "
                     f"{on_top['p99_ms']:.2f} vs {by[(False, top)]['p99_ms']:.2f} ms")
        if ceil_top.get("throughput_rps"):  # on/off = (on/ceiling) × (ceiling/off): the second factor bounds it
            notes.append(f"a server at the ceiling would give {ceil_top['throughput_rps'] / by[(False, top)]['throughput_rps']:.2f}× "
                         "on/off (the most batching can add when the model call is nearly free)")
    if on_low and by.get((False, low)):
        notes.append(f"p50 added by batching at concurrency {low}: "
                     f"{on_low['p50_ms'] - by[(False, low)]['p50_ms']:+.2f} ms")
    return "\n".join(lines) + ("\n\n" + "; ".join(notes) + "." if notes else "")


def workers_markdown(rows: list[dict]) -> str:
    """The workers sweep as a table, plus the throughput ratio of the most workers to one."""
    lines = ["| workers | concurrency | req/s | p50 ms | p99 ms | server CPU ms/req |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['workers']} | {r['concurrency']} | {r['throughput_rps']:,.1f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {_cpu(r)} |" for r in rows]
    by = {(r["workers"], r["concurrency"]): r for r in rows}
    top, most = max(r["concurrency"] for r in rows), max(r["workers"] for r in rows)
    if by.get((1, top), {}).get("throughput_rps") and (1, top) != (most, top):
        ratio = by[(most, top)]["throughput_rps"] / by[(1, top)]["throughput_rps"]
        lines.append(f"\n{most} workers / 1 worker throughput at concurrency {top}: {ratio:.2f}×.")
    return "\n".join(lines)
