"""The SMTP adapter's deadline on the whole send, and what a timeout after the message was handed
over means, against a real aiosmtpd server that answers slowly or trickles its replies."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from adapters import Message, OutcomeUnknown, TransientError, batch_session
from adapters.smtp import SmtpAdapter
from tests.adapters.conftest import SLOW_ACCEPT_SECONDS, TRICKLE_EHLO, TRICKLE_SECONDS

if TYPE_CHECKING:
    from tests.adapters.conftest import SmtpServer

DEADLINE = 1.0
#: Loose on purpose: the bound is "about the deadline", far below the server's 2.5 s or 6 s.
MARGIN = 2.0


def smtp(server: SmtpServer, **kwargs: Any) -> SmtpAdapter:
    options: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "from_address": "Planner <noreply@planner.local>",
        "security": "none",
        "timeout": DEADLINE,
    }
    return SmtpAdapter(**{**options, **kwargs})


def timed(call: Callable[[], object]) -> tuple[BaseException, float]:
    start = time.monotonic()
    with pytest.raises(Exception) as excinfo:
        call()
    return excinfo.value, time.monotonic() - start


def wait_accepted(server: SmtpServer, message: Message) -> int:
    """How many copies the server accepted, once its slow handler has decided."""
    for _ in range(int((SLOW_ACCEPT_SECONDS + TRICKLE_SECONDS + 5) / 0.05)):
        accepted = len(server.recorder.by_message_id(message.message_id))
        if accepted:
            return accepted
        time.sleep(0.05)
    return 0


def test_a_server_accepting_after_the_deadline_leaves_the_outcome_unknown(
    smtp_server: SmtpServer, make_message: Callable[..., Message]
) -> None:
    message = make_message("email", to="slowaccept@example.com")
    error, took = timed(lambda: smtp(smtp_server).send(message))

    assert isinstance(error, OutcomeUnknown), error
    assert error.stage == "data"
    assert "may have accepted" in error.reason
    assert took < DEADLINE + MARGIN
    # The server was sent the message once, and did accept it after the client gave up.
    assert smtp_server.recorder.contents_received(message.message_id) == 1
    assert wait_accepted(smtp_server, message) == 1


def test_a_final_reply_trickled_past_the_deadline_is_cut_off_there(
    smtp_server: SmtpServer, make_message: Callable[..., Message]
) -> None:
    # "250-" continuation lines every 0.5 s for 6 s: each read is quick, the reply is not.
    message = make_message("email", to="trickle@example.com")
    error, took = timed(lambda: smtp(smtp_server).send(message))

    assert isinstance(error, OutcomeUnknown), error
    assert took < DEADLINE + MARGIN
    assert smtp_server.recorder.contents_received(message.message_id) == 1


def test_an_ehlo_reply_trickled_past_the_deadline_is_transient(
    smtp_server: SmtpServer, make_message: Callable[..., Message]
) -> None:
    # Before the message was sent, a timeout means the server cannot have it: safe to retry.
    message = make_message("email")
    error, took = timed(lambda: smtp(smtp_server, local_hostname=TRICKLE_EHLO).send(message))

    assert type(error) is TransientError, error
    assert "timed out" in error.reason
    assert took < DEADLINE + MARGIN
    assert smtp_server.recorder.contents_received(message.message_id) == 0


def test_after_an_unknown_outcome_the_batch_goes_on_with_a_new_session(
    smtp_server: SmtpServer, make_message: Callable[..., Message]
) -> None:
    adapter = smtp(smtp_server)
    unknown, after = make_message("email", to="slowaccept@example.com"), make_message("email")
    with batch_session(adapter):
        with pytest.raises(OutcomeUnknown):
            adapter.send(unknown)
        adapter.send(after)  # a reply left unread on the old session must not be taken for this one
    [mail] = smtp_server.recorder.by_message_id(after.message_id)
    assert mail.message["Message-ID"] == after.message_id
    assert wait_accepted(smtp_server, unknown) == 1


def test_the_deadline_is_the_timeout_option() -> None:
    adapter = SmtpAdapter.from_settings({"from_address": "a@example.com", "timeout": "2.5"})
    assert adapter.deadline == adapter.timeout == 2.5
    assert SmtpAdapter(from_address="a@example.com").deadline == 20.0
