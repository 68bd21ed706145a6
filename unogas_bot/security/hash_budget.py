"""How much bcrypt work one Telegram user may cause: a sliding window of hashes per user.

A bcrypt hash or check costs about 0.2 s of a core at cost 12, and the bot has as many hash workers as
cores. Without a budget one user can keep the workers busy by repeating a password and its confirmation
(or by guessing logins), and every other customer's hash waits behind theirs. So each hash or verify a
user causes first takes one unit from their budget (``take``); beyond it the user is asked to wait the
seconds the window needs to free one, and nothing of their conversation is lost.

Memory stays bounded without a sweeper: a user is remembered only while one of their hashes is inside the
window, and at most ``limit`` timestamps each. Users are kept in the order of their latest hash, so the
ones whose window has passed are always at the front and are forgotten there, a few per call.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from unogas_bot.clock import utcnow

DEFAULT_LIMIT = 6
DEFAULT_WINDOW = timedelta(minutes=1)


class HashBudgetExceeded(Exception):
    """The user has used their bcrypt budget; one more hash is allowed in `retry_after_seconds`."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"hash budget used up: retry after {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class HashBudget:
    """At most `limit` bcrypt operations per user in any `window` (a sliding window, not fixed minutes:
    a burst at the end of one minute cannot be followed by another at the start of the next)."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: timedelta = DEFAULT_WINDOW,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if limit < 1:
            raise ValueError("a hash budget allows at least one hash")
        if window <= timedelta(0):
            raise ValueError("a hash budget's window must be positive")
        self.limit = limit
        self.window = window
        self._clock = clock
        # user id -> times of their hashes inside the window, oldest first; dict order: latest hash last.
        self._used: dict[int, deque[datetime]] = {}

    def take(self, user_id: int) -> None:
        """Count one bcrypt operation for `user_id`, or raise HashBudgetExceeded if the window is full.

        Call it right before the hash or verify it pays for; a refused call counts nothing."""
        now = self._clock()
        start = now - self.window
        self._forget_idle(start)
        times = self._used.get(user_id)
        if times is None:
            self._used[user_id] = deque([now])
            return
        while times and times[0] <= start:
            times.popleft()
        if len(times) >= self.limit:
            # Refused: nothing counted and the user's place in the order (their latest hash) is unchanged.
            wait = (times[0] + self.window - now).total_seconds()
            raise HashBudgetExceeded(max(1, math.ceil(wait)))
        times.append(now)
        del self._used[user_id]
        self._used[user_id] = times  # moved to the end: the dict stays ordered by latest hash

    def tracked_users(self) -> int:
        """How many users are remembered (each has a hash inside the window, or had until just now)."""
        return len(self._used)

    def _forget_idle(self, start: datetime) -> None:
        """Forget users whose latest hash left the window; they are at the front of the dict."""
        while self._used:
            user_id, times = next(iter(self._used.items()))
            if times and times[-1] > start:
                return
            del self._used[user_id]
