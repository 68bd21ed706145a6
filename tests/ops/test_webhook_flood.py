"""2,000 half-open connections against `unogas-bot run --webhook-url` under a 1,024-descriptor limit
(issue 21, item 6), on loopback only.

The bot runs as an operator starts it, in a child process whose RLIMIT_NOFILE is lowered to 1,024 (what
`ulimit -n 1024` does), against the HTTP stand-in of the Bot API. The test opens 2,000 connections that
send the start of a request and nothing more (no secret is needed for that), then posts one legitimate
update: it must be answered within 2 s, the bot must keep well clear of its descriptor limit, and its log
must stay under 100 lines. `-s` prints the figures.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.ops.processkit import _env, free_port, new_token, standin, wait_for

SECRET = "flood-test_secret"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
HALF_OPEN = 2000
LIMIT = 1024
USER = 4343


def _lower_the_file_limit() -> None:  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def _update(update_id: int) -> dict[str, object]:
    person = {"id": USER, "is_bot": False, "first_name": "Mario", "language_code": "it"}
    message = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": {"id": USER, "type": "private", "first_name": "Mario"},
        "from": person,
        "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    }
    return {"update_id": update_id, "message": message}


def _half_open(port: int, count: int) -> list[socket.socket]:
    """`count` connections that send the start of a request's headers and then nothing."""

    def one(_: int) -> socket.socket | None:
        with contextlib.suppress(OSError):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            with contextlib.suppress(OSError):
                sock.sendall(b"POST /tg HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n")
            return sock
        return None

    with ThreadPoolExecutor(16) as pool:
        return [sock for sock in pool.map(one, range(count)) if sock is not None]


def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_two_thousand_half_open_connections_leave_room_for_a_real_update(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 3 * HALF_OPEN)), hard))  # the attacker's
    token, port = new_token(), free_port()
    log_path = tmp_path / "bot.log"
    with standin(token) as api, log_path.open("w") as log:
        api.send(USER, "/start")  # the stand-in now knows the chat (its delivery to bot.invalid just fails)
        env = _env(
            {
                "TELEGRAM_BOT_TOKEN": token,
                "TELEGRAM_API_BASE_URL": api.api_url,
                "TELEGRAM_WEBHOOK_SECRET": SECRET,
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db",
            }
        )
        command = [sys.executable, "-m", "unogas_bot", "run", "--webhook-url", "https://bot.invalid/tg"]
        command += ["--listen", "127.0.0.1", "--port", str(port)]
        bot = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_lower_the_file_limit
        )
        writers: list[socket.socket] = []
        try:

            def listening() -> bool:
                assert bot.poll() is None, log_path.read_text()
                with socket.socket() as probe:
                    return probe.connect_ex(("127.0.0.1", port)) == 0

            wait_for("the webhook to listen", listening, 60)
            before = len(api.replies(USER))
            writers = _half_open(port, HALF_OPEN)
            files_under_attack = _open_files(bot.pid)

            started = time.monotonic()
            answer = httpx.post(
                f"http://127.0.0.1:{port}/tg", json=_update(1), headers={HEADER: SECRET}, timeout=5
            )
            assert answer.status_code == 200
            replies = api.replies(USER, before, 2.0)
            delivered = time.monotonic() - started
            lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
            print(
                f"\n{len(writers)} half-open connections opened; the update answered in {delivered:.2f} s; "
                f"the bot's open files {files_under_attack} (limit {LIMIT}); {len(lines)} log lines"
            )
            assert replies, f"no reply within 2 s; the log's last lines: {lines[-5:]}"
            assert delivered <= 2.0
            assert files_under_attack < LIMIT // 2
            assert len(lines) < 100, lines[:20]
            assert not any("Traceback" in line for line in lines)
        finally:
            for writer in writers:
                writer.close()
            if bot.poll() is None:
                bot.send_signal(signal.SIGTERM)
                try:
                    bot.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    bot.kill()
                    bot.wait()
