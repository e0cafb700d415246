"""agentstaff: a pty-supervised team of coding agents. The folders are the architecture.

Each layer imports only the layers below it (tests/unit/test_layers.py checks it), in the
order bytes and tasks flow:

- ``protocol``, ``states``, ``events``, ``util/``: the bottom. The wire format and error codes
  (the editor hook imports only these and the stdlib), the agent states, what an agent tells
  its team, atomic files, inotify.
- ``pty/``: one child program under a pseudo-terminal (``process``); the keeper, a separate
  process that holds the ptys so agents outlive the daemon (``keeper``), and the daemon's
  connection to it (``keeperclient``).
- ``screen/``: the terminal emulator per agent (libghostty-vt or pyte) and ANSI snapshots.
- ``detect/``: the state rules (``rules``; the data is in ``profiles/*.toml``), getting an
  answer out of a transcript or a screen (``answers``), and out of the other programs' own
  session records (``sessionfiles/``: Codex, Gemini CLI, opencode, Aider).
- ``agent/``: one agent's state machine (``agent``), the delivery of a task into it
  (``delivery``), the stall and draft watchers (``watchers``), the task record (``task``).
- ``team/``: the team (``supervisor``: agents by name, the queue, routing, restarts; ``routing``:
  the one rule placing ``any``/``role:`` tasks here or on another host), the
  team file (``config``), the journal, the inbox, status files, worktrees; above them the
  features built on the team: the chief, pools, monitors (attached as ``Extension``s).
- ``daemon/``: the process that owns a team: ``main``, the Unix socket ``server``, the links
  to other hosts' daemons (``hosts``), output ``streams`` and recordings for watchers, the
  HTTP API and the web app.
- ``client/``: everything that talks to a daemon through the protocol: ``cli/`` (the
  ``staff`` command; ``common`` holds what its subcommands share), ``console/``,
  ``workflows/``, attach, fan-out, the MCP server, the mail bridge.
"""
