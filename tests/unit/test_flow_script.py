"""Flow scripts as text (unogas_bot/flows/script.py): headers, patterns, `...`, the failure report and
--update, without a bot."""

from __future__ import annotations

from pathlib import Path

import pytest

from unogas_bot.flows.script import ScriptError, describe, line_matches, match_step, parse, render

SCRIPT = """# A comment before the headers
# language: en
# user: 42
> /start
bot: Welcome {*}
...
> /register
bot: Step {re:[0-9]+} of 12
     What is your customer code?
"""


def test_headers_inputs_and_expected_lines_are_read_with_their_line_numbers() -> None:
    script = parse(SCRIPT, Path("s.flow"))
    assert script.headers == {"language": "en", "user": "42"}
    assert [line.number for line in script.inputs] == [4, 7]
    assert [line.number for line in script.steps[2].expected] == [8, 9]


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        ("bot: Hello   there", "bot: Hello there", True),
        ("bot: Step {re:[0-9]+} of 12", "bot: Step 7 of 12", True),
        ("bot: Step {re:[0-9]+} of 12", "bot: Step x of 12", False),
        ("bot: Hello {*}!", "bot: Hello Mario Rossi!", True),
        ("bot: Hello (there)", "bot: Hello (there)", True),  # no pattern: compared as text
    ],
)
def test_line_patterns(expected: str, actual: str, matches: bool) -> None:
    assert line_matches(expected, actual) is matches


def test_an_ellipsis_matches_any_number_of_lines_and_a_difference_names_its_line() -> None:
    script = parse(SCRIPT, Path("s.flow"))
    assert match_step(script.steps[1], ["bot: Welcome to Unogas.", "     one", "", "     two"]) is None
    assert match_step(script.steps[1], ["bot: Welcome back."]) is None
    mismatch = match_step(script.steps[2], ["bot: Step 1 of 12", "     What is your name?"])
    assert mismatch is not None and mismatch.expected is not None and mismatch.expected.number == 9
    report = describe(mismatch, Path("s.flow"))
    assert report.startswith("s.flow:9: expected after `> /register`:")
    assert "What is your name?" in report


def test_more_lines_than_expected_fail_too() -> None:
    script = parse(SCRIPT, Path("s.flow"))
    mismatch = match_step(
        script.steps[2], ["bot: Step 1 of 12", "     What is your customer code?", "bot: more"]
    )
    assert mismatch is not None and mismatch.expected is None and mismatch.actual == "bot: more"


def test_update_rewrites_only_the_failing_steps() -> None:
    script = parse(SCRIPT, Path("s.flow"))
    actual = [[], ["bot: Welcome!"], ["bot: Step 1 of 12", "     What is your code?"]]
    text = render(script, actual, keep=[True, True, False])
    assert "bot: Welcome {*}\n...\n" in text and "     What is your code?\n" in text
    assert text.startswith("# A comment before the headers\n# language: en\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# language: fr\n", "language must be it or en"),
        ("# chat: channel\n", "chat must be private or group"),
        ("# user: me\n", "user must be a Telegram user id"),
        ("> /start\nbot: {re:(}\n", "s.flow:2: bad {re:...} pattern"),
    ],
)
def test_scripts_that_cannot_be_read_say_why(text: str, message: str) -> None:
    with pytest.raises(ScriptError, match=message.replace("{", r"\{").replace("(", r"\(")):
        parse(text, Path("s.flow"))
