"""How an agent's status reads in one line (`staff status`, the console's sidebar)."""

from __future__ import annotations

from supervisor.client.statusline import state_text, tokens, usage_text


def test_the_state_says_what_the_state_alone_does_not() -> None:
    assert state_text({"status": "idle"}) == "idle"
    assert state_text({"status": "idle", "detail": "limited until 11:15"}) == "idle · limited until 11:15"
    assert state_text({"status": "idle", "background": 2}) == "idle · background: 2"
    assert state_text({"status": "working", "detail": "retrying after API error 529 (attempt 2/10)"}) \
        == "working · retrying after API error 529 (attempt 2/10)"


def test_usage_is_the_context_used_and_the_cost() -> None:
    assert usage_text(None) == ""
    assert usage_text({"context_tokens": 4361, "context_pct": 2.2, "cost_usd": 0.008179}) == "4.4k 2% $0.01"
    assert usage_text({"context_tokens": 950, "context_pct": None, "cost_usd": None}) == "950"
    assert [tokens(n) for n in (0, 999, 1000, 12_345, 1_000_000, 2_345_678)] == \
        ["0", "999", "1k", "12.3k", "1M", "2.3M"]
