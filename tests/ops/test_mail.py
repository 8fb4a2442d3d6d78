"""``ops mail`` and the status view's mail count where there is no outbox: real SES.

The local cloud's side (listing, filtering, emptying) is tested against a
running cloud in ``tests/localcloud/test_notifications_e2e.py``.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from ops import mail
from ops.__main__ import main
from ops.snapshot import mail_snapshot


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--stage", "prod", *argv], console=Console(file=out, width=240))
    return code, out.getvalue()


@pytest.mark.parametrize("argv", [(), ("--email", "a@example.com"), ("--clear",)])
def test_against_real_ses_ops_mail_says_there_is_no_outbox(argv):
    # A real account's stage, and no AWS_ENDPOINT_URL: boto3 resolves real SES.
    code, out = run_cli("mail", *argv)
    assert code == 2
    assert "no outbox" in out and "email.us-east-1.amazonaws.com" in out


def test_the_outbox_url_is_only_ever_local():
    assert mail.outbox_url("http://127.0.0.1:5000", "a+b@example.com") == (
        "http://127.0.0.1:5000/_aws/ses?email=a%2Bb%40example.com"
    )
    with pytest.raises(mail.NoOutboxError):
        mail.outbox_url("https://email.eu-west-1.amazonaws.com")


def test_the_status_view_skips_the_mail_count_against_real_ses(clients):
    assert mail_snapshot(clients("ses")) == {"sent": None, "skipped": "real SES keeps no outbox"}
