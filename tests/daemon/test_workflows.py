"""Workflows: parsing with file:line errors, and real headless runs on the fake team."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from supervisor.client.workflows import templates
from supervisor.client.workflows.model import WorkflowError, parse, render
from supervisor.client.workflows.records import load_record
from supervisor.client.workflows.report import junit
from tests.conftest import REPO, STAFF, fake_team_toml, staff

FEATURE = REPO / "examples" / "feature.toml"
INVESTIGATE = REPO / "examples" / "investigate.toml"


def record(home: Path, run_id: str | None = None) -> dict:
    runs = sorted((home / "runs").glob("R-*.json"), key=lambda p: p.stat().st_mtime)
    path = home / "runs" / f"{run_id}.json" if run_id else runs[-1]
    return json.loads(path.read_text())


# -- parsing ----------------------------------------------------------------------------------------
GOOD = """\
[workflow]
name = "t"

[inputs]
x = { description = "required" }

[steps.a]
to = "any"
prompt = "do {{ inputs.x }}"

[steps.b]
to = "any"
needs = ["a"]
prompt = "then {{ steps.a.answer }}"
"""


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (GOOD.replace('needs = ["a"]', 'needs = ["zz"]'), 13, "unknown step 'zz'"),
        (GOOD.replace('prompt = "then', 'promt = "x"\nprompt = "then'), 14, "unknown key 'promt'"),
        (GOOD.replace("{{ steps.a.answer }}", "{{ steps.b.answer }}"), 14, "does not run before"),
        (GOOD.replace("{{ inputs.x }}", "{{ inputs.y }}"), 9, "no input 'y'"),
        (GOOD.replace('to = "any"\nprompt = "do', 'to = "any"\nneeds = ["b"]\nprompt = "do'), 9, "a cycle"),
        (GOOD.replace('name = "t"', 'name = "t'), 2, "TOML syntax error"),
        (GOOD + '[steps.b.loop]\nback_to = "q"\nwhen = { contains = "X" }\n', 16, "must be this step or one"),
        (GOOD + "retries = -1\n", 15, "retries must be an integer"),
        (GOOD + 'on_failure = "zz"\n', 15, "on_failure: no step 'zz'"),
        (GOOD + 'on_failure = "a"\n', 15, "'a' runs before this step"),
        (GOOD + "on_failure = 3\n", 15, 'must be "fail", "continue" or a step name'),
        (GOOD + "when = { contains = 'x' }\n", 15, "name the step"),
        (GOOD + 'save = "../up.md"\n', 15, "inside the run's folder"),
        (GOOD + 'save = "/etc/x"\n', 15, "inside the run's folder"),
        # inline and dotted forms: the error names the key's own line, not line 1
        (
            GOOD
            + '[steps.c]\nto = "any"\nprompt = "x"\nloop = { back_to = "q", when = { contains = "X" } }\n',
            18,
            "must be this step or one",
        ),
        (
            GOOD.replace(
                "[steps.b]\n", '[steps.b]\nloop.back_to = "b"\nloop.max = 0\nloop.when.contains = "X"\n'
            ),
            13,
            "max must be an integer",
        ),
    ],
)
def test_bad_workflow_says_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(WorkflowError) as exc:
        parse(text, "flow.toml")
    assert str(exc.value).startswith(f"flow.toml:{line}: "), str(exc.value)
    assert message in str(exc.value)


def test_templates_and_loop_body() -> None:
    wf = parse(GOOD, "flow.toml")
    assert wf.order() == ["a", "b"]
    ctx = templates.context({"x": "X"}, {"a": FIELDS | {"answer": "A"}, "b": FIELDS}, "1", "R-1", "t")
    assert render("{{ inputs.x }}/{{steps.a.answer}}{% if steps.b.answer %}never{% endif %}", ctx) == "X/A"
    with pytest.raises(WorkflowError, match="input 'x' is required"):
        wf.resolve_inputs({})
    with pytest.raises(WorkflowError, match="unknown input 'nope'"):
        wf.resolve_inputs({"x": "1", "nope": "2"})
    feature = parse(FEATURE.read_text(), str(FEATURE))
    assert feature.loop_body("review") == ["plan", "review"]


FIELDS = {"answer": "", "agent": "", "task": "", "round": "1"}


def test_templates_are_sandboxed_jinja() -> None:
    """Issue 20: a real template engine. Filters, else and for work; a misspelt name is a
    one-line error naming the step and the name (before the run when it can be seen, else when
    the step renders); Python's internals are out of reach."""
    steps = {"plan": FIELDS | {"answer": "step one\nstep two"}, "items": FIELDS | {"answer": "x"}}
    ctx = templates.context({"feature": "dark mode"}, steps, "2", "R-1", "feature")
    assert render(
        "{{ inputs.feature | upper }} r{{ round }}"
        "{% if steps.plan.answer %} revised{% else %} new{% endif %}:"
        "{% for line in steps.plan.answer.splitlines() %} [{{ loop.index }}] {{ line }}{% endfor %}"
        " {{ steps.items.answer }}",  # a step named like a dict method
        ctx,
    ) == "DARK MODE r2 revised: [1] step one [2] step two x"
    with pytest.raises(WorkflowError, match=r"^steps.b.prompt: steps.plan has no 'answr'$"):
        render("{{ steps.plan.answr | default(steps.plan.answr) }}", ctx, "steps.b.prompt")
    for evil in ("{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}", "{{ 'x' * 10**9 }}"):
        with pytest.raises(WorkflowError, match=r"^t: not allowed in a template: "):
            render(evil, ctx, "t")
    flow = GOOD.replace("then {{ steps.a.answer }}", "then {{ steps.a.answr }}")
    with pytest.raises(WorkflowError, match=r"^flow.toml:14: steps.b.prompt: \{\{ steps.a.answr \}\}: "):
        parse(flow, "flow.toml")
    flow = GOOD.replace("then {{ steps.a.answer }}", "then {% if steps.a.answer %}x")
    with pytest.raises(WorkflowError, match=r"^flow.toml:14: steps.b.prompt: template syntax: Unexpected"):
        parse(flow, "flow.toml")
    flow = GOOD.replace("then {{ steps.a.answer }}", "then {{ answer }}")
    with pytest.raises(WorkflowError, match=r"^flow.toml:14: steps.b.prompt: unknown name 'answer'; use "):
        parse(flow, "flow.toml")


async def test_a_prompt_that_fails_to_render_fails_its_step_in_one_line(tmp_path: Path) -> None:
    """A template error only the values show (a filter's own check) fails the step, not the run
    with a traceback; nothing is submitted (this runner has no daemon to submit to)."""
    from supervisor.client.workflows.runner import Runner

    flow = GOOD.replace("then {{ steps.a.answer }}", "then {{ steps.a.answer | truncate(inputs.x | int) }}")
    events: list[dict[str, Any]] = []
    runner = Runner(
        parse(flow, "f.toml"), tmp_path / "h", tmp_path / "no.sock", inputs={"x": "1"}, report=events.append
    )
    runner.client = object()  # type: ignore[assignment]  # never called: the prompt does not render
    await runner._run_step(runner.wf.steps["b"])
    st = runner.rec["steps"]["b"]
    assert st["state"] == "failed" and st["error"].startswith("steps.b.prompt: AssertionError: expected")
    assert events[-1]["state"] == "failed" and "\n" not in st["error"]


def test_saves_stay_inside_the_runs_folder(tmp_path: Path) -> None:
    """Issue 15 item 10: a `save` path built from an answer or an input cannot leave the run's
    folder with `../` (nor through a symlink); the step fails and nothing is written."""
    from supervisor.client.workflows.runner import Runner

    flow = GOOD.replace('prompt = "then', 'save = "{{ steps.a.answer }}/{{ inputs.x }}.md"\nprompt = "then')
    out = tmp_path / "run" / "out"
    runner = Runner(
        parse(flow, "flow.toml"), tmp_path / "home", tmp_path / "no.sock", inputs={"x": "ok"}, out=out
    )
    runner.rec["steps"]["a"]["answer"] = "notes"
    assert (
        runner._save_answer(runner.wf.steps["b"].save or "", "b", "fine")
        == (out / "notes" / "ok.md").resolve()
    )
    assert (out / "notes" / "ok.md").read_text() == "fine\n"
    for answer, value in (("../../..", "escaped"), ("notes", "../../../escaped"), ("", "/tmp")):
        runner.rec["steps"]["a"]["answer"] = answer
        runner.rec["inputs"]["x"] = value
        with pytest.raises(OSError, match="leads outside the run's folder"):
            runner._save_answer(runner.wf.steps["b"].save or "", "b", "evil")
    (out / "link").symlink_to(tmp_path)
    runner.rec["steps"]["a"]["answer"], runner.rec["inputs"]["x"] = "link", "escaped"
    with pytest.raises(OSError, match="leads outside"):
        runner._save_answer(runner.wf.steps["b"].save or "", "b", "evil")
    assert not list(tmp_path.glob("**/escaped*"))


def test_cli_bad_workflow_exits_2(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('needs = ["a"]', 'needs = ["zz"]'))
    r = staff("run", str(bad), "--headless", "--input", "x=1")
    assert r.returncode == 2 and r.stderr.startswith(f"staff: {bad}:13: "), r.stderr
    r = staff("run", str(FEATURE), "--headless")
    assert r.returncode == 2 and "input 'feature' is required" in r.stderr


def test_junit_of_a_failed_run_parses() -> None:
    rec = {
        "id": "R-1",
        "workflow": "w",
        "started": 100.0,
        "finished": 110.0,
        "inputs": {"x": "<&>"},
        "steps": {
            "a": {
                "state": "done",
                "started": 100.0,
                "finished": 101.0,
                "history": [{"round": 1, "task": "T-1", "agent": "p", "answer": "ok <b>"}],
            },
            "b": {
                "state": "failed",
                "started": 101.0,
                "finished": 103.0,
                "error": "timed out",
                "history": [],
            },
            "c": {"state": "skipped", "error": "skipped: x", "history": []},
        },
    }
    suite = ET.fromstring(junit(rec)).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["a"].findtext("system-out", "").endswith("ok <b>")
    failure = cases["b"].find("failure")
    assert failure is not None and failure.get("message") == "timed out"


# -- real runs --------------------------------------------------------------------------------------
def test_feature_example_runs_green_headless_and_answers_flow(
    fake_team: Path, home: Path, tmp_path: Path
) -> None:
    report = tmp_path / "junit.xml"
    r = staff("run", str(FEATURE), "--headless", "--junit", str(report), "--input", "feature=dark mode")
    assert r.returncode == 0, r.stdout + r.stderr
    # one plain, prefixed line per event
    assert all(" | " in line for line in r.stdout.splitlines()), r.stdout
    assert "loop" not in r.stdout  # the fake echoes "… or with CHANGES REQUESTED …": not a verdict
    assert r.stdout.splitlines()[-1].split(" | ")[1].startswith("done in")

    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert [c.get("name") for c in suite.iter("testcase")] == ["plan", "review", "code", "test"]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "0", "0")

    rec = record(home)
    steps = rec["steps"]
    assert rec["state"] == "done" and all(s["state"] == "done" for s in steps.values())
    # each step's task text contains the answer of the step it needs
    for name, needs in (("review", "plan"), ("code", "plan"), ("test", "code")):
        assert steps[needs]["answer"] in steps[name]["text"], name
    assert "dark mode" in steps["plan"]["text"]
    # issue 20: one review round on the fake team, not the loop's maximum
    assert len(steps["plan"]["history"]) == 1 and len(steps["review"]["history"]) == 1
    # answers saved to files, in the run's own folder (not in the current directory)
    saved = home / "runs" / rec["id"] / "feature" / "test.md"
    assert saved.read_text().strip() == steps["test"]["answer"]
    assert steps["test"]["saved"] == str(saved.resolve())
    assert not (tmp_path / "out").exists() and not (tmp_path / "feature").exists()

    # a loop that ends on its condition: the check asks for another draft in round 1 only
    loop = tmp_path / "loop.toml"
    loop.write_text(
        '[workflow]\nname = "loop"\n\n[steps.draft]\nto = "planning"\n'
        'prompt = "draft{% if steps.check.answer %} again after: {{ steps.check.answer }}{% endif %}"\n\n'
        '[steps.check]\nto = "coding"\nneeds = ["draft"]\n'
        'prompt = "check round {{ round }}: {{ steps.draft.answer }}"\n'
        "[steps.check.loop]\nback_to = \"draft\"\nwhen = { regex = '\\A\\S+ check round 1:' }\nmax = 5\n"
    )
    r = staff("run", str(loop), "--headless", check=True)
    assert r.stdout.count("check | loop: the answer matches") == 1, r.stdout
    steps = record(home)["steps"]
    draft_rounds, check_rounds = steps["draft"]["history"], steps["check"]["history"]
    assert len(draft_rounds) == 2 and len(check_rounds) == 2
    assert check_rounds[0]["answer"] in draft_rounds[1]["text"]  # the draft ran again, with the check
    assert draft_rounds[1]["answer"] in check_rounds[1]["text"]


def test_investigate_runs_three_steps_in_parallel(fake_team: Path, home: Path) -> None:
    r = staff("run", str(INVESTIGATE), "--headless", "--input", "question=why is login slow [delay=2]")
    assert r.returncode == 0, r.stdout + r.stderr
    steps = record(home)["steps"]
    par = [steps[n] for n in ("logs", "code", "history")]
    assert len({s["agent"] for s in par}) == 3  # three agents at once
    span = max(s["finished"] for s in par) - min(s["started"] for s in par)
    total = sum(s["finished"] - s["started"] for s in par)
    print(f"investigate: parallel span {span:.2f}s, sum of steps {total:.2f}s")
    assert total >= 6.0 and span < 0.7 * total
    for n in ("logs", "code", "history"):
        assert steps[n]["answer"] in steps["summary"]["text"]


BRANCHY = """\
[steps.a]
to = "planning"
prompt = "first"

[steps.b]
to = "coding"
needs = ["a"]
when = { step = "a", contains = "NEVER-THERE" }
prompt = "skipped"

[steps.slow]
to = "testing"
needs = ["a"]
timeout = 0.5
retries = 1
prompt = "too slow [delay=4]"

[steps.after]
to = "planning"
needs = ["slow"]
prompt = "never runs"
"""


def test_timeout_retry_skip_and_failure(fake_team: Path, home: Path, tmp_path: Path) -> None:
    flow = tmp_path / "branchy.toml"
    flow.write_text(BRANCHY)
    report = tmp_path / "j.xml"
    r = staff("run", str(flow), "--headless", "--junit", str(report))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "slow  | retry: attempt 1 failed: timed out after 0.5s" in r.stdout
    steps = record(home)["steps"]
    assert steps["b"]["state"] == "skipped" and steps["slow"]["state"] == "failed"
    assert steps["slow"]["attempts"] == 2 and steps["after"]["state"] == "pending"
    cases = {c.get("name"): c for c in ET.parse(report).getroot().iter("testcase")}
    assert cases["b"].find("skipped") is not None
    failure = cases["slow"].find("failure")
    assert failure is not None and "timed out" in (failure.get("message") or "")


ON_FAILURE = """\
[steps.code]
to = "coding"
prompt = "code it [apierror=400]"
on_failure = "report"

[steps.test]
to = "testing"
needs = ["code"]
prompt = "test {{ steps.code.answer }}"

[steps.report]
to = "planning"
needs = ["code"]
prompt = "code failed: {{ steps.code.error }}"

[steps.lint]
to = "testing"
prompt = "lint [apierror=500]"
on_failure = "continue"

[steps.after_lint]
to = "testing"
needs = ["lint"]
prompt = "never runs"

[steps.fine]
to = "coding"
needs = ["code"]
prompt = "fine"
on_failure = "fix"

[steps.fix]
to = "coding"
prompt = "never runs either"
"""


def test_an_api_error_fails_the_step_and_it_follows_its_on_failure(
    fake_team: Path, home: Path, tmp_path: Path
) -> None:
    """The fake imitates Claude's API error ([apierror=CODE]): the task fails, the step fails,
    and `on_failure` decides: a handler step runs (and reads the error), `continue` goes on;
    what needs a failed step is skipped; a handler whose step did not fail is skipped."""
    flow = tmp_path / "onfail.toml"
    flow.write_text(ON_FAILURE)
    r = staff("run", str(flow), "--headless")
    assert r.returncode == 0, r.stdout + r.stderr
    steps = record(home)["steps"]
    error = "API Error: 400 fake API error for this prompt"
    assert (steps["code"]["state"], steps["code"]["error"]) == ("failed", error)
    assert steps["report"]["state"] == "done" and steps["report"]["answer"].endswith(f"code failed: {error}")
    assert steps["test"]["state"] == "skipped" and "needs code, which failed" in steps["test"]["error"]
    assert steps["fine"]["state"] == "skipped"  # it needs code too
    assert steps["fix"]["state"] == "skipped" and "did not fail" in steps["fix"]["error"]
    assert steps["lint"]["state"] == "failed" and steps["lint"]["error"].startswith("API Error: 500")
    assert steps["after_lint"]["state"] == "skipped"
    assert "| on_failure: report runs\n" in r.stdout and "| skipped: needs code, which failed\n" in r.stdout
    flow.write_text('[steps.only]\nto = "coding"\nprompt = "x [apierror=400]"\n')  # the default: fail
    r = staff("run", str(flow), "--headless")
    assert r.returncode == 1 and "step 'only' failed: API Error: 400" in r.stdout, r.stdout


RESUMABLE = """\
[steps.first]
to = "planning"
prompt = "first step"

[steps.slow]
to = "coding"
needs = ["first"]
prompt = "slow step after {{ steps.first.answer }} [delay=3]"

[steps.last]
to = "testing"
needs = ["slow"]
prompt = "last step after {{ steps.slow.answer }}"
"""


def test_resume_after_the_daemon_is_killed(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml())
    flow = tmp_path / "resumable.toml"
    flow.write_text(RESUMABLE)
    staff("up", "-c", str(cfg), check=True)
    try:
        pid = json.loads(staff("status", "--json", check=True).stdout)["pid"]
        proc = subprocess.Popen(
            [*STAFF, "run", str(flow), "--headless"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # wait for the event, not for a time
            seen.append(line)
            if "slow  | working" in line:
                break
        os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 1, "".join(seen) + out + err
        assert "interrupted" in out and "staff run --resume" in out
        rec = record(home)
        run_id = rec["id"]
        assert rec["state"] == "interrupted" and rec["steps"]["first"]["state"] == "done"
        first_task = rec["steps"]["first"]["task"]
        assert f"{run_id}  " in staff("runs", check=True).stdout

        staff("up", "-c", str(cfg), check=True)
        r = staff("run", "--resume", run_id, "--headless")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "already done: first" in r.stdout
        assert "first | queued" not in r.stdout  # the finished step is not redone
        rec = record(home, run_id)
        assert rec["state"] == "done" and rec["resumes"] == 1
        assert rec["steps"]["first"]["task"] == first_task and len(rec["steps"]["first"]["history"]) == 1
        assert rec["steps"]["slow"]["answer"] in rec["steps"]["last"]["text"]
        assert " done " in staff("runs", check=True).stdout
    finally:
        staff("down")


def test_resume_after_the_runner_is_killed_reattaches_to_its_task(
    fake_team: Path, home: Path, tmp_path: Path
) -> None:
    flow = tmp_path / "resumable.toml"
    flow.write_text(RESUMABLE)
    proc = subprocess.Popen(
        [*STAFF, "run", str(flow), "--headless"],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "slow  | working" in line:
            break
    proc.kill()  # the runner dies; the daemon and the task go on
    proc.communicate(timeout=30)
    rec = load_record(home, record(home)["id"])
    assert rec["state"] == "interrupted"  # the record says running, but its pid is gone
    slow_task = rec["steps"]["slow"]["task"]
    r = staff("run", "--resume", rec["id"], "--headless")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"slow  | re-attached to {slow_task}" in r.stdout
    rec = record(home, rec["id"])
    assert rec["steps"]["slow"]["task"] == slow_task and rec["steps"]["slow"]["attempts"] == 1
    assert rec["steps"]["last"]["state"] == "done"


def test_run_starts_and_stops_its_own_daemon(home: Path, tmp_path: Path) -> None:
    """CI: no daemon, no tty, no claude: `staff run -c team --headless` does it all."""
    cfg = tmp_path / "team.toml"
    cfg.write_text(fake_team_toml())
    env = {k: v for k, v in os.environ.items() if k != "STAFF_HOME"}
    proc = subprocess.run(
        [*STAFF, "--home", str(home), "run", str(INVESTIGATE), "-c", str(cfg), "--json", "-i", "question=q"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=dict(env, PYTHONPATH=str(REPO), PATH=os.path.dirname(sys.executable) + ":/usr/bin:/bin"),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["state"] == "done"
    assert " | " in proc.stderr  # the log went to stderr, the JSON to stdout
    assert staff("status").returncode == 2  # the daemon it started is gone


def test_live_view_renders_the_dag() -> None:
    from io import StringIO

    from rich.console import Console

    from supervisor.client.workflows.view import LiveView

    wf = parse(GOOD, "flow.toml")
    console = Console(file=StringIO(), width=120, force_terminal=False)
    view = LiveView(wf, console)
    with view:
        view(
            {"kind": "run_start", "run": "R-1", "time": 1.0, "workflow": "t", "steps": ["a", "b"], "done": []}
        )
        view(
            {
                "kind": "step",
                "step": "a",
                "state": "queued",
                "task": "T-1",
                "to": "any",
                "round": 1,
                "time": 1.0,
            }
        )
        view(
            {
                "kind": "step",
                "step": "a",
                "state": "done",
                "agent": "p",
                "answer": "A!",
                "time": 2.0,
                "task": "T-1",
            }
        )
        view({"kind": "step", "step": "b", "state": "working", "agent": "q", "task": "T-2", "time": 2.0})
        view({"kind": "run_end", "state": "done", "elapsed": 3.0, "time": 3.0, "run": "R-1"})
    console.print(view)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "t — R-1" in out and "A!" in out and "done in 3.0s" in out
    assert {ln.split("│")[3].strip() for ln in out.splitlines() if ln.startswith("│ b ")} == {"working"}
