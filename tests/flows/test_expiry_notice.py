"""The expiry notice says how to start again, with the form's own command in the customer's language
(issue 13)."""

from __future__ import annotations


async def test_the_expiry_notice_says_how_to_start_again(sqlite_bot, clock) -> None:
    for user_id, lang, start, again in (
        (9301, "it", "/registrati", "scriva /registrati"),
        (9302, "en", "/login", "type /login"),
    ):
        user = sqlite_bot.user(user_id, language_code=lang)
        await user.send(start)
        clock.advance(minutes=16)
        events = await user.send("x")
        assert again in user.texts(events)[-1]
