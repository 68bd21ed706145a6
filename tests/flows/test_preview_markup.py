"""The preview page draws each message as Telegram would, so a catalogue text (a translator's .po file)
can put nothing on it that Telegram would not show: no script, no element or attribute beyond Telegram's
formatting (issue 22, item 4: found by the attacks on `flows preview`)."""

from __future__ import annotations

import pytest

from unogas_bot.flows.preview import page
from unogas_bot.i18n import texts

INJECTED = (
    'Ciao <b>grassetto</b> <img src=x onerror="alert(1)"> <script>alert(2)</script> '
    '<a href="javascript:alert(3)">collegamento</a> <a href="https://www.unogas.it/privacy">informativa</a> '
    '<i onclick="alert(4)">corsivo</i> &amp; <code>x</code>'
)


@pytest.mark.parametrize("lang", texts.LANGUAGES)
def test_a_catalogue_text_cannot_put_markup_telegram_would_not_show_on_the_page(
    monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    monkeypatch.setitem(texts.load()[lang], "cancelled", INJECTED)
    html = page(["login"], (lang,))
    bubble = html.split('data-key="cancelled"', 1)[1].split('<div class="row"', 1)[0]
    for bad in ("<img", "<script", 'href="javascript', "<i onclick", 'onerror="'):
        assert bad not in bubble, (bad, bubble)
    assert "&lt;img" in bubble and "&lt;script&gt;alert(2)&lt;/script&gt;" in bubble  # shown, as text
    assert "&lt;a href=&quot;javascript:alert(3)&quot;&gt;collegamento&lt;/a&gt;" in bubble
    assert "<b>grassetto</b>" in bubble and "<code>x</code>" in bubble and "<i>corsivo</i>" in bubble
    assert '<a href="https://www.unogas.it/privacy">informativa</a>' in bubble
    assert "&amp;" in bubble
