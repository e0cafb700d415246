// Shared by the team and agent pages: calls, question cards, notifications. No framework,
// no inline script (the server's Content-Security-Policy forbids it); text goes in with
// textContent only, never as HTML.
"use strict";

const staff = (window.staff = window.staff || { notified: [], shown: {} });

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function call(method, path, body) {
  const resp = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 401) {
    location.href = "/login";
    throw new Error("logged out");
  }
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok) {
    const msg = data && data.error ? data.error.message : `${resp.status} ${resp.statusText}`;
    throw new Error(msg);
  }
  return data;
}

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.floor(s)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

// A blocked agent's question: its context, the question, one button per choice. A tap sends
// the choice's number through the checked answer (the same as `staff answer`).
function questionCard(agent, onDone) {
  const q = agent.question || { text: "", context: [], choices: [] };
  const status = el("p", { class: "status", role: "status" });
  const buttons = q.choices.map((c) =>
    el("button", {
      type: "button", class: "choice", "data-key": c.key,
      onclick: async (ev) => {
        for (const b of ev.target.parentNode.querySelectorAll("button")) b.disabled = true;
        status.textContent = `answering ${c.key}…`;
        try {
          const r = await call("POST", `/web/agents/${encodeURIComponent(agent.name)}/answer`,
            { key: c.key, question: q.id });
          status.textContent = `answered ${c.key}. ${c.label}: ${agent.name} is ${r.state}`;
          if (onDone) onDone(r);
        } catch (e) {
          status.textContent = e.message;
          for (const b of ev.target.parentNode.querySelectorAll("button")) b.disabled = false;
        }
      },
    }, `${c.key}. ${c.label}`));
  return el("article", { class: "ask", "data-agent": agent.name },
    el("h3", {}, el("a", { href: `/agents/${encodeURIComponent(agent.name)}` }, agent.name), " asks"),
    q.context.length ? el("pre", { class: "context" }, q.context.join("\n")) : null,
    el("p", { class: "question" }, q.text || "(see its screen)"),
    el("div", { class: "choices" }, buttons),
    status);
}

// Browser notifications: an agent blocks, a task finishes, a monitor fires. Every one is also
// kept in staff.notified (the tests read it), shown or not.
// Shown through the service worker's registration when there is one (the only way on a
// phone), else with `new Notification()`.
const worker = "serviceWorker" in navigator && window.isSecureContext
  ? navigator.serviceWorker.register("/static/sw.js").catch(() => null) : Promise.resolve(null);

async function notify(title, body, url) {
  staff.notified.push({ title, body, url, time: Date.now() });
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const options = { body, tag: title + body, icon: "/static/icon.svg", data: { url } };
  try {
    const reg = await worker;
    if (reg) return await reg.showNotification(title, options);
    const n = new Notification(title, options);
    if (url) n.onclick = () => { window.focus(); location.href = url; };
  } catch (e) { /* notifications refused by this browser */ }
}

function notifyFromEvent(ev) {
  if (ev.type === "state" && ev.new === "blocked") {
    notify(`${ev.agent} asks`, "A question waits for your answer", `/agents/${ev.agent}`);
  } else if (ev.type === "task" && ["done", "failed"].includes(ev.task.state)) {
    const t = ev.task;
    const first = (t.state === "done" ? t.answer || "" : t.error || "").split("\n")[0].slice(0, 120);
    notify(`${t.id} ${t.state} on ${t.agent || t.to}`, first, "/");
  } else if (ev.type === "monitor") {
    notify(`monitor: ${ev.monitor.title || ev.monitor.until}`, `${ev.monitor.agent}`, `/agents/${ev.monitor.agent}`);
  }
}

function setupNotifyButton() {
  const btn = document.getElementById("notify");
  if (!btn || !("Notification" in window)) return;
  if (Notification.permission === "default") btn.hidden = false;
  btn.addEventListener("click", async () => {
    await Notification.requestPermission();
    btn.hidden = Notification.permission !== "default";
  });
}

// The team's event stream; `handlers` by event type. On a lost connection the browser
// reconnects by itself; a session that expired is sent to the login page.
function teamEvents(handlers) {
  const conn = document.getElementById("conn");
  const es = new EventSource("/web/events");
  es.onopen = () => { conn.textContent = "live"; conn.className = "conn live"; };
  es.onerror = async () => {
    conn.textContent = "reconnecting…"; conn.className = "conn down";
    try { await call("GET", "/web/team"); } catch (e) { /* call() sent us to /login on a 401 */ }
  };
  for (const [type, fn] of Object.entries(handlers)) {
    es.addEventListener(type, (m) => fn(JSON.parse(m.data)));
  }
  return es;
}
