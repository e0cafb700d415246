"""The interactive multiplexed console: a prompt_toolkit client of the daemon.

`model` (arrangement, focus, splits: no UI), `termview` (the terminal pane control that
renders a local pyte screen), `client` (asyncio JSON-lines connections), `app` (the
Application: layout and keys), `commands` (the `staff console` / `staff attach` CLI).
"""
