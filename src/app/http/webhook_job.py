"""The webhook delivery job: POST a signed job notification, retried through the queue.

Runs in workers (it imports no web framework): the API queues one ``webhook-deliver`` job per
configured URL and notification, and the queue's retries with backoff deliver it. The
signature is computed at send time with ``$PORTSIDE_WEBHOOK_SECRET`` of the worker process,
so a retry an hour later still carries a fresh timestamp.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from portside.app.context import JobContext
from portside.app.definition import JobDefinition, RetryPolicy
from portside.app.http.settings import WEBHOOK_SECRET_ENV
from portside.app.http.signing import SIGNATURE_HEADER, sign
from portside.ports import Backoff, PermanentError, TransientError
from portside.ports.http_failures import parse_retry_after, status_kind

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "WEBHOOK_JOB",
    "WEBHOOK_QUEUE",
    "WebhookDelivery",
    "WebhookPayload",
    "webhook_definition",
]

WEBHOOK_QUEUE = "webhooks:deliver"
WEBHOOK_JOB = "webhook-deliver"
EVENT_HEADER = "X-Portside-Event"
DELIVERY_HEADER = "X-Portside-Delivery"
REQUEST_TIMEOUT = 10.0


class WebhookPayload(BaseModel):
    """The delivery job's data: where to send and the notification itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: AnyHttpUrl
    event: dict[str, Any] = Field(description="The JSON body sent, with at least 'type'.")


def _env_secret() -> str | None:
    return os.environ.get(WEBHOOK_SECRET_ENV, "").strip() or None


class WebhookDelivery:
    """Sends one notification; the handler of ``webhook-deliver``.

    Args:
        secret: Returns the signing key (default: ``$PORTSIDE_WEBHOOK_SECRET``).
        transport: An ``httpx`` transport (tests pass ``httpx.MockTransport``).
    """

    def __init__(
        self,
        secret: Callable[[], str | None] = _env_secret,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._secret = secret
        self._transport = transport

    async def deliver(self, payload: WebhookPayload, ctx: JobContext) -> dict[str, Any]:
        """POST the event; 2xx completes, 408/425/429/5xx and network errors retry (after the
        answer's ``Retry-After`` when it has one), other answers fail permanently (a dead
        letter the admin API can retry). The status table is ``portside.ports.http_failures``
        (Q17)."""
        import httpx

        secret = self._secret()
        if not secret:
            raise PermanentError(
                f"{WEBHOOK_SECRET_ENV} is not set in this worker, so the delivery cannot be signed",
                fix=f"set {WEBHOOK_SECRET_ENV} (the API's value) and retry the dead letter",
            )
        url = str(payload.url)
        body = json.dumps(payload.event, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "portside-webhooks/1",
            EVENT_HEADER: str(payload.event.get("type", "")),
            DELIVERY_HEADER: ctx.job_id,
            SIGNATURE_HEADER: sign(secret, body),
        }
        try:
            async with httpx.AsyncClient(
                timeout=REQUEST_TIMEOUT, follow_redirects=False, transport=self._transport
            ) as client:
                response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise TransientError(
                f"webhook {url} could not be reached: {type(error).__name__}: {error}",
                fix="nothing to do if the receiver comes back: the delivery is retried",
            ) from error
        status = response.status_code
        if 200 <= status < 300:
            return {"url": url, "status": status}
        if status_kind(status) == "transient":
            raise TransientError(
                f"webhook {url} answered HTTP {status}; retrying",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        raise PermanentError(
            f"webhook {url} answered HTTP {status}",
            fix="fix the receiver (it must answer 2xx), then retry the dead letter",
        )


def webhook_definition(delivery: WebhookDelivery | None = None) -> JobDefinition[WebhookPayload]:
    """The ``webhook-deliver`` job on ``webhooks:deliver``.

    Six attempts: the first at once, then after 1 s, 5 s, 30 s, 2 min and 10 min.
    """
    handler = (delivery or WebhookDelivery()).deliver
    return JobDefinition(
        name=WEBHOOK_JOB,
        queue=WEBHOOK_QUEUE,
        payload=WebhookPayload,
        handler=handler,
        retry=RetryPolicy(attempts=6, backoff=Backoff.schedule(1, 5, 30, 120, 600)),
        timeout=REQUEST_TIMEOUT + 5,
        concurrency=10,
        description="POST a signed job notification to a webhook URL.",
    )
