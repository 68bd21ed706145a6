"""The support CLI as an Italian office uses it (issue 22, item 6): a CSV from Excel (semicolons, headers in
any case, Windows-1252) is imported or told exactly what to fix; `accounts show --json` names the account
and the code in every event; an export holds no internal key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ops.test_cli_accounts import MARIO_EMAIL, Store, run_cli, store, two_accounts

__all__ = ["store", "two_accounts"]  # the fixtures, shared with test_cli_accounts.py

ROWS = [
    ("UG-1", "person", "Nicolò", "D'Angelo", "", "DNGNCL69S05F839F"),
    ("UG-2", "business", "", "", "Idrotermica Ferraro S.r.l.", "02847390586"),
]


def _csv(path: Path, header: str, separator: str, encoding: str = "utf-8") -> Path:
    lines = [header] + [separator.join(row) for row in ROWS]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def test_a_semicolon_csv_with_headers_in_any_case_is_imported(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "Customer_Code;KIND;first_name;Last_Name;company_name;TAX_CODE"
    code, out, err = run_cli(capsys, "customers", "import", str(_csv(tmp_path / "excel.csv", header, ";")))
    assert code == 0, err
    assert "2 customers added" in out
    header = "customer_code,kind,first_name,last_name,company_name,tax_code"
    code, out, err = run_cli(capsys, "customers", "import", str(_csv(tmp_path / "plain.csv", header, ",")))
    assert code == 0 and "2 rows read: 0 customers added, 0 updated" in out, (out, err)


def test_a_wrong_header_is_named_as_found(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _csv(tmp_path / "other.csv", "codice;tipo;nome;cognome;ragione_sociale;codice_fiscale", ";")
    code, _, err = run_cli(capsys, "customers", "import", str(path))
    assert code == 1 and "Traceback" not in err
    assert "line 1: wrong header: found 'codice;tipo;nome;cognome;ragione_sociale;codice_fiscale'" in err
    assert "expected customer_code,kind,first_name,last_name,company_name,tax_code" in err
    assert "in any case, separated by commas or semicolons" in err


def test_a_latin_1_file_names_its_encoding_and_the_way_to_fix_it(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "customer_code;kind;first_name;last_name;company_name;tax_code"
    path = _csv(tmp_path / "latin1.csv", header, ";", encoding="cp1252")
    code, _, err = run_cli(capsys, "customers", "import", str(path))
    assert code == 1 and "line 2: the line is not valid UTF-8 (it looks like Windows-1252/Latin-1)" in err
    assert 'save the file as "CSV UTF-8"' in err and "iconv -f WINDOWS-1252 -t UTF-8" in err


def test_show_json_names_the_account_and_code_in_every_event(
    two_accounts: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    mario = two_accounts.account(MARIO_EMAIL)
    code, out, _ = run_cli(capsys, "accounts", "show", "UG-100234", "--json", "--reveal")
    assert code == 0
    events = json.loads(out)["recent_events"]
    assert {e["event"] for e in events} >= {"registered", "tax_code_revealed"}
    for event in events:
        assert event["account_id"] == mario.id and event["customer_code"] == "UG-100234", event
        assert None not in (event["at"], event["event"])


def test_an_export_holds_no_internal_key(two_accounts: Store, capsys: pytest.CaptureFixture[str]) -> None:
    for extra in ((), ("--text",)):
        code, out, _ = run_cli(capsys, "accounts", "export", MARIO_EMAIL, *extra)
        assert code == 0
        for internal in ("code_key", "name_key", "customer_id", "password_hash", "answer_hash"):
            assert internal not in out, (internal, extra)
    code, out, _ = run_cli(capsys, "accounts", "export", MARIO_EMAIL)
    record = json.loads(out)["customer_record"]
    assert record["customer_code"] == "UG-100234" and record["first_name"] == "Mario"
