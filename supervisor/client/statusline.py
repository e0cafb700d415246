"""How an agent's status reads in a line: its state with what the state alone does not say
(a retry, a limit, background work), and its usage. Shared by `staff status` and the console
so both say the same thing in the same words."""

from __future__ import annotations

from typing import Any


def state_text(status: dict[str, Any]) -> str:
    """``idle``, ``working · retrying after API error 529 (attempt 2/10)``,
    ``idle · limited until 11:15``, ``idle · background: 1``."""
    parts = [str(status.get("status") or "?")]
    if status.get("detail"):
        parts.append(str(status["detail"]))
    if status.get("background"):
        parts.append(f"background: {status['background']}")
    return " · ".join(parts)


def tokens(n: float) -> str:
    """A token count the way dashboards print it: 950, 12.3k, 1.2M."""
    if n < 1000:
        return str(int(n))
    if n < 1_000_000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return f"{n / 1_000_000:.1f}M".replace(".0M", "M")


def usage_text(usage: dict[str, Any] | None) -> str:
    """The two figures users ask for: the context window used (tokens and %), and the
    estimated cost: ``48.2k 24% $0.31`` ('' before the first response; no cost when the
    model has no known price)."""
    if not usage:
        return ""
    parts = [tokens(int(usage.get("context_tokens") or 0))]
    if usage.get("context_pct") is not None:
        parts.append(f"{usage['context_pct']:.0f}%")
    cost = usage.get("cost_usd")
    if isinstance(cost, (int, float)):
        parts.append(f"${cost:.2f}")
    return " ".join(parts)
