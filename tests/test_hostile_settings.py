"""Mail settings that do not fit the server: a TLS mismatch says which smtp_security to
try, an unreachable server says the issue is published and delivery is pending; neither
shows a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.app import inspecting, make_app
from tests.support.hostile import (
    ABSTRACT,
    cli,
    dump_text,
    project,
    settings_of,
    write_dump,
)
from tests.support.net import free_port
from tests.support.smtp import running_smtp


class _Accept:
    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        return "250 OK"


@pytest.mark.parametrize(("security", "advice"), [("starttls", '"none"'), ("ssl", '"starttls"')])
def test_tls_mismatch_says_which_smtp_security_to_try(
    tmp_path: Path, security: str, advice: str
) -> None:
    with running_smtp(_Accept()) as (controller, _):
        config = project(
            tmp_path,
            f'\n[email]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\n'
            f'smtp_port = {controller.port}\nsmtp_security = "{security}"\nsmtp_timeout = 10\n'
            'recipients = ["ada@example.org"]\n',
        )
        write_dump(tmp_path / "dumps" / "d.txt", dump_text([("A Paper", ABSTRACT)]))
        code, output = cli("-c", str(config), "send")
    assert code == 1
    last = output.strip().splitlines()[-1]
    assert "issue #1 was published to the feeds and web; delivery is pending" in last, output
    assert f"smtp_security = {advice}" in last, output
    assert "WRONG_VERSION_NUMBER" not in output and "Traceback" not in output
    app = make_app(settings_of(config))
    assert inspecting.status(app).last_issue == 1


def test_unreachable_server_after_publishing_says_delivery_is_pending(
    tmp_path: Path,
) -> None:

    config = project(
        tmp_path,
        f'\n[email]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {free_port()}\n'
        'recipients = ["ada@example.org"]\n',
    )
    write_dump(tmp_path / "dumps" / "d.txt", dump_text([("A Paper", ABSTRACT)]))
    code, output = cli("-c", str(config), "send")
    assert code == 1
    assert "issue #1 was published to the feeds and web; delivery is pending" in output
    assert "next `digest send`" in output or "digest send" in output
