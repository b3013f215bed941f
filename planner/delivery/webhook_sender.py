"""Delivering the webhook outbox: claim due messages, sign them, post them, record each attempt.

Signed per the Standard Webhooks specification with its reference library (``standardwebhooks``):
``webhook-id`` (the message's id, the same on every attempt), ``webhook-timestamp`` (this attempt's,
in whole seconds) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``,
once per secret that signs the endpoint now (two during a rotation's overlap, space-separated, so a
receiver holding either secret accepts it).

The timestamp is the wall clock's (:func:`planner.clock.utcnow`), not the service's clock: it is a
fact of the request on the wire, which receivers compare with their own clocks to refuse replays. A
simulated clock (the testing kit, tests that skip hours) still schedules the attempts.

Each batch is claimed under a new token with a lease of twice the request deadline plus the clock
skew; its messages are posted at once (one thread each, up to the batch size), and each outcome is
written as soon as it is known, conditional on the claim (:mod:`planner.store.webhook_deliveries`).
A worker killed mid-request loses nothing: the message is due again when its lease ends and goes
once more, under the same ``webhook-id`` (so at most one extra copy per kill).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import structlog
from standardwebhooks import Webhook

from planner.clock import Clock, utcnow
from planner.core.webhook_policy import retry_wait
from planner.delivery.webhook_http import Answer, WebhookClient
from planner.store.claims import new_claim_token
from planner.store.db import SessionFactory, transaction
from planner.store.webhook_deliveries import AttemptResult, ClaimedMessage, claim_due, record_attempt
from planner.store.webhook_endpoints import Signing, signing

log = structlog.get_logger("planner.webhooks")


def signed_headers(msg_id: str, payload: str, secrets: tuple[str, ...], at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt made at ``at``."""
    whole = datetime.fromtimestamp(int(at.timestamp()), UTC)
    signatures = " ".join(Webhook(secret).sign(msg_id, whole, payload) for secret in secrets)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(whole.timestamp())),
        "webhook-signature": signatures,
    }


class WebhookSender:
    """Posts the due webhook messages; every dependency is passed in."""

    def __init__(
        self,
        sessions: SessionFactory,
        client: WebhookClient,
        *,
        clock: Clock,
        disable_after: timedelta,
        batch_size: int = 4,
        clock_skew: timedelta = timedelta(seconds=5),
        wall_clock: Clock = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.wall_clock = wall_clock
        self.disable_after = disable_after
        self.batch_size = batch_size
        self.lease = 2 * timedelta(seconds=client.timeout) + clock_skew
        self.rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(batch_size, thread_name_prefix="webhook-post")

    def run_once(self) -> int:
        """Claim and post one batch of due messages; returns how many were claimed."""
        now = self.clock()
        token = new_claim_token()
        with transaction(self.sessions) as session:
            claimed = claim_due(session, token, now, self.lease, self.batch_size)
            if not claimed:
                return 0
            signers = signing(session, {c.endpoint_id for c in claimed}, now)
        if len(claimed) == 1:
            self._post(claimed[0], signers, token)
        else:
            list(self._pool.map(lambda c: self._post(c, signers, token), claimed))
        return len(claimed)

    def drain(self, limit: int = 10_000) -> int:
        """Post batches until nothing is due (or ``limit`` messages); how many were claimed."""
        done = 0
        while done < limit and (claimed := self.run_once()):
            done += claimed
        return done

    def _post(self, message: ClaimedMessage, signers: Mapping[int, Signing], token: str) -> None:
        started = self.clock()
        signer = signers.get(message.endpoint_id)
        if signer is None:  # removed since the claim, and its messages with it
            return
        headers = signed_headers(message.msg_id, message.payload, signer.secrets, self.wall_clock())
        try:
            answer = self.client.post(signer.url, message.payload.encode(), headers)
        except Exception as exc:  # a defect must not leave the message claimed until its lease ends
            log.exception("webhook post failed unexpectedly", message_id=message.id)
            answer = Answer(None, 0, None, f"{type(exc).__name__}: {exc}"[:500])
        self._record(message, token, started, answer)

    def _record(self, message: ClaimedMessage, token: str, started: datetime, answer: Answer) -> None:
        now = self.clock()
        wait = None if answer.succeeded else retry_wait(message.attempt, self.rng)
        next_at = None if wait is None else now + wait
        result = AttemptResult(
            started, answer.succeeded, answer.status_code, answer.latency_ms, answer.excerpt, answer.error
        )
        with transaction(self.sessions) as session:
            held, disabled = record_attempt(session, message, token, result, now, next_at, self.disable_after)
        outcome = "delivered" if answer.succeeded else ("retrying" if next_at else "failed")
        (log.info if answer.succeeded else log.warning)(
            "webhook attempt",
            message_id=message.id,
            webhook_id=message.msg_id,
            endpoint_id=message.endpoint_id,
            attempt=message.attempt,
            status_code=answer.status_code,
            latency_ms=answer.latency_ms,
            error=answer.error,
            outcome=outcome if held else "stale",
        )
        if disabled:
            log.warning(
                "webhook endpoint disabled: it kept failing",
                endpoint_id=message.endpoint_id,
                after=str(self.disable_after),
            )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()
