"""Kafka as the ``stream`` stage's source and sink (``confluent-kafka``, the ``kafka`` extra).

The consumer stores an offset only after the batch holding that message has been scored and its
outputs delivered to the output topic, so a crash replays at most the batches in flight and loses
none (at-least-once; outputs carry ``position`` = ``topic/partition/offset`` to de-duplicate).
Bad records are reported like any other source's and, when ``dead_letter_topic`` is set, also
produced there with the error.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

from shared.errors import UserError
from tabular_mining.common.stream import KafkaConfig, Message

log = logging.getLogger(__name__)


def _kafka():
    try:
        import confluent_kafka
    except ImportError:
        raise UserError("Kafka streaming needs confluent-kafka: pip install -e '.[kafka]'") from None
    return confluent_kafka


def _raise_on_error(err) -> None:
    if err is not None and err.fatal():
        raise UserError(f"Kafka: {err.str()}")


class KafkaSource:
    def __init__(self, cfg: KafkaConfig, settings: dict | None = None):
        kafka = _kafka()
        self.cfg = cfg
        conf = {"bootstrap.servers": cfg.bootstrap_servers, "group.id": cfg.group_id,
                "auto.offset.reset": cfg.auto_offset_reset, "enable.auto.offset.store": False,
                "enable.auto.commit": True, "error_cb": _raise_on_error, **cfg.extra, **(settings or {})}
        self.consumer = kafka.Consumer(conf)
        self.consumer.subscribe([cfg.input_topic])
        self._kafka = kafka

    def __iter__(self) -> Iterator[Message]:
        seen, last = 0, time.monotonic()
        while self.cfg.max_messages is None or seen < self.cfg.max_messages:
            msg = self.consumer.poll(self.cfg.poll_timeout_s)
            if msg is None:
                if self.cfg.idle_timeout_s is not None and time.monotonic() - last > self.cfg.idle_timeout_s:
                    log.info("no message for %.1fs: stopping", self.cfg.idle_timeout_s)
                    return
                continue
            if msg.error():
                if msg.error().code() == self._kafka.KafkaError._PARTITION_EOF:
                    continue
                raise UserError(f"Kafka consumer: {msg.error().str()}")
            seen, last = seen + 1, time.monotonic()
            position = f"{msg.topic()}/{msg.partition()}/{msg.offset()}"
            yield Message(position, msg.value() or b"", msg.key(), msg)

    def done(self, messages: list[Message]) -> None:
        """Store the offsets of a delivered batch (the auto-commit then commits them)."""
        nxt: dict[tuple[str, int], int] = {}
        for m in messages:
            key = (m.handle.topic(), m.handle.partition())
            nxt[key] = max(nxt.get(key, 0), m.handle.offset() + 1)
        if nxt:
            self.consumer.store_offsets(offsets=[self._kafka.TopicPartition(t, p, o) for (t, p), o in nxt.items()])

    def close(self) -> None:
        try:
            self.consumer.commit(asynchronous=False)
        except self._kafka.KafkaException:  # nothing stored since the last commit
            pass
        self.consumer.close()


class KafkaSink:
    def __init__(self, cfg: KafkaConfig, settings: dict | None = None):
        kafka = _kafka()
        self.cfg = cfg
        self.producer = kafka.Producer({"bootstrap.servers": cfg.bootstrap_servers, "enable.idempotence": True,
                                        "error_cb": _raise_on_error, **cfg.extra, **(settings or {})})
        self.failed: list[str] = []

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.failed.append(err.str())

    def _send(self, topic: str, value: bytes, key: bytes | None) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, on_delivery=self._delivered)
                return
            except BufferError:  # the local queue is full: let it drain
                self.producer.poll(0.1)

    def write(self, outputs: list[tuple[Message, dict]]) -> None:
        for message, out in outputs:
            self._send(self.cfg.output_topic, json.dumps(out, ensure_ascii=False).encode(), message.key)
        self._flush()

    def reject(self, message: Message, report: dict) -> None:
        if self.cfg.dead_letter_topic:
            value = message.value if isinstance(message.value, bytes) else message.value.encode()
            self._send(self.cfg.dead_letter_topic, json.dumps({**report, "value": value.decode("utf-8", "replace")}).encode(),
                       message.key)

    def _flush(self) -> None:
        remaining = self.producer.flush(30)
        if remaining or self.failed:
            raise UserError(f"Kafka producer: {remaining} messages undelivered after 30s; "
                            f"errors: {', '.join(self.failed[:3]) or 'none reported'}")

    def close(self) -> None:
        self._flush()


def broker_reachable(bootstrap_servers: str, timeout_s: float = 2.0) -> bool:
    """Whether a broker answers a metadata request (the live test skips when none does)."""
    kafka = _kafka()
    from confluent_kafka.admin import AdminClient

    client = AdminClient({"bootstrap.servers": bootstrap_servers, "socket.timeout.ms": int(timeout_s * 1000)})
    try:
        client.list_topics(timeout=timeout_s)
        return True
    except kafka.KafkaException:
        return False
