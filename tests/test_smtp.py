"""Delivery through a real SMTP server running in the test process (aiosmtpd)."""

from __future__ import annotations

from dataclasses import replace

from digest.app import make_app
from digest.config import Settings


def smtp_settings(settings: Settings, port: int) -> Settings:
    email = replace(settings.email, transport="smtp", smtp_host="127.0.0.1", smtp_port=port)
    return replace(settings, email=email)


def test_digest_is_delivered_over_smtp_and_parses_back(settings: Settings, smtp_server) -> None:
    controller, recorder = smtp_server
    app = make_app(smtp_settings(settings, controller.port))
    report = app.send()
    assert report.delivery.sent == 2
    assert sorted(r for rcpts, _ in recorder.messages for r in rcpts) == [
        "ada@example.org",
        "grace@example.org",
    ]
    for rcpts, msg in recorder.messages:
        assert msg["To"] == rcpts[0]
        assert msg["From"] == "Papers digest <digest@localhost>"
        assert msg["List-Id"] == "Papers digest <papers-digest.localhost>"
        assert msg["Subject"] == report.prepared.view.subject
        html = msg.get_body(("html",)).get_content()
        text = msg.get_body(("plain",)).get_content()
        # the e-mail is over the clipping size: it lists the top of every section
        for section in report.prepared.view.sections:
            top = section.papers[0].title
            assert top.replace("&", "&amp;") in html and top[:40] in text.replace("\n", " ")
        assert "<" not in text.split("http")[0]  # the text part carries no markup
    # nothing is sent twice on the next run
    assert app.send().delivery.sent == 0
    assert len(recorder.messages) == 2


def test_send_to_one_address_over_smtp(settings: Settings, smtp_server) -> None:
    controller, recorder = smtp_server
    app = make_app(smtp_settings(settings, controller.port))
    app.send(to="editor@example.org")
    assert [r for r, _ in recorder.messages] == [["editor@example.org"]]
    assert app.status().papers_sent == 0
