"""The web app (supervisor/daemon/web.py) in a real headless Chromium (Debian's `chromium`,
driven over the DevTools Protocol: fixtures/cdp.py) against a daemon with the fake team, on
loopback: the login, the live team page, a task and its answer, a question answered by a tap,
the inbox, typing into an agent's terminal; the same at a phone's 390×844. Screenshots go to
the test's tmp dir, or to $STAFF_SCREENSHOTS (docs/web for the README's)."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.cdp import Chromium, Page, chromium_path
from supervisor.protocol import Client
from tests.conftest import REPO, fake_team_toml, staff

needs_chromium = pytest.mark.skipif(
    chromium_path() is None and not os.environ.get("CI"), reason="no chromium (apt-get install chromium)"
)


@pytest.fixture
def web(home: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The fake team's daemon serving the web app; `staff web --json`'s answer (url, login)."""
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml())
    staff("up", "-c", str(cfg), check=True)
    try:
        yield json.loads(staff("web", "--http", "0", "--json", check=True).stdout)
    finally:
        staff("down")


def shot_dir(tmp_path: Path) -> Path:
    out = os.environ.get("STAFF_SCREENSHOTS")
    path = (REPO / out) if out else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


def call(home: Path, cmd: str, **fields: Any) -> Any:
    with Client(home / "staff.sock") as c:
        return c.call(cmd, **fields)


def screen_text(agent: str) -> str:
    return staff("screen", agent, check=True).stdout


async def login(page: Page, info: dict[str, Any]) -> None:
    await page.goto(info["login"])
    assert await page.js("location.pathname") == "/"
    await page.until("document.querySelectorAll('#agents li').length === 3")


async def check_team_flow(page: Page, info: dict[str, Any], home: Path, shots: Path, tag: str) -> None:
    """Idle agents; a task from the page works then answers; a question answered by a tap."""
    url = info["url"]
    # no cookie → the login page; a wrong code → refused
    await page.goto(url + "/")
    assert await page.js("location.pathname") == "/login"
    assert await page.js("!!document.querySelector('input[name=code]')")
    await page.goto(url + "/login?code=not-the-code")
    assert "wrong" in await page.js("document.querySelector('.error').textContent")
    assert not [c for c in await page.cookies() if c["name"] == "staff_session"]
    await login(page, info)
    cookie = next(c for c in await page.cookies() if c["name"] == "staff_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert await page.js("document.cookie") == ""  # HttpOnly: no script can read it
    await page.goto(info["login"])  # the code was spent: refused the second time
    assert "wrong" in await page.js("document.querySelector('.error')?.textContent || ''")
    await page.goto(url + "/")
    await page.until("(l => l.length === 3 && l.every(li => li.dataset.state === 'idle'))"
                     "([...document.querySelectorAll('#agents li')])")

    # a task submitted in the page: working, then idle, and its answer shown
    assert await page.js("document.getElementById('to').value = 'coding'") == "coding"
    await page.js("document.getElementById('text').value = 'say hi [delay=1.5]'")
    await page.click("#submit button[type=submit]")
    await page.until("document.querySelector('#agents li[data-agent=coding]').dataset.state === 'working'")
    answer = await page.until(
        "document.querySelector('#tasks li[data-state=done] .answer')?.textContent", timeout=30
    )
    assert "FAKE-REPLY(coding" in answer and "say hi" in answer
    await page.until("document.querySelector('#agents li[data-agent=coding]').dataset.state === 'idle'")

    # an [ask] task: its question on top with buttons; a tap answers it and the task finishes
    task = call(home, "submit", to="testing", text="run it [ask]")
    labels = await page.until(
        "(l => l.length && l)([...document.querySelectorAll('.ask[data-agent=testing] button.choice')]"
        ".map(b => b.textContent))"
    )
    assert labels[0] == "1. Yes" and labels[-1] == "4. No", labels
    assert await page.js("document.querySelector('.ask .question').textContent") == "Do you want to proceed?"
    await page.screenshot(shots / f"team-{tag}.png")
    stale = await page.js(
        "call('POST', '/web/agents/testing/answer', {key: '1', question: 'an-older-one'})"
        ".catch(e => e.message)"
    )
    assert "now asks something else" in stale  # a tap on a question that has gone is refused
    await page.click(".ask[data-agent=testing] button.choice[data-key='1']")
    done = call(home, "wait", task=task["id"], timeout=30)
    assert done["state"] == "done", done
    await page.until("!document.querySelector('.ask')")
    # the task's events may come after the question went: wait for them (the page re-renders)
    kinds = await page.until(
        f"staff.notified.some(n => n.title.startsWith('{task['id']} done'))"
        " && staff.notified.map(n => n.title)"
    )
    assert any(t.startswith("testing asks") for t in kinds), kinds

    # an inbox item appears live, and is acknowledged from the page
    item = call(home, "inbox_post", title="build broke", body="main is red", source="external", to="chief")
    sel = f'#inbox li[data-id="{item["id"]}"]'
    await page.until(f"document.querySelector({json.dumps(sel)})")
    await page.click(sel + " button.ack")
    await page.until(f"!document.querySelector({json.dumps(sel)})")
    assert not call(home, "inbox")["items"]


async def check_terminal(page: Page, info: dict[str, Any], shots: Path, tag: str) -> None:
    """The agent page paints the screen, and keys typed there reach the agent as a person's."""
    await page.goto(info["url"] + "/agents/planning")
    await page.until("(window.staff.frames || 0) > 0")
    rows = await page.until(
        "(() => { const b = staff.term.buffer.active; const out = [];"
        " for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));"
        " return out.join('\\n').includes('? for shortcuts') && out; })()"
    )
    assert any("? for shortcuts" in r for r in rows)
    await page.js("staff.term.focus()")
    await page.type_text("typed-in-the-browser")
    await page.until(
        "(b => b.getLine(b.cursorY + b.baseY).translateToString().includes('typed-in-the-browser'))"
        "(staff.term.buffer.active)"
    )
    assert "typed-in-the-browser" in screen_text("planning")
    status = {a["agent_id"]: a for a in json.loads(staff("status", "--json", check=True).stdout)["agents"]}
    assert status["planning"]["status"] == "user"  # a person typing holds it, as in the console
    await page.screenshot(shots / f"agent-{tag}.png")


@needs_chromium
async def test_the_team_in_a_desktop_browser(web: dict[str, Any], home: Path, tmp_path: Path) -> None:
    shots = shot_dir(tmp_path)
    async with Chromium() as browser:
        page = await browser.page(1280, 860)
        await check_team_flow(page, web, home, shots, "desktop")
        await check_terminal(page, web, shots, "desktop")


@needs_chromium
async def test_the_team_on_a_phone(web: dict[str, Any], home: Path, tmp_path: Path) -> None:
    shots = shot_dir(tmp_path)
    async with Chromium() as browser:
        grant = {"origin": web["url"], "permissions": ["notifications"]}
        await browser.send("Browser.grantPermissions", grant)
        page = await browser.page(390, 844, mobile=True)
        await check_team_flow(page, web, home, shots, "phone")
        # shown through the service worker, the only way a phone's browser shows them
        shown = await page.js(
            "navigator.serviceWorker.getRegistration('/static/')"
            ".then(r => r.getNotifications()).then(ns => ns.map(n => n.title))"
        )
        assert any(t.startswith("testing asks") for t in shown), shown
        # one column: nothing wider than the screen on the team page
        assert await page.js("document.documentElement.scrollWidth") <= 390
        await check_terminal(page, web, shots, "phone")
        manifest = await page.js("fetch('/manifest.webmanifest').then(r => r.json())")
        assert manifest["display"] == "standalone" and manifest["start_url"] == "/"


def http(url: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_only_the_cookie_or_the_token_let_anything_in(web: dict[str, Any], home: Path) -> None:
    url = web["url"]
    token = (home / "http.token").read_text().strip()
    status, headers, _ = http(url + "/")
    assert status == 303 and headers["Location"] == "/login"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    for path in ("/web/team", "/web/events", "/web/agents/planning/stream", "/agents"):
        assert http(url + path)[0] == 401, path
    assert http(url + "/web/team", headers={"Cookie": "staff_session=made-up"})[0] == 401
    assert http(url + "/static/../httpapi.py")[0] == 404
    assert http(url + "/static/team.js")[0] == 200  # shipped files need no login
    # the code buys one cookie, once
    status, headers, _ = http(web["login"])
    assert status == 303
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    cookie = headers["Set-Cookie"].split(";")[0]
    assert http(web["login"])[0] == 403
    assert http(url + "/web/team", headers={"Cookie": cookie})[0] == 200
    # with the cookie, a change from another origin is refused; from this one it passes
    ack = json.dumps({"ids": []}).encode()
    evil = {"Cookie": cookie, "Origin": "http://evil.example", "Content-Type": "application/json"}
    assert http(url + "/web/inbox/ack", method="POST", body=ack, headers=evil)[0] == 403
    good = {**evil, "Origin": url}
    assert http(url + "/web/inbox/ack", method="POST", body=ack, headers=good)[0] == 200
    assert http(url + "/web/inbox/ack", method="POST", body=ack, headers={"Cookie": cookie})[0] == 403
    # keys only into a terminal stream this session opened
    keys = json.dumps({"keys": "x", "stream": "nope"}).encode()
    assert http(url + "/web/agents/planning/keys", method="POST", body=keys, headers=good)[0] == 400
    # the bearer token keeps working for scripts
    assert http(url + "/web/team", headers={"Authorization": f"Bearer {token}"})[0] == 200
    # an agent that is not asking: the answer is refused with why
    status, _, body = http(url + "/web/agents/planning/answer", method="POST",
                           body=b'{"key": "1"}', headers=good)
    assert status == 409 and b"not asking" in body


def test_vendored_xterm_ships_with_its_licence() -> None:
    vendor = REPO / "supervisor" / "daemon" / "static" / "vendor" / "xterm"
    assert "MIT" in (vendor / "license.txt").read_text() or "Permission is hereby granted" in (
        vendor / "license.txt"
    ).read_text()
    assert (vendor / "xterm.js").stat().st_size > 100_000
    assert shutil.which("chromium") or not os.environ.get("CI")


class Receiver:
    """A local ntfy stand-in: records every POST (path, headers, body)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.posts: list[tuple[str, dict[str, str], str]] = []
        self.cond = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                with outer.cond:
                    outer.posts.append((self.path, dict(self.headers), body))
                    outer.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/staff-team"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, title_start: str, timeout: float = 30) -> tuple[str, dict[str, str], str]:
        def found() -> tuple[str, dict[str, str], str] | None:
            return next((p for p in self.posts if p[1].get("Title", "").startswith(title_start)), None)

        with self.cond:
            self.cond.wait_for(found, timeout)
            post = found()
        assert post is not None, f"no push titled {title_start!r}: {[p[1].get('Title') for p in self.posts]}"
        return post

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_ntfy_push_once_per_question(home: Path, tmp_path: Path) -> None:
    ntfy = Receiver()
    try:
        cfg = tmp_path / "staff.toml"
        cfg.write_text(fake_team_toml() + f'\n[notify]\nurl = "{ntfy.url}"\n')
        staff("up", "-c", str(cfg), check=True)
        try:
            info = json.loads(staff("web", "--http", "0", "--json", check=True).stdout)
            task = call(home, "submit", to="testing", text="deploy it [ask]")
            path, headers, body = ntfy.wait_for("testing asks")
            assert path == "/staff-team" and headers["Priority"] == "high"
            assert headers["Click"] == info["url"] + "/agents/testing"
            assert "Do you want to proceed?" in body and "1. Yes" in body and "4. No" in body
            staff("answer", "testing", "1", check=True)
            assert call(home, "wait", task=task["id"], timeout=30)["state"] == "done"
            _, _, answer = ntfy.wait_for(f"{task['id']} done on testing")
            assert "FAKE-REPLY(testing" in answer
            asked = f"testing asks ({task['id']}: deploy it [ask])"
            assert [p[1]["Title"] for p in ntfy.posts].count(asked) == 1
        finally:
            staff("down")
    finally:
        ntfy.close()


def test_notify_table_is_checked(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("coding",)) + '\n[notify]\nurl = "ftp://example/x"\n')
    out = staff("up", "-c", str(cfg))
    assert out.returncode != 0 and "notify.url must be an http(s) URL" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_stalled_terminal_page_is_resynced_not_buffered(web: dict[str, Any], home: Path) -> None:
    """A browser that stops reading its terminal stream while the agent floods 4 MB: the task
    still finishes, the daemon's memory stays bounded, and the stream, read again, goes on
    from a fresh snapshot rather than the backlog."""
    import socket
    import urllib.parse

    _, headers, _ = http(web["login"])
    cookie = headers["Set-Cookie"].split(";")[0]
    host, port = urllib.parse.urlsplit(web["url"]).netloc.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.settimeout(30)
    head = f"GET /web/agents/planning/stream HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n\r\n"
    sock.sendall(head.encode())
    got = b""
    while b'"snapshot"' not in got:
        got += sock.recv(65536)
    pid = int(call(home, "ping")["pid"])

    def rss() -> int:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        return int(next(ln for ln in status if ln.startswith("VmRSS")).split()[1]) * 1024

    before = rss()
    task = call(home, "submit", to="planning", text="a flood [flood=4096]")
    assert call(home, "wait", task=task["id"], timeout=90)["state"] == "done"  # not held back
    assert rss() - before < 32 << 20  # 4 MB of output did not queue up for the stalled reader
    tail = b""
    while tail.count(b'"snapshot"') < 1:  # read again: a fresh snapshot, not 4 MB of backlog
        chunk = sock.recv(1 << 20)
        assert chunk
        tail += chunk
    sock.close()
