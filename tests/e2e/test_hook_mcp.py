"""`staff mcp` (supervisor/client/mcp.py) driven by a real MCP client session over stdio.

Issue #7, item 5: the server answers `tools/list` and a `delegate` call end to end, on
the same daemon and the same tasks as the CLI.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.conftest import REPO, staff


def _payload(result: Any) -> Any:
    assert not result.is_error, result
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


async def test_mcp_tools_and_delegate(fake_team: Path, home: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "supervisor", "mcp"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=os.getcwd(),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert {"list_agents", "delegate", "task_status", "task_result", "agent_screen"} <= set(tools)
        assert "agent" in tools["delegate"].input_schema["properties"]

        agents = _payload(await session.call_tool("list_agents", {}))["agents"]
        assert [a["name"] for a in agents] == ["planning", "coding", "testing"]
        assert all(a["state"] in ("idle", "starting") for a in agents)

        done = _payload(
            await session.call_tool("delegate", {"agent": "planning", "task": "plan it [delay=0.5]"})
        )
        assert done["state"] == "done" and done["agent"] == "planning"
        assert done["answer"] == "FAKE-REPLY(planning#1): plan it [delay=0.5]"

        # without waiting: the id, then status and result by id — the same task the CLI sees
        later = _payload(
            await session.call_tool(
                "delegate", {"agent": "role:coding", "task": "code it [delay=1]", "wait": False}
            )
        )
        assert later["state"] not in ("done", "failed") and "task_result" in later["note"]
        status = _payload(await session.call_tool("task_status", {"id": later["id"]}))
        assert status["id"] == later["id"] and "answer" not in status
        result = _payload(await session.call_tool("task_result", {"id": later["id"], "wait": 30}))
        assert result["answer"] == "FAKE-REPLY(coding#1): code it [delay=1]"
        cli = json.loads(staff("wait", later["id"], "--json", check=True).stdout)
        assert cli["answer"] == result["answer"]

        screen = await session.call_tool("agent_screen", {"agent": "planning"})
        text = screen.content[0].text
        assert text.startswith("[planning: idle]") and "FAKE-REPLY(planning#1)" in text

        bad = await session.call_tool("delegate", {"agent": "nobody", "task": "x"})
        assert bad.is_error and "unknown agent 'nobody'" in bad.content[0].text

        # a task the API failed (the fake imitates Claude's API error) is the tool's error
        failed = await session.call_tool("delegate", {"agent": "testing", "task": "t [apierror=400]"})
        assert failed.is_error, failed
        text = failed.content[0].text
        m = re.search(r"task (T-\w+) failed on testing: API Error: 400 fake API error for this prompt$", text)
        assert m and "\n" not in text, text
        again = await session.call_tool("task_result", {"id": m.group(1)})
        assert again.is_error and m.group(0) in again.content[0].text
