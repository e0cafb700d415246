"""(x) The web app (issue 18) in headless Chromium (fixtures/cdp.py), 16 fake agents:

- a state change → visible in the team page: the daemon's event (a subscribed socket client,
  wall clock) to the page's DOM showing it (a MutationObserver in the page, Date.now(): the
  same machine's wall clock), p50/p99;
- 16 agents streaming output for a fixed time: daemon CPU seconds with 2 browsers attached
  (each a team page and 4 terminal pages) next to the same run with none;
- one of those browsers stalled (its pages paused in the debugger) while the agents flood for
  30 s: the other browser's state-change latency and the daemon's RSS before and after.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fixtures.cdp import Chromium, Page, chromium_path

from .harness import Context, Daemon, EventTap, fake_command, pcts, row

AGENTS = 16
WATCH = """(() => {
  window.seen = []; const last = {};
  const look = () => { const t = Date.now();
    for (const li of document.querySelectorAll('#agents li')) {
      const k = li.dataset.agent, s = li.dataset.state;
      if (last[k] !== s) { last[k] = s; seen.push([k, s, t]); } } };
  new MutationObserver(look).observe(document.getElementById('agents'),
    {childList: true, subtree: true, attributes: true});
  look(); return true; })()"""


async def _browser_pages(browser: Chromium, info: dict[str, Any], terms: list[str]) -> list[Page]:
    team = await browser.page(1280, 900)
    await team.goto(info["login"])
    await team.until(f"document.querySelectorAll('#agents li').length === {AGENTS}")
    await team.js(WATCH)
    pages = [team]
    for name in terms:
        p = await browser.page(1280, 900)
        await p.goto(f"{info['url']}/agents/{name}?ro=1")
        await p.until("(window.staff.frames || 0) > 0")
        pages.append(p)
    return pages


def _latencies(tap: EventTap, since: float, seen: list[list[Any]]) -> list[float]:
    """ms from each state event (wall clock at the tap) to the page showing that state."""
    used: set[int] = set()
    out = []
    for _, ev in tap.events:
        if ev.get("type") != "state" or ev.get("wall", 0) < since:
            continue
        for i, (agent, state, t_ms) in enumerate(seen):
            same = agent == ev["agent"] and state == ev["new"]
            if i not in used and same and t_ms / 1000 >= ev["wall"] - 0.002:
                used.add(i)
                out.append(max(0.0, t_ms - ev["wall"] * 1000))
                break
    return out


class WallTap(EventTap):
    """EventTap with each event's wall-clock arrival (the browser's clock is the wall clock)."""

    def _run(self) -> None:
        try:
            for frame in self._client.stream("subscribe", read_timeout=None):
                ev = frame.get("event")
                if ev is None:
                    return
                if ev.get("type") == "hello":
                    self._ready.set()
                    continue
                ev["wall"] = time.time()
                self.events.append((time.monotonic(), ev))
        except Exception:
            return


def _submit_round(d: Daemon, text: str) -> list[str]:
    with d.client() as c:
        return [c.call("submit", to=f"a{i:02d}", text=text)["id"] for i in range(AGENTS)]


def _wait_all(d: Daemon, ids: list[str], timeout: float = 120) -> None:
    with d.client(timeout=timeout + 10) as c:
        for tid in ids:
            c.call("wait", task=tid, timeout=timeout)


async def _run(ctx: Context, d: Daemon) -> list[dict[str, Any]]:
    d.staff("web", "--http", "0")
    rounds = ctx.n(6, 2)
    stream_s = ctx.scale(8.0, 3.0)
    stall_s = ctx.scale(30.0, 6.0)
    rows: list[dict[str, Any]] = []
    tap = WallTap(d)
    try:
        # CPU without browsers: every agent streams for stream_s
        cpu0 = d.cpu()
        _wait_all(d, _submit_round(d, f"talk [stream={stream_s}] [flood=64]"))
        bare = d.cpu() - cpu0
        async with Chromium() as b1, Chromium() as b2:
            info1 = json.loads(d.staff("web", "--json").stdout)
            info2 = json.loads(d.staff("web", "--json").stdout)
            p1 = await _browser_pages(b1, info1, [f"a{i:02d}" for i in range(0, 4)])
            p2 = await _browser_pages(b2, info2, [f"a{i:02d}" for i in range(4, 8)])
            # latency: rounds of short tasks on all 16 agents
            since = time.time()
            for _ in range(rounds):
                _wait_all(d, _submit_round(d, "quick [delay=0.3]"))
            await asyncio.sleep(0.5)  # the last renders land (the page's own timestamps are kept)
            lat = _latencies(tap, since, await p1[0].js("window.seen"))
            p = pcts(lat)
            ctx.log(f"web: {len(lat)} state changes seen in the page")
            rows += [
                row("(x) web: state change → page", "p50", p["p50"], "ms", target="≤ 100 ms",
                    ok=p["p50"] <= 100, note=f"{len(lat)} changes, 16 agents, 2 browsers"),
                row("(x) web: state change → page", "p99", p["p99"], "ms", target="≤ 500 ms",
                    ok=p["p99"] <= 500),
            ]
            # CPU with the two browsers attached
            cpu0 = d.cpu()
            _wait_all(d, _submit_round(d, f"talk [stream={stream_s}] [flood=64]"))
            watched = d.cpu() - cpu0
            rows.append(row(
                "(x) web: daemon CPU, 16 agents streaming", "2 browsers", watched, "s",
                baseline="no browser", baseline_value=bare, target="≤ 2× no browser",
                ok=watched <= 2 * max(bare, 0.1), note=f"{stream_s:.0f} s of output per agent",
            ))
            # one browser stalled: its pages paused in the debugger while the agents flood
            rss0 = d.rss()
            for page in p2:
                await page.send("Debugger.enable")
                await page.send("Debugger.pause")
            since = time.time()
            end = time.monotonic() + stall_s
            floods = 0
            while time.monotonic() < end:
                _wait_all(d, _submit_round(d, "flood [flood=256] [delay=0.2]"))
                floods += 1
            await asyncio.sleep(0.5)
            lat2 = _latencies(tap, since, await p1[0].js("window.seen"))
            q = pcts(lat2)
            rss1 = d.rss()
            for page in p2:
                await page.send("Debugger.resume")
            rows += [
                row("(x) web: one browser stalled", "other's p50", q["p50"], "ms",
                    baseline="none stalled", baseline_value=p["p50"], target="≤ 100 ms",
                    ok=q["p50"] <= 100, note=f"{stall_s:.0f} s, {floods} flood rounds × 16 agents × 256 KB"),
                row("(x) web: one browser stalled", "other's p99", q["p99"], "ms",
                    baseline="none stalled", baseline_value=p["p99"], target="≤ 500 ms", ok=q["p99"] <= 500),
                row("(x) web: one browser stalled", "daemon RSS growth", (rss1 - rss0) / 2**20, "MiB",
                    target="≤ 64 MiB", ok=(rss1 - rss0) <= 64 << 20,
                    note=f"RSS {rss1 / 2**20:.0f} MiB after"),
            ]
    finally:
        tap.close()
    return rows


def run(ctx: Context) -> list[dict[str, Any]]:
    if ctx.only and "x" not in ctx.only:
        return []
    if chromium_path() is None:
        ctx.log("web: no chromium (apt-get install chromium): skipped")
        return []
    agents = {f"a{i:02d}": {"command": fake_command(), "profile": "fake"} for i in range(AGENTS)}
    with ctx.daemon(agents, name="web") as d:
        d.wait_state("idle")
        return asyncio.run(_run(ctx, d))
