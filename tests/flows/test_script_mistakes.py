"""A flow script that cannot be read as meant is one line naming the script (and its line), never a
traceback, a header silently ignored or a script that passes by checking nothing (issue 22, item 5:
found by the attacks on `flows test`)."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from unogas_bot.cli.main import main as cli_main
from unogas_bot.flows.script import ScriptError, parse

SCRIPTS = Path(__file__).parent / "scripts"


def _flows_test(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    status = cli_main(["flows", "test", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _one_line(err: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_a_script_saved_with_a_bom_keeps_its_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Windows' Notepad writes a BOM: the first header must not become a line the bot is expected to
    say (and an English script replayed in Italian)."""
    source = (SCRIPTS / "en" / "group.flow").read_text(encoding="utf-8")
    assert source.startswith("#")
    script = tmp_path / "bom.flow"
    script.write_bytes(codecs.BOM_UTF8 + source.replace("\n", "\r\n").encode())
    status, out, _ = _flows_test(monkeypatch, capsys, str(script))
    assert status == 0 and out.startswith("PASS"), out
    assert parse("\ufeff# language: en\n> /start\n").headers == {"language": "en"}


def test_a_header_given_twice_is_an_error_naming_both_lines() -> None:
    with pytest.raises(ScriptError) as caught:
        parse("# language: it\n# user: 7\n# language: en\n> /start\n", Path("x.flow"))
    assert str(caught.value) == "x.flow:3: header 'language' given twice (first on line 1)"


def test_a_header_after_the_first_input_is_an_error_not_a_comment() -> None:
    with pytest.raises(ScriptError) as caught:
        parse("# language: it\n> /start\n# language: en\n> /help\n", Path("x.flow"))
    assert str(caught.value).startswith(
        "x.flow:3: header 'language' after the first input (line 2): headers go above it"
    )
    parse("> /start\n# A comment: with a colon, and words before it.\n")  # a comment stays one


def test_a_script_that_types_nothing_is_an_error_not_a_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty file (a failed copy, a truncated save) checked nothing: it must not count as passed."""
    for name, text in (("empty.flow", ""), ("headers.flow", "# language: it\n# A comment.\n")):
        script = tmp_path / name
        script.write_text(text, encoding="utf-8")
        status, out, err = _flows_test(monkeypatch, capsys, str(script))
        assert status == 1 and "PASS" not in out
        _one_line(err)
        assert err == f"unogas-bot: {script}: nothing is typed (no `> ` line): the script checks nothing\n"


def test_a_script_that_is_not_utf8_or_cannot_be_read_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "latin1.flow"
    script.write_bytes("# language: it\n> /start\nbot: Citt\u00e0\n".encode("latin-1"))
    status, _, err = _flows_test(monkeypatch, capsys, str(script))
    assert status == 1
    _one_line(err)
    assert err.startswith(f"unogas-bot: {script}:3: not UTF-8") and "iconv" in err
    folder = tmp_path / "folder.flow"
    folder.mkdir()
    (folder / "inside.flow").mkdir()  # a folder named like a script, inside a folder given
    status, _, err = _flows_test(monkeypatch, capsys, str(folder))
    assert status == 1
    _one_line(err)


@pytest.mark.parametrize("where", ["../outside.csv", "/etc/hostname", "sub/../../outside.csv"])
def test_a_customers_csv_outside_the_scripts_folder_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """A script from a merge request must not make CI print the first line of any file it can read
    (`wrong header: found 'root:x:0:0:...'`)."""
    (tmp_path / "outside.csv").write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    folder = tmp_path / "scripts"
    (folder / "sub").mkdir(parents=True)
    script = folder / "x.flow"
    script.write_text(f"# customers: {where}\n> /start\n", encoding="utf-8")
    status, _, err = _flows_test(monkeypatch, capsys, str(script))
    assert status == 1
    _one_line(err)
    assert err.startswith(f"unogas-bot: {script}:1: customers: ") and "inside the script's folder" in err
    assert "root:" not in err and "wrong header" not in err  # not read at all


@pytest.mark.parametrize("where", ["missing/x.flow", "."])
def test_record_refuses_a_file_it_cannot_write_before_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """A folder that does not exist, or a folder: one line at once, not a traceback after the whole
    session (which was lost)."""
    import io
    import sys

    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setattr(sys, "stdin", io.StringIO("/start\n"))
    status = cli_main(["flows", "record", str(tmp_path / where)])
    captured = capsys.readouterr()
    assert status == 1 and "bot:" not in captured.out, captured.out
    _one_line(captured.err)
    assert captured.err.startswith(f"unogas-bot: cannot write {tmp_path / where}: ")


def test_k_takes_a_glob_with_a_folder_in_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-k 'it/login_*'` matched nothing: the glob was matched against the whole path or the name only."""
    status, out, err = _flows_test(monkeypatch, capsys, str(SCRIPTS), "-k", "it/login_*")
    assert status == 0, err
    passed = sorted(Path(line.split()[1]).name for line in out.splitlines() if line.startswith("PASS"))
    assert passed == ["login_lockout.flow", "login_profile_logout.flow"]
    status, _, err = _flows_test(monkeypatch, capsys, str(SCRIPTS), "-k", "[")
    assert status == 1 and err == "unogas-bot: no *.flow script matches -k '['\n"


@pytest.mark.parametrize("where", ["missing/results.xml", "."])
def test_a_junit_file_that_cannot_be_written_is_said_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """Not after every script was replayed (minutes, in CI)."""
    target = tmp_path / where
    status, out, err = _flows_test(
        monkeypatch, capsys, str(SCRIPTS / "it" / "group.flow"), "--junit", str(target)
    )
    assert status == 1 and "PASS" not in out, out
    _one_line(err)
    assert err.startswith(f"unogas-bot: cannot write {target}: ")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("# now: 9999-12-31T23:59", "x.flow:1: now must be between 2000-01-01 and 2999-12-31, not"),
        ("# now: 0001-01-01T00:00", "x.flow:1: now must be between 2000-01-01 and 2999-12-31, not"),
        ("# user: 0", "x.flow:1: user must be a Telegram user id (a whole number from 1 to 2^63-1), not '0'"),
        ("# user: 99999999999999999999999", "x.flow:1: user must be a Telegram user id"),
        ("# password: corta", "x.flow:1: password: the bot's rules refuse it (too_short)"),
        ("# answer: x", "x.flow:1: answer: the bot's rules refuse it (too_short)"),
    ],
)
def test_a_header_value_the_bot_cannot_run_with_is_refused_before_the_replay(
    header: str, message: str
) -> None:
    """Dates the bot's arithmetic overflows on, a user id no chat can have (a traceback, or the bot's
    internal error on every message), a password or an answer a mask cannot type because the bot refuses
    it: each named at its line, not found out halfway through a replay."""
    with pytest.raises(ScriptError) as caught:
        parse(f"{header}\n> /start\n", Path("x.flow"))
    assert str(caught.value).startswith(message), str(caught.value)
    assert "corta" not in str(caught.value)  # the header's secret is not repeated


@pytest.mark.parametrize("user_id", ["0", "-5", "99999999999999999999999"])
@pytest.mark.parametrize("command", [["console"], ["flows", "record", "x.flow"]])
def test_a_user_id_no_chat_can_have_is_refused_by_the_console_and_record(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    user_id: str,
    command: list[str],
) -> None:
    import io
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    monkeypatch.setattr(sys, "stdin", io.StringIO("/start\n"))
    with pytest.raises(SystemExit) as exited:
        cli_main([*command, "--user-id", user_id])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].endswith(
        f"argument --user-id: not a Telegram user id (a whole number from 1 to 2^63-1): {user_id!r}"
    ), err
