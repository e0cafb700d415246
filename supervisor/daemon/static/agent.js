// The agent page: its live terminal (xterm.js). The first paint is the daemon's snapshot of
// the screen (after the scrollback it holds), then the raw output as it comes. Keys typed
// here go to the agent and hold it as a person typing (`user`), like the console's; `?ro=1`
// only watches. The terminal keeps the agent's own size: on a narrow screen it scrolls.
"use strict";

const name = decodeURIComponent(location.pathname.split("/")[2] || "");
const readOnly = new URLSearchParams(location.search).get("ro") === "1";
document.getElementById("name").textContent = name;
document.title = `staff · ${name}`;
const mode = document.getElementById("mode");
mode.textContent = readOnly ? "Type" : "Read-only";
mode.href = readOnly ? location.pathname : "?ro=1";
document.body.classList.toggle("ro", readOnly);

const phone = window.matchMedia("(max-width: 600px)").matches;
const term = new Terminal({
  scrollback: 5000,
  fontSize: phone ? 11 : 14,
  fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace",
  disableStdin: readOnly,
  cursorBlink: !readOnly,
  theme: { background: "#0d0f12" },
});
term.open(document.getElementById("term"));
staff.term = term;

let streamId = null;
let history = null; // scrollback lines from hello, written before the first snapshot
let sending = Promise.resolve();
let pending = "";

function send(keys) {
  if (readOnly || !streamId) return;
  pending += keys;
  sending = sending.then(async () => {
    if (!pending) return;
    const k = pending;
    pending = "";
    try {
      await call("POST", `/web/agents/${encodeURIComponent(name)}/keys`, { stream: streamId, keys: k });
    } catch (e) {
      setConn(e.message, "down");
    }
  });
}

function setConn(text, cls) {
  const conn = document.getElementById("conn");
  conn.textContent = text;
  conn.className = `conn ${cls}`;
}

function setState(state) {
  const st = document.getElementById("state");
  st.textContent = state;
  st.className = `state s-${state}`;
  // another host's agent whose link is down: greyed, typing refused (the server says why)
  document.body.classList.toggle("unreachable", state === "unreachable");
}

term.onData(send);
for (const b of document.querySelectorAll("#keys button")) {
  b.addEventListener("click", () => { send(JSON.parse(`"${b.dataset.keys}"`)); term.focus(); });
}

const es = new EventSource(`/web/agents/${encodeURIComponent(name)}/stream${readOnly ? "?ro=1" : ""}`);
es.addEventListener("hello", (m) => {
  const h = JSON.parse(m.data);
  streamId = h.stream;
  history = h.history;
  setConn(readOnly ? "live, read-only" : "live", "live");
});
es.onmessage = (m) => {
  const frame = JSON.parse(m.data);
  const ev = frame.event;
  if (!ev) return;
  if (ev.type === "snapshot") {
    if (term.rows !== ev.rows || term.cols !== ev.cols) term.resize(ev.cols, ev.rows);
    if (history !== null) {
      if (history.length) term.write(history.join("\r\n") + "\r\n".repeat(ev.rows + 1));
      history = null;
    }
    setState(ev.state);
    term.write(ev.data);
  } else if (ev.type === "output") {
    term.write(ev.data);
  }
  staff.frames = (staff.frames || 0) + 1;
};
es.onerror = async () => {
  setConn("reconnecting…", "down");
  history = null; // the new stream starts with a fresh snapshot; the scrollback is already here
  try { await call("GET", "/web/team"); } catch (e) { /* to /login on a 401 */ }
};

function renderAsk(team) {
  const a = team.agents.find((x) => x.name === name);
  if (!a) return;
  setState(a.state);
  const asks = document.getElementById("asks");
  const q = a.state === "blocked" && a.question ? a.question.id : "";
  if (asks.dataset.q === q) return;
  asks.dataset.q = q;
  asks.replaceChildren(...(a.state === "blocked" ? [questionCard(a)] : []));
}

// the same stream carries this agent's state and question, and the events to notify of
es.addEventListener("agent", (m) => renderAsk({ agents: [JSON.parse(m.data)] }));
es.addEventListener("state", (m) => {
  const ev = JSON.parse(m.data);
  if (ev.agent === name) setState(ev.new);
  notifyFromEvent(ev);
});
for (const type of ["task", "monitor"]) es.addEventListener(type, (m) => notifyFromEvent(JSON.parse(m.data)));
if (!readOnly && !phone) term.focus();
