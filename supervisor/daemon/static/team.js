// The team page: agents live (blocked ones on top with their question as buttons), a box to
// submit a task and see its answer, the inbox with acknowledge.
"use strict";

const mine = new Map(); // task id → its row, for the tasks submitted from this page

function renderTeam(team) {
  staff.team = team;
  const asks = document.getElementById("asks");
  const blocked = team.agents.filter((a) => a.state === "blocked");
  const shown = new Set([...asks.querySelectorAll(".ask")].map((n) => n.dataset.agent + "\u0000" + n.dataset.q));
  const want = new Set(blocked.map((a) => a.name + "\u0000" + (a.question ? a.question.id : "")));
  // a card being answered stays as it is until its question goes (no flicker under a thumb)
  if ([...shown].join("|") !== [...want].join("|")) {
    asks.replaceChildren(...blocked.map((a) => {
      const card = questionCard(a);
      card.dataset.q = a.question ? a.question.id : "";
      return card;
    }));
  }
  const list = document.getElementById("agents");
  list.replaceChildren(...team.agents.map((a) =>
    el("li", { class: `agent s-${a.state}`, "data-agent": a.name, "data-state": a.state },
      el("a", { href: `/agents/${encodeURIComponent(a.name)}`, class: "name" }, a.name),
      el("span", { class: `state s-${a.state}` }, a.state + (a.stalled ? " (stalled)" : "")),
      el("span", { class: "task" }, a.task ? `${a.task}: ${a.task_title || ""}` : a.error || hostDown(team, a)),
      el("span", { class: "meta" },
        a.queue ? `${a.queue} queued · ` : "", a.role && a.role !== a.name ? `${a.role} · ` : "",
        ago(a.last_active)))));
  const to = document.getElementById("to");
  const chosen = to.value;
  const roles = [...new Set(team.agents.map((a) => a.role).filter((r) => r))];
  to.replaceChildren(el("option", { value: "any" }, "any"),
    ...team.agents.map((a) => el("option", { value: a.name }, a.name)),
    ...roles.map((r) => el("option", { value: `role:${r}` }, `role:${r}`)));
  if ([...to.options].some((o) => o.value === chosen)) to.value = chosen;
  const inbox = document.getElementById("inbox");
  document.getElementById("ack-all").hidden = team.inbox.length === 0;
  inbox.replaceChildren(...(team.inbox.length ? team.inbox.slice().reverse().map((i) =>
    el("li", { class: "item", "data-id": i.id },
      el("strong", {}, i.title),
      i.body ? el("pre", {}, i.body.slice(0, 2000)) : null,
      el("span", { class: "meta" }, `${i.source} → ${i.to} · ${ago(new Date(i.time * 1000).toISOString())}`),
      el("button", { type: "button", class: "small ack", onclick: () => ack([i.id]) }, "Acknowledge")))
    : [el("li", { class: "empty" }, "Nothing unread.")]));
  document.body.dataset.rendered = String(Date.now());
}

// why another host's agent is greyed: its link's state and the transport's last error line
function hostDown(team, a) {
  const h = a.state === "unreachable" && (team.hosts || []).find((x) => x.host === a.host);
  return h ? `host ${h.host} ${h.state}${h.error ? ": " + h.error : ""}` : "";
}

function say(text) {
  const note = document.getElementById("notice");
  note.textContent = text;
  note.hidden = !text;
}

async function ack(ids) {
  try { await call("POST", "/web/inbox/ack", { ids }); } catch (e) { say(e.message); }
}

function showTask(t) {
  const row = mine.get(t.id);
  if (!row) return;
  row.dataset.state = t.state;
  row.querySelector(".state").textContent = t.state;
  row.querySelector(".who").textContent = t.agent || t.to;
  const out = row.querySelector(".answer");
  if (t.state === "done") out.textContent = t.answer || "";
  else if (t.error) out.textContent = t.error;
}

document.getElementById("submit").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = document.getElementById("text");
  const to = document.getElementById("to").value || "any";
  try {
    const t = await call("POST", "/tasks", { to, text: text.value });
    const row = el("li", { class: "task", "data-id": t.id },
      el("span", { class: "id" }, t.id), " ", el("span", { class: "who" }, t.agent || t.to), " ",
      el("span", { class: "state" }, t.state),
      el("p", { class: "text" }, text.value.slice(0, 200)),
      el("pre", { class: "answer" }));
    mine.set(t.id, row);
    document.getElementById("tasks").prepend(row);
    showTask(t);
    text.value = "";
    // it may have finished before this row existed: its events went by unseen
    if (!["done", "failed", "cancelled"].includes(t.state)) showTask(await call("GET", `/tasks/${t.id}`));
  } catch (e) {
    say(e.message);
  }
});

document.getElementById("ack-all").addEventListener("click", () => ack(null));

setupNotifyButton();
teamEvents({
  team: renderTeam,
  task: (ev) => { showTask(ev.task); notifyFromEvent(ev); },
  state: notifyFromEvent,
  monitor: notifyFromEvent,
});
// relative times stay true without events
setInterval(() => { if (staff.team) renderTeam(staff.team); }, 30000);
