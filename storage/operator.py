"""The support operator a task acts for: named in every audit event written meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# The support operator on whose behalf the current task acts (the command line's `--operator`), or None for
# the chat. A context variable rather than a parameter: the support tools act through the same use cases as
# the chat (erasure, export), and every audit event those write must name the operator without each use case
# and each of its callers carrying one more argument. Set only through `acting_operator`.
_OPERATOR: ContextVar[str | None] = ContextVar("unogas_operator", default=None)


@contextmanager
def acting_operator(name: str) -> Iterator[None]:
    """Within the block (and the tasks and event loops started in it), every audit event this module
    records names operator `name` in its detail text ("...; operator NAME")."""
    token = _OPERATOR.set(name)
    try:
        yield
    finally:
        _OPERATOR.reset(token)


def operator_detail(detail: str) -> str:
    operator = _OPERATOR.get()
    if operator is None:
        return detail
    return f"{detail}; operator {operator}" if detail else f"operator {operator}"
