"""Other hosts' agents in every view (issue 17): the HTTP API, the web app, the MCP tools and
the console see and reach ``box/far`` as they do a local agent, through the hub's forwarding;
while the link to `box` is down they show it `unreachable` and refuse input in one line, and
they are back to normal when the link is.

The far side is reached over a real OpenSSH server the test starts (fixtures/sshd.py), as in
test_hosts.py; a second transport, a `docker` script on PATH, shows that any argv whose stdio
is the bridge is one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import sys
import urllib.parse
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from fixtures.cdp import Chromium
from fixtures.sshd import Sshd, far_side
from supervisor.protocol import Client, socket_path
from tests.conftest import FAKE, REPO, fake_team_toml, staff
from tests.daemon.test_hosts import _host, _hub_team, _hub_until, remote, remote_staff, sshd  # noqa: F401
from tests.daemon.test_web import http, needs_chromium
from tests.helpers.console_term import Term

FAR = "box/far"
PATH = urllib.parse.quote(FAR, safe="")  # box%2Ffar: one path segment


def far_row(st: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = next(a for a in st["agents"] if a["agent_id"] == FAR)
    return row


def api(info: dict[str, Any], token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    status, _, raw = http(info["url"] + path, method=method, body=data, headers=headers)
    return status, json.loads(raw)


def ssh_clients(config: Path) -> list[int]:
    """The hub's ssh clients to the test's sshd (the link and each viewer's): their argv
    names the test's own client config, a path no other process has."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"ssh") and str(config).encode() in argv:
            pids.append(int(proc.name))
    return pids


def cut(server: Sshd) -> dict[str, Any]:
    """The host gone, as a network cut leaves it: its sshd stopped and every ssh client of the
    hub to it killed (the link's and the viewers'; no new one can connect)."""
    up = _hub_until(lambda s: _host(s)["state"] == "connected")
    server.stop()
    clients = ssh_clients(server.config)
    assert _host(up)["pid"] in clients
    for pid in clients:
        os.kill(pid, signal.SIGKILL)
    return _hub_until(lambda s: _host(s)["state"] != "connected" and far_row(s)["status"] == "unreachable")


class TermFeed:
    """The web app's terminal stream of an agent (`/web/agents/NAME/stream`), read as a
    browser's EventSource would: its hello (the stream's id), then the relayed frames."""

    def __init__(self, info: dict[str, Any], token: str, name: str, *, path: str = "") -> None:
        u = urllib.parse.urlsplit(info["url"])
        self.conn = HTTPConnection(u.hostname or "", u.port, timeout=30)
        path = path or f"/web/agents/{urllib.parse.quote(name, safe='')}/stream"
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()
        self.text = ""  # the terminal's bytes since the last `until`
        self.kinds: list[str] = []
        self.hello = self._until(lambda kind, data: kind == "hello") if not path.endswith("/events") else {}

    def _until(self, ok: Any, limit: int = 5000) -> Any:
        kind = "message"
        for _ in range(limit):  # bounded: one line of the event stream each
            line = self.resp.readline().decode()
            assert line, "the stream ended"
            if line.startswith("event: "):
                kind = line[7:].strip()
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                ev = data.get("event") if kind == "message" else None
                if isinstance(ev, dict):
                    self.kinds.append(ev["type"])
                    self.text += ev.get("data") or ""
                if ok(kind, ev if ev is not None else data):
                    return data
                kind = "message"
        raise AssertionError(f"not in {limit} lines of the stream: {self.kinds[-20:]}")

    def until_text(self, pattern: str) -> str:
        self.text = ""
        self._until(lambda kind, data: re.search(pattern, self.text) is not None)
        m = re.search(pattern, self.text)
        assert m is not None
        return m.group(0)

    def until_snapshot(self) -> None:
        self._until(lambda kind, ev: kind == "message" and ev.get("type") == "snapshot")

    def close(self) -> None:
        self.conn.close()


def keys(info: dict[str, Any], token: str, feed: TermFeed, text: str) -> tuple[int, Any]:
    body = {"stream": feed.hello["stream"], "keys": text}
    return api(info, token, "POST", f"/web/agents/{PATH}/keys", body)


@pytest.fixture
def hub(tmp_path: Path, home: Path, remote: Path, sshd: Sshd) -> Iterator[tuple[dict[str, Any], str]]:  # noqa: F811
    """The hub (`near` here, `far` on box over ssh) serving its HTTP API: (`staff web`'s
    answer, the bearer token)."""
    staff("up", "-c", str(_hub_team(tmp_path, remote, sshd)), check=True)
    try:
        _hub_until(lambda s: _host(s)["state"] == "connected")
        info = json.loads(staff("web", "--http", "0", "--json", check=True).stdout)
        yield info, (home / "http.token").read_text().strip()
    finally:
        staff("down")
    assert not ssh_clients(sshd.config)  # every ssh client of the hub ended with it
    # a session its last ssh client opened may still be starting a bridge there (which starts
    # the far daemon): the far side is stopped (the `remote` fixture) once every one has ended
    if sshd.proc is not None:  # (a test may end with the host cut)
        wait_gone(children(sshd.proc.pid))
    wait_gone(bridges(remote, tmp_path / "far-side" / "staff"))


def children(ppid: int) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int((proc / "stat").read_text().rpartition(")")[2].split()[1]) == ppid:
                pids.append(int(proc.name))
    return pids


def bridges(far: Path, script: Path) -> list[int]:
    """The far side's `staff bridge` processes: the script that starts one, or the bridge
    itself (its environment names the far state dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes()  # `sh -c 'SCRIPT bridge'`, then the script's
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bridge" in argv and (str(script).encode() in argv or f"STAFF_HOME={far}".encode() in env):
            pids.append(int(proc.name))
    return pids


def wait_gone(pids: list[int], limit: float = 30) -> None:
    """Each process's end, awaited on a pidfd (no polling), bounded."""
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            ready, _, _ = select.select([fd], [], [], limit)
            assert ready, f"process {pid} did not end in {limit} s"
        finally:
            os.close(fd)


def test_the_http_api_and_the_web_calls_reach_a_remote_agent_and_refuse_input_while_its_host_is_down(
    hub: tuple[dict[str, Any], str], sshd: Sshd  # noqa: F811
) -> None:
    info, token = hub
    status, agents = api(info, token, "GET", "/agents")
    assert status == 200
    assert [(a["agent_id"], a["host"]) for a in agents["agents"]] == [("near", ""), (FAR, "box")]
    assert agents["hosts"][0]["host"] == "box" and agents["hosts"][0]["state"] == "connected"

    # a task, its answer, and the task by id: the host's own, behind the host's name
    status, done = api(info, token, "POST", "/tasks", {"to": FAR, "text": "over http", "wait": 30})
    assert status == 200 and done["state"] == "done", done
    assert done["id"].startswith("box/T-") and done["agent"] == FAR and "over http" in done["answer"]
    status, again = api(info, token, "GET", f"/tasks/{done['id']}")
    assert status == 200 and again["answer"] == done["answer"]
    status, later = api(info, token, "POST", "/tasks", {"to": FAR, "text": "to cancel [delay=30]"})
    assert status == 202 and later["id"].startswith("box/T-")
    status, gone = api(info, token, "DELETE", f"/tasks/{later['id']}")
    assert status == 200 and gone["state"] == "cancelled", gone

    # a question on the far agent: on the team view with its choices, answered by a tap
    with Client(socket_path(), timeout=60) as c:
        asked = c.call("submit", to=FAR, text="may I [ask]")
        _hub_until(lambda s: far_row(s)["status"] == "blocked")
        status, team = api(info, token, "GET", "/web/team")
        card = next(a for a in team["agents"] if a["name"] == FAR)
        assert card["host"] == "box" and card["question"]["text"] == "Do you want to proceed?", card
        tap = {"key": "1", "question": card["question"]["id"]}
        status, answered = api(info, token, "POST", f"/web/agents/{PATH}/answer", tap)
        assert status == 200 and answered["agent"] == FAR, answered
        assert c.call("wait", task=asked["id"], timeout=30)["state"] == "done"

    # the agent's terminal: a snapshot, then its output; keys typed there reach it
    feed = TermFeed(info, token, FAR)
    events = TermFeed(info, token, "", path="/events")  # the API's event stream: relayed too
    try:
        assert feed.hello["agent"] == FAR
        feed.until_snapshot()
        assert keys(info, token, feed, "typed on the web")[0] == 200
        assert keys(info, token, feed, "\r")[0] == 200
        assert "typed on the web" in feed.until_text(r"FAKE-REPLY\(far#\d+\): typed on the web")

        ran = events._until(lambda kind, ev: kind == "state" and ev.get("agent") == FAR)
        assert ran["host"] == "box", ran  # the far agent's state events, relayed with its name here
        cut(sshd)  # the host is gone
        down = events._until(lambda kind, ev: kind == "host" and ev["state"] != "connected")
        assert down["host"] == "box"
        status, agents = api(info, token, "GET", "/agents")
        assert far_row(agents)["status"] == "unreachable" and agents["hosts"][0]["state"] != "connected"
        status, refused = keys(info, token, feed, "lost?")
        assert status == 503 and refused["error"]["code"] == "host_down", refused
        line = refused["error"]["message"]
        assert line.startswith("host box is ") and line.endswith("nothing was sent") and "\n" not in line
        status, refused = api(info, token, "POST", f"/web/agents/{PATH}/answer", {"key": "1"})
        assert status == 503 and refused["error"]["code"] == "host_down", refused
        status, refused = api(info, token, "GET", f"/tasks/{done['id']}")  # its journal is there
        assert status == 503 and refused["error"]["code"] == "host_down", refused
        status, held = api(info, token, "POST", "/tasks", {"to": FAR, "text": "while it is down"})
        assert status == 202 and held["id"].startswith("box/Q-") and held["state"] == "queued", held

        sshd.start()  # back: the same page's stream starts again with a fresh snapshot
        feed.until_snapshot()
        assert keys(info, token, feed, "typed after the cut")[0] == 200
        assert keys(info, token, feed, "\r")[0] == 200
        assert "after the cut" in feed.until_text(r"FAKE-REPLY\(far#\d+\): typed after the cut")
        assert events._until(lambda kind, ev: kind == "host" and ev["state"] == "connected")["host"] == "box"
    finally:
        feed.close()
        events.close()
    status, handed = api(info, token, "GET", f"/tasks/{held['id']}")
    assert status == 200 and handed["id"] == held["id"]
    with Client(socket_path(), timeout=60) as c:
        assert "while it is down" in c.call("wait", task=held["id"], timeout=30)["answer"]


@needs_chromium
async def test_the_web_pages_show_a_remote_agent_greyed_while_its_host_is_down(
    hub: tuple[dict[str, Any], str], sshd: Sshd  # noqa: F811
) -> None:
    info, _ = hub
    far_li = f"document.querySelector('#agents li[data-agent=\"{FAR}\"]')"
    async with Chromium() as browser:
        page = await browser.page(1280, 860)
        await page.goto(info["login"])
        await page.until(f"{far_li}?.dataset.state === 'idle'")
        assert await page.js(f"{far_li}.querySelector('a').getAttribute('href')") == f"/agents/{PATH}"

        # its terminal page: the far screen painted, typing reaches it
        await page.goto(info["url"] + f"/agents/{PATH}")
        await page.until("(window.staff.frames || 0) > 0")
        screen = (
            "(() => { const b = staff.term.buffer.active; const out = [];"
            " for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));"
            " return out.join('\\n'); })()"
        )
        await page.until(f"{screen}.includes('? for shortcuts')")
        await page.js("staff.term.focus()")
        await page.type_text("typed in the browser")
        await page.press_enter()
        await page.until(f"/FAKE-REPLY\\(far#\\d+\\): typed in the browser/.test({screen})")

        cut(sshd)
        await page.until("document.getElementById('state').textContent === 'unreachable'")
        assert await page.js("document.body.classList.contains('unreachable')")
        refused = await page.js(
            f"call('POST', '/web/agents/{PATH}/keys', {{stream: streamId, keys: 'x'}}).catch(e => e.message)"
        )
        assert refused.startswith("host box is ") and refused.endswith("nothing was sent"), refused
        await page.goto(info["url"] + "/")
        await page.until(f"{far_li}?.dataset.state === 'unreachable'")
        assert "host box" in await page.js(f"{far_li}.querySelector('.task').textContent")
        assert float(await page.js(f"getComputedStyle({far_li}).opacity")) < 1

        sshd.start()
        await page.until(f"{far_li}?.dataset.state === 'idle'", timeout=60)


async def test_the_mcp_tools_list_delegate_to_and_read_a_remote_agent(
    hub: tuple[dict[str, Any], str],
) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "supervisor", "mcp"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=os.getcwd(),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()

        def payload(result: Any) -> Any:
            assert not result.is_error, result
            return result.structured_content or json.loads(result.content[0].text)

        agents = payload(await session.call_tool("list_agents", {}))["agents"]
        assert [a["name"] for a in agents] == ["near", FAR]
        done = payload(await session.call_tool("delegate", {"agent": FAR, "task": "via mcp"}))
        assert done["state"] == "done" and done["agent"] == FAR and done["id"].startswith("box/T-")
        assert "via mcp" in done["answer"]
        later = payload(
            await session.call_tool("delegate", {"agent": FAR, "task": "later [delay=1]", "wait": False})
        )
        result = payload(await session.call_tool("task_result", {"id": later["id"], "wait": 30}))
        assert result["state"] == "done" and "later" in result["answer"]
        screen = (await session.call_tool("agent_screen", {"agent": FAR})).content[0].text
        assert screen.startswith(f"[{FAR}: ") and "? for shortcuts" in screen


def test_the_console_types_into_a_remote_pane_and_greys_it_while_its_host_is_down(
    hub: tuple[dict[str, Any], str], sshd: Sshd  # noqa: F811
) -> None:
    term = Term(["console"], rows=30, cols=120)
    try:
        term.wait(lambda: term.sidebar().get(FAR) == "idle", what="box/far in the sidebar")
        term.send("\x02" + "2")  # prefix, then the agent's number
        term.wait(lambda: term.pane_title().startswith(FAR), what="box/far's pane")
        term.wait(lambda: "? for shortcuts" in term.main(), what="the far screen")
        term.send("typed in the console")
        term.wait(lambda: "typed in the console" in term.main(), what="the echo")
        term.send("\r")
        term.wait(lambda: re.search(r"FAKE-REPLY\(far#\d+\): typed in the console", term.main()) is not None,
                  what="the far agent's answer, drawn in the pane")

        cut(sshd)
        term.wait(lambda: term.sidebar().get(FAR) == "unreachable", what="box/far greyed")
        term.wait(lambda: "unreachable" in term.pane_title(), what="the pane's title")
        assert "host box is" in term.pane_title()
        assert "FAKE-REPLY(far#" in term.main()  # the last screen it showed stays
        term.send("x")
        term.wait(lambda: "nothing was sent" in term.lines()[-1], what="the refusal in the status bar")
        assert f"{FAR}: nothing was sent: host box is " in term.lines()[-1]

        sshd.start()
        term.wait(lambda: term.sidebar().get(FAR) == "idle", timeout=60, what="box/far back")
        term.send("typed after the cut\r")
        term.wait(lambda: re.search(r"FAKE-REPLY\(far#\d+\): typed after the cut", term.main()) is not None,
                  what="the answer after the link came back")
    finally:
        term.close()


def test_attach_to_a_remote_agent_ends_with_one_line_when_its_host_is_cut(
    hub: tuple[dict[str, Any], str], sshd: Sshd  # noqa: F811
) -> None:
    term = Term(["attach", FAR], rows=30, cols=100)
    try:
        term.wait(lambda: "? for shortcuts" in term.text(), what="the far screen")
        cut(sshd)
        assert term.wait_exit(30) == 0
        said = "".join(term.output).rpartition("\x1b[?1049l")[2].strip()
        assert said.startswith("staff: the link to host box dropped"), said
        assert "attach again once the link is back" in said and f"({FAR} keeps running" in said
        assert len(said.splitlines()) == 1
    finally:
        term.close()


def test_any_argv_whose_stdio_is_the_bridge_is_a_transport(tmp_path: Path, home: Path, remote: Path) -> None:  # noqa: F811
    """`transport = ["docker", "exec", "-i", "box", "staff", "bridge"]` with a `docker` on PATH
    that runs the bridge here under another HOME: the argv reaches it as written, and the
    hub drives the placed agent through its stdin/stdout (no Docker engine runs here)."""
    far_staff = far_side(tmp_path / "far-side", remote)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    argv_file = tmp_path / "docker-argv"
    other_home = tmp_path / "container-home"
    other_home.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {argv_file}\n'
        '[ "$1 $2 $3 $4 $5" = "exec -i box staff bridge" ] || { echo "docker: bad argv: $*" >&2; exit 2; }\n'
        f"export HOME={other_home}\n"
        f'exec {far_staff} bridge\n'
    )
    docker.chmod(0o755)
    cfg = tmp_path / "staff.toml"
    cfg.write_text(
        fake_team_toml(("near",))
        + '\n[hosts.box]\ntransport = ["docker", "exec", "-i", "box", "staff", "bridge"]\n'
        + f'\n[agents.far]\nhost = "box"\ncommand = ["{sys.executable}", "{FAKE}", "--startup-delay", "0"]\n'
        + 'profile = "fake"\n'
    )
    old_path = os.environ["PATH"]
    os.environ["PATH"] = f"{bin_dir}:{old_path}"
    try:
        staff("up", "-c", str(cfg), check=True)
    finally:
        os.environ["PATH"] = old_path
    try:
        st = _hub_until(lambda s: _host(s)["state"] == "connected")
        assert _host(st)["transport"] == "docker exec -i box staff bridge", _host(st)
        assert argv_file.read_text().split("\n")[:5] == ["exec", "-i", "box", "staff", "bridge"]
        ask = staff("ask", FAR, "through docker exec", check=True)
        assert ask.stdout.startswith("FAKE-REPLY(far#1)") and "through docker exec" in ask.stdout
        far = json.loads(remote_staff(remote, "status", "--json").stdout)["agents"]
        assert [a["agent_id"] for a in far] == ["far"]  # spawned and owned by the far daemon
        env = Path(f"/proc/{far[0]['pid']}/environ").read_bytes().split(b"\0")
        assert f"HOME={other_home}".encode() in env  # under the far side's HOME, not ours
    finally:
        staff("down")


def test_a_stalled_page_on_a_remote_terminal_is_restarted_not_buffered(
    hub: tuple[dict[str, Any], str],
) -> None:
    """A page that stops reading a remote agent's terminal while that agent floods 4 MB: the
    task finishes there, the hub's memory stays bounded (it drops what the page cannot take),
    and the stream, read again, goes on from a fresh snapshot of the far screen."""
    import socket

    info, token = hub
    host, port = urllib.parse.urlsplit(info["url"]).netloc.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.settimeout(30)
    sock.sendall(
        f"GET /web/agents/{PATH}/stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    got = b""
    while b'"snapshot"' not in got:
        chunk = sock.recv(65536)
        assert chunk
        got += chunk
    with Client(socket_path(), timeout=120) as c:
        pid = int(c.call("ping")["pid"])

        def rss() -> int:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            return int(next(ln for ln in status if ln.startswith("VmRSS")).split()[1]) * 1024

        before = rss()
        task = c.call("submit", to=FAR, text="a flood [flood=4096]")
        assert c.call("wait", task=task["id"], timeout=90)["state"] == "done"  # not held back
        grew = rss() - before
        print(f"\nthe hub's RSS grew {grew / (1 << 20):.1f} MiB while a page stalled on a 4 MB flood")
        assert grew < 32 << 20  # 4 MB did not queue up at the hub for the stalled page
    tail = b""
    while b'"snapshot"' not in tail:  # read again: a fresh snapshot, not 4 MB of backlog
        chunk = sock.recv(1 << 20)
        assert chunk
        tail += chunk
    sock.close()
