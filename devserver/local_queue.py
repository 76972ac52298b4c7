"""An in-process stand-in for the webhook SQS queue and its dead-letter queue.

Messages wait out their delay on a timer thread, then reach the real consumer
(handlers.webhook_deliver) as an SQS event, so the local server delivers webhooks with the
same code as AWS. Dead letters are kept in memory and logged.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from gateway.routes import QUEUE_CONSUMERS

from devserver.events import lambda_context

logger = logging.getLogger("devserver.queue")

Handler = Callable[[dict[str, Any], Any], Any]
(_CONSUMER,) = QUEUE_CONSUMERS


class LocalDelayQueue:
    def __init__(self, consumer: Handler) -> None:
        self._consumer = consumer
        self._heap: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self.dead: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="webhook-queue", daemon=True)
        self._thread.start()

    def send(self, queue: str, body: str, delay_seconds: float) -> None:
        if queue == "dead":
            logger.warning("webhook dead letter: %s", body)
            self.dead.append(body)
            return
        with self._wake:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay_seconds), next(self._order), body))
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._wake.wait(timeout=None if not self._heap else self._heap[0][0] - time.monotonic())
                if self._stopped:
                    return
                _, _, body = heapq.heappop(self._heap)
            self._deliver(body)

    def _deliver(self, body: str) -> None:
        record = {"messageId": str(uuid.uuid4()), "body": body, "eventSource": "aws:sqs", "attributes": {}}
        try:
            self._consumer(
                {"Records": [record]},
                lambda_context(
                    _CONSUMER.name, memory_mb=_CONSUMER.memory_mb, timeout_seconds=_CONSUMER.timeout_seconds
                ),
            )
        except Exception:
            logger.exception("webhook delivery consumer failed")
