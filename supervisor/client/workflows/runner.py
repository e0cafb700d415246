"""The Runner: one workflow run (or resumed run) against the daemon, step by step.

It runs here, in the client (``staff run``), over one `Connection` to the daemon; the daemon
stays a task router. Steps run as soon as what they need is done, each one a task; the run's
record (`records`) is saved after every change, and events go to a reporter (the live view
or the headless log).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.client.connection import Connection
from supervisor.client.workflows import templates
from supervisor.client.workflows.model import STEP_FINAL, Condition, Step, Workflow, WorkflowError, render
from supervisor.client.workflows.records import default_out, new_run_id, save_record
from supervisor.protocol import ERR_NO_DAEMON, TASK_FINAL, ProtocolError

# -- the runner ----------------------------------------------------------------------------------
Reporter = Callable[[dict[str, Any]], None]


class Runner:
    """Runs (or resumes) one workflow run against the daemon; returns the exit code."""

    def __init__(
        self,
        wf: Workflow,
        home: Path,
        sock: Path,
        *,
        inputs: dict[str, str] | None = None,
        record: dict[str, Any] | None = None,
        report: Reporter | None = None,
        clock: Callable[[], float] = time.time,
        out: Path | None = None,
    ) -> None:
        self.wf = wf
        self.home = home
        self.sock = sock
        self.report = report or (lambda ev: None)
        self.clock = clock
        if record is None:
            run_id = new_run_id()
            record = {
                "id": run_id,
                "workflow": wf.name,
                "file": wf.source,
                "source": wf.text,
                "inputs": wf.resolve_inputs(inputs or {}),
                "cwd": os.getcwd(),
                "out": str((out or default_out(home, run_id)).resolve()),
                "state": "running",
                "started": clock(),
                "finished": None,
                "resumes": 0,
                "steps": {
                    name: {"state": "pending", "round": 1, "attempts": 0, "history": []} for name in wf.steps
                },
                "loops": {},
            }
        self.rec = record
        self.client: Connection | None = None
        self._failed: str | None = None
        self._stopped: str | None = None

    @property
    def id(self) -> str:
        return str(self.rec["id"])

    def emit(self, kind: str, step: str | None = None, **data: Any) -> None:
        ev = {"kind": kind, "run": self.id, "time": self.clock(), **data}
        if step is not None:
            ev["step"] = step
        self.report(ev)

    def save(self) -> None:
        self.rec["pid"] = os.getpid()
        save_record(self.home, self.rec)

    def ctx(self, step: str) -> dict[str, Any]:
        """What `step`'s templates see (templates.context)."""
        steps = {
            name: {
                "answer": st.get("answer") or "",
                "agent": st.get("agent") or "",
                "task": st.get("task") or "",
                "round": str(st.get("round", 1)),
                "error": st.get("error") or "" if st.get("state") == "failed" else "",
            }
            for name, st in self.rec["steps"].items()
        }
        rnd = str(self.rec["steps"][step].get("round", 1))
        return templates.context(self.rec["inputs"], steps, rnd, self.id, self.wf.name)

    async def run(self) -> int:
        """Run to the end. 0: every step done (or skipped); 1: a step failed or the run was cut."""
        resumed = self.rec["state"] != "running" or self.rec.get("resumes", 0) > 0
        self.rec["state"] = "running"
        self.rec["finished"] = None
        for st in self.rec["steps"].values():
            if st["state"] in ("failed", "cancelled"):
                st["state"] = "pending"
                st["attempts"] = 0
                st["task"] = None
            elif st["state"] in ("running", "interrupted"):  # cut: re-attach to its task or resubmit
                st["state"] = "pending"
        self.save()
        self.emit(
            "run_start",
            workflow=self.wf.name,
            steps=self.wf.order(),
            resumed=resumed,
            done=[n for n, s in self.rec["steps"].items() if s["state"] in ("done", "skipped")],
        )
        try:
            self.client = await Connection.open(self.sock)
        except ProtocolError as exc:
            return self._end("interrupted", exc.message)
        try:
            await self._schedule()
        except ProtocolError as exc:
            if exc.code == ERR_NO_DAEMON:
                return self._end("interrupted", f"{exc.message}; resume with `staff run --resume {self.id}`")
            raise
        except asyncio.CancelledError:
            self._end("interrupted", f"stopped; resume with `staff run --resume {self.id}`")
            raise
        finally:
            await self.client.close()
        if self._failed:
            return self._end("failed", self._failed)
        return self._end("done", self._stopped or "")

    def _end(self, state: str, message: str) -> int:
        for st in self.rec["steps"].values():
            if state == "interrupted" and st["state"] == "running":
                st["state"] = "interrupted"
        self.rec["state"] = state
        self.rec["finished"] = self.clock()
        self.rec["message"] = message
        self.save()
        self.emit("run_end", state=state, message=message, elapsed=self.rec["finished"] - self.rec["started"])
        return 0 if state == "done" else 1

    async def _schedule(self) -> None:
        steps = self.rec["steps"]
        running: dict[str, asyncio.Task[None]] = {}
        for st in steps.values():
            if st["state"] == "interrupted":
                st["state"] = "pending"  # re-attached or resubmitted below
        while True:
            if not self._failed and not self._stopped:
                for name in self.wf.order():
                    st = steps[name]
                    if st["state"] != "pending" or name in running:
                        continue
                    ready = self._ready(name)
                    if ready is None:
                        continue
                    if ready:  # skipped: a need failed, or the failure it handles did not happen
                        st["state"] = "skipped"
                        st["error"] = f"skipped: {ready}"
                        st["failed_need"] = ready.startswith("needs ")
                        self.save()
                        self.emit("step", name, state="skipped", message=ready)
                        continue
                    step = self.wf.steps[name]
                    if step.when is not None:
                        assert step.when.step is not None
                        if not step.when.test(steps[step.when.step].get("answer") or ""):
                            st["state"] = "skipped"
                            st["error"] = f"skipped: {step.when.describe()} is false"
                            self.save()
                            self.emit("step", name, state="skipped", message=st["error"])
                            continue
                    running[name] = asyncio.create_task(self._run_step(step), name=f"step-{name}")
            if not running:
                break
            done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                name = next(n for n, r in running.items() if r is t)
                del running[name]
                exc = t.exception()
                if isinstance(exc, ProtocolError) and exc.code == ERR_NO_DAEMON:
                    for other in running.values():
                        other.cancel()
                    await asyncio.gather(*running.values(), return_exceptions=True)
                    raise exc
                if exc is not None:
                    raise exc
            if (self._failed or self._stopped) and running:
                await self._cancel_running(running)
        if self._stopped:
            for name, st in steps.items():
                if st["state"] == "pending":
                    st["state"] = "skipped"
                    st["error"] = f"skipped: {self._stopped}"
                    self.emit("step", name, state="skipped", message=st["error"])
            self.save()

    def _ready(self, name: str) -> str | None:
        """'' when `name` can run now, None when it must wait, else why it is skipped.

        A need that failed (a step with ``on_failure`` other than ``fail``), or was skipped for
        such a failure, skips the step; a handler (some step's ``on_failure``) runs only once
        one of the steps it handles failed, and is skipped when none did."""
        steps = self.rec["steps"]
        sources = self.wf.failure_sources(name)
        if sources:
            if any(steps[s]["state"] not in STEP_FINAL for s in sources):
                return None
            if not any(steps[s]["state"] == "failed" for s in sources):
                return f"{', '.join(sorted(sources))} did not fail (on_failure)"
        for need in self.wf.steps[name].needs:
            ns = steps[need]
            if need in sources and ns["state"] == "failed":
                continue  # the failure this handler is for
            if ns["state"] == "failed" or (ns["state"] == "skipped" and ns.get("failed_need")):
                return f"needs {need}, which {'failed' if ns['state'] == 'failed' else 'was skipped'}"
            if ns["state"] not in ("done", "skipped"):
                return None
        return ""

    async def _cancel_running(self, running: dict[str, asyncio.Task[None]]) -> None:
        assert self.client is not None
        for name in list(running):
            tid = self.rec["steps"][name].get("task")
            if tid:
                with contextlib.suppress(ProtocolError):
                    await self.client.call("cancel", task=tid)
        await asyncio.gather(*running.values(), return_exceptions=True)
        running.clear()

    async def _run_step(self, step: Step) -> None:
        assert self.client is not None
        st = self.rec["steps"][step.name]
        st["state"] = "running"
        if st.get("started") is None:
            st["started"] = self.clock()
        while True:
            try:
                task = await self._attach_or_submit(step, st)
                result = await self._wait(step, st, task)
            except WorkflowError as exc:  # its prompt does not render (a value the checks could not see)
                result = {"state": "failed", "error": str(exc)}
                st["attempts"] = step.retries + 1  # the same answers render the same: no retry
            if result["state"] == "done":
                answer = result.get("answer") or ""
                if step.fail_if is not None and step.fail_if.test(
                    self._cond_text(step.fail_if, step, answer)
                ):
                    result = {**result, "state": "failed", "error": f"fail_if: {step.fail_if.describe()}"}
                else:
                    self._finish(step, st, result)
                    return
            error = result.get("error") or result["state"]
            if st["attempts"] <= step.retries and not self._failed:
                self.emit(
                    "step",
                    step.name,
                    state="retry",
                    message=f"attempt {st['attempts']} {result['state']}: {error}",
                )
                st["task"] = None
                self.save()
                continue
            st["state"] = "cancelled" if self._failed and result["state"] == "cancelled" else "failed"
            st["error"] = error
            st["finished"] = self.clock()
            self.save()
            self.emit("step", step.name, state=st["state"], message=error, agent=result.get("agent"))
            if st["state"] == "failed" and step.on_failure != "fail":
                then = "the run goes on" if step.on_failure == "continue" else f"{step.on_failure} runs"
                self.emit("step", step.name, state="on_failure", message=then)
            elif st["state"] == "failed" and not self._failed:
                self._failed = f"step {step.name!r} failed: {error}"
            return

    async def _attach_or_submit(self, step: Step, st: dict[str, Any]) -> dict[str, Any]:
        assert self.client is not None
        tid = st.get("task")
        if tid:
            try:
                task: dict[str, Any] = await self.client.call("task", task=tid)
                if task["state"] not in ("failed", "cancelled"):
                    self.emit("step", step.name, state="reattached", task=tid, agent=task.get("agent"))
                    return task
            except ProtocolError as exc:
                if exc.code == ERR_NO_DAEMON:
                    raise
        if not st.get("key"):
            # A new attempt. Its idempotency key is saved before the submit, so that a
            # submit whose reply was lost (the daemon died) is not run twice on resume.
            st["attempts"] += 1
            st["text"] = render(step.prompt, self.ctx(step.name), f"steps.{step.name}.prompt")
            st["key"] = f"{self.id}:{step.name}:{st['round']}:{st['attempts']}"
            self.save()
        task = await self.client.call("submit", to=step.to, text=st["text"], key=st["key"])
        st["task"] = task["id"]
        st["key"] = None
        st["submitted"] = self.clock()
        self.save()
        self.emit(
            "step",
            step.name,
            state="queued",
            task=task["id"],
            to=step.to,
            round=st["round"],
            attempt=st["attempts"],
        )
        return task

    async def _wait(self, step: Step, st: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
        assert self.client is not None
        if task["state"] in TASK_FINAL:
            return task
        last = {"state": task["state"]}

        def progress(ev: dict[str, Any]) -> None:
            t = ev.get("task")
            if ev.get("type") == "task" and t and t.get("id") == task["id"] and t["state"] != last["state"]:
                last["state"] = t["state"]
                if t["state"] not in TASK_FINAL:
                    st["agent"] = t.get("agent")
                    self.emit("step", step.name, state=t["state"], task=t["id"], agent=t.get("agent"))

        started = st.get("submitted") or self.clock()
        remaining = max(0.1, step.timeout - (self.clock() - started))
        result: dict[str, Any] = await self.client.call(
            "wait", on_event=progress, task=task["id"], timeout=remaining, progress=True
        )
        if result["state"] not in TASK_FINAL:
            with contextlib.suppress(ProtocolError):
                await self.client.call("cancel", task=task["id"])
            return {**result, "state": "failed", "error": f"timed out after {step.timeout:g}s"}
        return result

    def out_dir(self) -> Path:
        """The run's output folder: every `save` lands inside it."""
        out = self.rec.get("out")
        if out:
            return Path(out)
        return Path(self.rec.get("cwd") or ".")  # a record from before `out` existed

    def _save_answer(self, template: str, step: str, answer: str) -> Path:
        """Write `answer` to the rendered `save` path, which must stay inside the run's folder:
        the path is built from answers and inputs, and `../` or a symlink in them must not
        write anywhere else."""
        out = self.out_dir().resolve()
        try:
            rel = render(template, self.ctx(step), f"steps.{step}.save")
        except WorkflowError as exc:
            raise OSError(0, str(exc)) from None
        path = (out / rel).resolve()
        if not path.is_relative_to(out) or path == out:
            raise OSError(0, f"{rel!r} leads outside the run's folder {out}; nothing written")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(answer + "\n", encoding="utf-8")
        return path

    def _cond_text(self, cond: Condition, step: Step, answer: str) -> str:
        if cond.step is None or cond.step == step.name:
            return answer
        return str(self.rec["steps"][cond.step].get("answer") or "")

    def _finish(self, step: Step, st: dict[str, Any], task: dict[str, Any]) -> None:
        answer = task.get("answer") or ""
        st.update(state="done", answer=answer, agent=task.get("agent"), finished=self.clock(), error=None)
        st["history"].append(
            {
                "round": st["round"],
                "task": task["id"],
                "agent": task.get("agent"),
                "text": st.get("text"),
                "answer": answer,
            }
        )
        if step.save:
            try:
                st["saved"] = str(self._save_answer(step.save, step.name, answer))
            except OSError as exc:  # an answer is never lost for a file: it is in the record
                st.update(state="failed", error=f"save: {exc.strerror or exc}")
                self._failed = f"step {step.name!r} failed: {st['error']}"
                self.save()
                self.emit("step", step.name, state="failed", message=st["error"])
                return
        self.save()
        self.emit(
            "step",
            step.name,
            state="done",
            task=task["id"],
            agent=task.get("agent"),
            elapsed=st["finished"] - st["started"],
            answer=answer,
            saved=st.get("saved"),
        )
        if step.stop_if is not None and step.stop_if.test(self._cond_text(step.stop_if, step, answer)):
            self._stopped = f"stop_if on {step.name}: {step.stop_if.describe()}"
            self.emit("step", step.name, state="stop", message=self._stopped)
        if step.loop is not None and step.loop.when.test(self._cond_text(step.loop.when, step, answer)):
            n = self.rec["loops"].get(step.name, 0)
            if n < step.loop.max:
                self.rec["loops"][step.name] = n + 1
                body = self.wf.loop_body(step.name)
                for name in body:
                    s = self.rec["steps"][name]
                    s.update(
                        state="pending", round=s.get("round", 1) + 1, attempts=0, task=None, started=None
                    )
                self.save()
                self.emit(
                    "step",
                    step.name,
                    state="loop",
                    message=f"{step.loop.when.describe()}: back to {step.loop.back_to} "
                    f"(loop {n + 1} of at most {step.loop.max})",
                )
            elif step.loop.after_max == "fail":
                st["state"] = "failed"
                st["error"] = f"still {step.loop.when.describe()} after {step.loop.max} loops"
                self._failed = f"step {step.name!r} failed: {st['error']}"
                self.save()
                self.emit("step", step.name, state="failed", message=st["error"])
            else:
                self.emit(
                    "step",
                    step.name,
                    state="loop_end",
                    message=f"loop limit {step.loop.max} reached; going on",
                )
