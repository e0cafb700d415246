"""The HTTP API (supervisor/daemon/httpapi.py) against a live daemon with the fake team: every curl
example of the README's "HTTP API" section is run as written, then the token, the bind rule,
bad bodies and concurrent clients."""

from __future__ import annotations

import json
import os
import random
import re
import socket
import stat
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.fuzz import json_ish_body
from supervisor.team.config import TableError as HttpConfigError
from supervisor.team.config import http_settings as check_config
from supervisor.team.config import is_loopback, parse_listen
from tests.conftest import REPO, fake_team_toml, staff


@pytest.fixture
def api(home: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(URL, token) of a daemon serving HTTP on a free loopback port."""
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("coding",)))
    staff("up", "-c", str(cfg), check=True)
    try:
        info = json.loads(staff("serve", "--http", "0", "--json", check=True).stdout)
        yield info["url"], (home / "http.token").read_text().strip()
    finally:
        staff("down")


def request(
    url: str, method: str = "GET", body: bytes | None = None, token: str | None = None
) -> tuple[int, object]:
    req = urllib.request.Request(url, data=body, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def readme_curls() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## HTTP API") :]
    section = section[: section.index("\n## ", 10)]
    return [ln.strip() for ln in section.splitlines() if ln.strip().startswith("curl ")]


def test_config_and_addresses() -> None:
    assert parse_listen("8765") == ("127.0.0.1", 8765)
    assert parse_listen("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_listen("[::1]:9") == ("::1", 9)
    assert is_loopback("localhost") and is_loopback("::1") and not is_loopback("0.0.0.0")
    with pytest.raises(HttpConfigError):
        parse_listen("nope")
    with pytest.raises(HttpConfigError, match="unknown key"):
        check_config({"lisen": "1"})


def test_every_readme_curl_example(api: tuple[str, str], home: Path) -> None:
    url, token = api
    curls = readme_curls()
    assert len(curls) == 8
    env = dict(os.environ, URL=url, TOKEN=token)
    # the only agent is busy, so the README's `any` task waits in the queue (to be cancelled)
    staff("submit", "coding", "a long job [delay=2]", check=True)
    task_id = None

    def run(line: str) -> dict[str, Any]:
        line = line.replace("T-3f9a0c12", task_id or "T-3f9a0c12")
        out = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, (line, out.stderr)
        return dict(json.loads(out.stdout))

    for line in curls:
        if "/events" in line or '"wait": 30' in line:
            continue  # below: the event stream, and the answer once coding is free
        got = run(line)
        if "Authorization" not in line:
            assert got["error"]["code"] == "unauthorized"
        elif line.endswith("$URL/agents"):
            assert [a["agent_id"] for a in got["agents"]] == ["coding"]
        elif '"to": "any"' in line:
            assert got["state"] == "queued"
            task_id = str(got["id"])
        elif "-X DELETE" in line:
            assert got["id"] == task_id and got["state"] == "cancelled"
        elif "/tasks/" in line:
            assert got["id"] == task_id and got["text"] == "refactor the parser"
        elif "openapi.json" in line:
            assert got["openapi"].startswith("3.") and "/tasks/{id}" in got["paths"]
        else:
            pytest.fail(f"no check for {line}")
    # the answer within `wait`: coding takes it once the long job is done
    (events_line,) = [ln for ln in curls if "/events" in ln]
    sse = subprocess.Popen(["bash", "-c", events_line], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert sse.stdout is not None
        assert sse.stdout.readline().startswith(": staff events")
        (hello,) = [ln for ln in curls if '"wait": 30' in ln]
        got = run(hello)
        assert got["state"] == "done" and got["answer"] == "FAKE-REPLY(coding#2): hello"
        seen = []
        for line in sse.stdout:
            seen.append(line)
            if line.startswith("data:") and got["id"] in line and '"done"' in line:
                break
        assert any(ln.startswith("event: task") for ln in seen)
        assert any(ln.startswith("event: state") for ln in seen)
    finally:
        sse.terminate()
        sse.wait()


def test_token_file_and_401(api: tuple[str, str], home: Path) -> None:
    url, token = api
    assert stat.S_IMODE((home / "http.token").stat().st_mode) == 0o600
    for bad in (None, "", "x" * 43, token + "x"):
        code, body = request(url + "/agents", token=bad)
        assert code == 401 and body["error"]["code"] == "unauthorized"  # type: ignore[index]
    code, _ = request(url + "/openapi.json")
    assert code == 401
    # bytes that are not text in the header: a JSON 401, not a 500
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"GET /agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n"
        )
        reply = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401"), reply[:200]
    assert json.loads(body)["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("content", ["", "\n", "short\n"])
def test_an_empty_or_short_token_file_is_replaced_never_accepted(
    home: Path, tmp_path: Path, content: str
) -> None:
    """A token file cut short (a full disk while it was written) must not let `Bearer ` in."""
    home.mkdir(mode=0o700)
    (home / "http.token").write_text(content)
    (home / "http.token").chmod(0o600)
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("coding",)) + '\n[http]\nlisten = "127.0.0.1:0"\n')
    staff("up", "-c", str(cfg), check=True)
    try:
        url = json.loads(staff("serve", "--http", "0", "--json", check=True).stdout)["url"]
        for given in ("", " ", content.strip()):
            assert request(url + "/agents", token=given)[0] == 401, repr(given)
        token = (home / "http.token").read_text().strip()
        assert len(token) >= 32 and stat.S_IMODE((home / "http.token").stat().st_mode) == 0o600
        assert request(url + "/agents", token=token)[0] == 200
    finally:
        staff("down")


def test_clear_errors(api: tuple[str, str]) -> None:
    url, token = api
    cases = [
        (b"{bad", 400, "bad_json"),
        (b"[1]", 400, "bad_request"),
        (b'{"to": "coding"}', 400, "bad_request"),
        (b'{"to": "coding", "text": "x", "wait": -1}', 400, "bad_request"),
        (b'{"to": "coding", "text": "x", "extra": 1}', 400, "bad_request"),
        (b'{"to": "nobody", "text": "x"}', 404, "unknown_agent"),
        (b"x" * (2 << 20), 413, "too_large"),
        (b'{"to": "coding", "text": "\\ud800"}', 400, "bad_request"),  # a lone surrogate: not text
        (b'{"to": "coding\\udfff", "text": "x"}', 400, "bad_request"),
    ]
    for body, status, code in cases:
        got_status, got = request(url + "/tasks", "POST", body, token)
        assert (got_status, got["error"]["code"]) == (status, code), body[:40]  # type: ignore[index]
    assert request(url + "/tasks/T-nope", token=token)[0] == 404
    assert request(url + "/tasks/T-nope", "DELETE", token=token)[0] == 404
    assert request(url + "/nothing", token=token)[0] == 404


def test_fuzzed_bodies_and_concurrent_clients(api: tuple[str, str]) -> None:
    url, token = api
    rnd = random.Random(9)
    for _ in range(300):
        body = json_ish_body(rnd, 30)
        status, got = request(url + "/tasks", "POST", body, token)
        assert 400 <= status < 500 or status in (200, 202), (body, status, got)
    errors: list[str] = []

    def client() -> None:
        for _ in range(40):
            status, got = request(url + "/agents", token=token)
            if status != 200 or "agents" not in got:  # type: ignore[operator]
                errors.append(f"{status} {got}")

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert staff("status").returncode == 0  # the daemon is unaffected


def test_remote_bind_needs_allow_remote(api: tuple[str, str], home: Path, tmp_path: Path) -> None:
    r = staff("serve", "--http", "127.0.0.1:1")
    assert r.returncode == 2 and "already listens" in r.stderr
    staff("down", check=True)
    cfg = tmp_path / "remote.toml"
    cfg.write_text(fake_team_toml(("coding",)) + '\n[http]\nlisten = "0.0.0.0:0"\n')
    r = staff("up", "-c", str(cfg))
    assert r.returncode == 2 and "--allow-remote" in r.stderr and "not a loopback" in r.stderr
    cfg.write_text(fake_team_toml(("coding",)) + '\n[http]\nlisten = "0.0.0.0:0"\nallow_remote = true\n')
    staff("up", "-c", str(cfg), check=True)
    r = staff("serve", "--http", "0.0.0.0:0", check=True)
    assert "WARNING" in r.stdout and re.search(r"http://0\.0\.0\.0:\d+", r.stdout)
