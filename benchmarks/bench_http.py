"""(w) The HTTP API (issue #9): 16 concurrent keep-alive clients × 1 000 `GET /agents` each →
p50/p99 latency and the error count; then 10 000 fuzzed `POST /tasks` bodies → every answer a
4xx (or a task accepted), and the daemon still up."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from typing import Any

from fixtures.fuzz import json_ish_body

from .harness import Context, fake_command, pcts, row


def _conn(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)


def run(ctx: Context) -> list[dict[str, Any]]:
    if ctx.only and "w" not in ctx.only:
        return []
    clients, per = 16, ctx.n(1000, 100)
    fuzz = ctx.n(10000, 1000)
    with ctx.daemon({"coding": {"command": fake_command(), "profile": "fake"}}, name="http") as d:
        d.wait_state("idle")
        with d.client() as c:
            info = c.call("http_serve", listen="127.0.0.1:0")
        port = int(info["url"].rsplit(":", 1)[1])
        auth = {"Authorization": "Bearer " + (d.home / "http.token").read_text().strip()}
        lat: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def client() -> None:
            conn, mine = _conn(port), []
            for _ in range(per):
                t0 = time.perf_counter()
                try:
                    conn.request("GET", "/agents", headers=auth)
                    r = conn.getresponse()
                    body = r.read()
                    if r.status != 200 or b'"agents"' not in body:
                        errors.append(f"{r.status}")
                except (OSError, http.client.HTTPException) as exc:
                    errors.append(repr(exc))
                    conn = _conn(port)
                mine.append((time.perf_counter() - t0) * 1000)
            with lock:
                lat.extend(mine)

        ctx.log(f"http: {clients} clients × {per} requests")
        threads = [threading.Thread(target=client) for _ in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - t0
        p = pcts(lat)
        rnd = random.Random(9)
        bad: list[str] = []
        conn = _conn(port)
        ctx.log(f"http: {fuzz} fuzzed bodies")
        for _ in range(fuzz):
            body = json_ish_body(rnd, 40)
            try:
                conn.request(
                    "POST", "/tasks", body=body, headers={**auth, "Content-Type": "application/json"}
                )
                r = conn.getresponse()
                r.read()
                if not (400 <= r.status < 500 or r.status in (200, 202)):
                    bad.append(f"{r.status} {body!r}")
            except (OSError, http.client.HTTPException) as exc:
                bad.append(repr(exc))
                conn = _conn(port)
        with d.client() as c:
            up = bool(c.call("ping"))
            json.dumps(c.call("status"))
    n = clients * per
    return [
        row("(w) HTTP GET /agents, 16 clients", "p50", p["p50"], "ms", target="≤ 20 ms", ok=p["p50"] <= 20),
        row("(w) HTTP GET /agents, 16 clients", "p99", p["p99"], "ms", target="≤ 100 ms", ok=p["p99"] <= 100),
        row(
            "(w) HTTP GET /agents, 16 clients",
            "errors",
            float(len(errors)),
            f"of {n}",
            target="0",
            ok=not errors,
            note=f"{n / took:.0f} req/s",
        ),
        row(
            "(w) HTTP fuzzed POST /tasks",
            "not 4xx",
            float(len(bad)),
            f"of {fuzz}",
            target="0",
            ok=not bad and up,
            note="daemon up after" if up else "daemon DOWN",
        ),
    ]
