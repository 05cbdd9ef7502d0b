"""Streaming: JSON records in, scored JSON records out, in micro-batches, until the source ends.
The core (sources, sinks, batching, per-record errors); :mod:`tabular_mining.common.stream_stage`
opens the endpoints the command line names and :mod:`tabular_mining.common.kafka` adds Kafka.

Each input line (or Kafka message) is one JSON object: an instance as ``POST /predict`` takes it
for the run's task (a classify record, ``{"items": [...]}`` for rules, a record for segments).
The field ``stream.id_field`` (default ``id``), when present, is taken out and echoed. Each output
line is ``{"position": …, "id": …, <the prediction>}``. A line that is not JSON, not an object,
fails validation or fails to score is reported on stderr as ``{"position": …, "error": …}`` and
skipped; the stream goes on. A batch is scored when ``stream.batch_size`` records are waiting or
``stream.max_wait_ms`` after its first record arrived, whichever comes first, so a slow trickle on
stdin is still answered promptly. With Kafka, offsets are committed only after a batch's outputs
are delivered (at-least-once).
"""
from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from pydantic import Field, ValidationError

from shared.config import StrictModel
from shared.errors import UserError
from shared.serving import HTTPError, Predictor
from shared.serving.jsonbody import BadJSON, parse_json

log = logging.getLogger(__name__)


class KafkaConfig(StrictModel):
    """Topics and connection of the optional Kafka source/sink (``pip install '.[kafka]'``)."""

    bootstrap_servers: str = "localhost:9092"
    input_topic: str = "mlref-records"
    output_topic: str = "mlref-scores"
    dead_letter_topic: str | None = Field(None, description="also send bad records (with the error) here")
    group_id: str = "mlref-stream"
    auto_offset_reset: str = "earliest"
    poll_timeout_s: float = Field(0.2, gt=0)
    idle_timeout_s: float | None = Field(None, gt=0, description="stop after this long with no message; null = never")
    max_messages: int | None = Field(None, ge=1, description="stop after this many messages; null = never")
    extra: dict[str, Any] = Field(default_factory=dict, description="more librdkafka settings (security …)")


class StreamConfig(StrictModel):
    """The ``stream:`` section of a recipe."""

    batch_size: int = Field(256, ge=1)
    max_wait_ms: float = Field(50.0, ge=0, description="score a partial batch this long after its first record")
    id_field: str | None = "id"
    max_record_bytes: int = Field(1_000_000, ge=16)
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)


@dataclass
class Message:
    """One input record: where it came from (line number or ``topic/partition/offset``) and its bytes."""

    position: int | str
    value: bytes | str
    key: bytes | None = None
    handle: Any = None  # the source's own object (a Kafka message), for commits


class LineSource:
    """Lines of a text stream (stdin or an open file) as messages numbered from 1."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def __iter__(self) -> Iterator[Message]:
        for n, line in enumerate(self.stream, 1):
            if line.strip():
                yield Message(n, line)

    def done(self, messages: list[Message]) -> None:
        pass


class LineSink:
    """JSON lines to a text stream; flushed after every batch."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, outputs: list[tuple[Message, dict]]) -> None:
        self.stream.write("".join(json.dumps(o, ensure_ascii=False) + "\n" for _, o in outputs))
        self.stream.flush()

    def reject(self, message: Message, report: dict) -> None:
        pass


@dataclass
class StreamStats:
    records: int = 0
    scored: int = 0
    bad: int = 0
    batches: int = 0
    seconds: float = 0.0

    def summary(self) -> dict:
        rate = self.records / self.seconds if self.seconds > 0 else 0.0
        return {"records": self.records, "scored": self.scored, "bad": self.bad, "batches": self.batches,
                "seconds": round(self.seconds, 3), "records_per_s": round(rate, 1)}


class RecordScorer:
    """Validates one record at a time against a predictor's request schema and scores batches,
    falling back to one-by-one scoring when a batch fails, so one bad record costs only itself."""

    def __init__(self, predictor: Predictor, id_field: str | None, max_bytes: int):
        self.predictor, self.id_field, self.max_bytes = predictor, id_field, max_bytes

    def decode(self, message: Message) -> tuple[dict, Any]:
        """``(record, id)`` from one message, or ``ValueError`` with the report's message."""
        raw = message.value
        if len(raw) > self.max_bytes:
            raise ValueError(f"record is {len(raw)} bytes, over stream.max_record_bytes={self.max_bytes}")
        try:  # the server's strict reader: no NaN/Infinity, no 1e400, no lone surrogates, no deep nesting
            obj = parse_json(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
        except BadJSON as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ValueError(f"a record must be a JSON object, got {type(obj).__name__}")  # noqa: TRY004 - a report
        rid = obj.pop(self.id_field, None) if self.id_field else None
        return obj, rid

    def validate(self, records: list[dict]) -> tuple[list, dict[int, str]]:
        """Validate a batch in one schema call: ``(items of the valid records, {index: error})``.
        A failure's location names the record, so one pass finds every bad one; a second pass
        (only then) validates the rest."""
        def check(recs: list[dict]):
            return self.predictor.items(self.predictor.request_model.model_validate({"instances": recs}))

        try:
            return check(records), {}
        except ValidationError as exc:
            bad: dict[int, list[str]] = {}
            for e in exc.errors():
                loc = e["loc"]
                if len(loc) >= 2 and loc[0] == "instances" and isinstance(loc[1], int):
                    bad.setdefault(loc[1], []).append(f"{'.'.join(str(p) for p in loc[2:]) or '(record)'}: {e['msg']}")
            if not bad:  # not about one record (cannot happen with the app's schemas): give up on the batch
                return [], {i: str(exc).splitlines()[0] for i in range(len(records))}
        keep = [i for i in range(len(records)) if i not in bad]
        items = check([records[i] for i in keep]) if keep else []
        full: list = [None] * len(records)
        for i, item in zip(keep, items):
            full[i] = item
        return full, {i: "; ".join(v) for i, v in bad.items()}

    def prepare(self, items: list, invalid: dict[int, str]) -> list:
        """The predictor's per-instance ``prepare`` on each valid item; a refusal is that record's
        report (added to ``invalid``), as it would be that request's 4xx when served."""
        out: list = [None] * len(items)
        for i, item in enumerate(items):
            if i in invalid:
                continue
            try:
                out[i] = self.predictor.prepare(item)
            except HTTPError as exc:
                invalid[i] = exc.message
            except (UserError, ValueError) as exc:
                invalid[i] = str(exc)
        return out

    def score(self, items: list) -> list[Any | Exception]:
        try:
            return list(self.predictor.predict_batch(items))
        except Exception:  # noqa: BLE001 - find the culprit(s): score one by one
            out: list[Any | Exception] = []
            for item in items:
                try:
                    out.append(self.predictor.predict_batch([item])[0])
                except Exception as exc:  # noqa: BLE001 - reported per record, the stream goes on
                    out.append(exc)
            return out


_END = object()


def _pump(source: Iterable[Message], q: queue.Queue) -> None:
    try:
        for message in source:
            q.put(message)
    except BaseException as exc:  # noqa: BLE001 - handed to the main loop, which re-raises it
        q.put(exc)
    finally:
        q.put(_END)


def run_stream(predictor: Predictor, source, sink, cfg: StreamConfig, errors: TextIO | None = None,
               clock: Callable[[], float] = time.monotonic) -> dict:
    """Score everything ``source`` yields into ``sink`` until it ends; bad records go to ``errors``
    (default stderr) and the sink's ``reject``. Returns counts and throughput."""
    errors = errors or sys.stderr
    scorer = RecordScorer(predictor, cfg.id_field, cfg.max_record_bytes)
    stats = StreamStats()
    q: queue.Queue = queue.Queue(maxsize=max(4 * cfg.batch_size, 64))  # bounded: back-pressure on the source
    threading.Thread(target=_pump, args=(source, q), daemon=True, name="stream-source").start()
    t0 = clock()
    batch: list[Message] = []
    deadline = None
    ended = False
    while not ended:
        timeout = None if deadline is None else max(0.0, deadline - clock())
        try:
            got = q.get(timeout=timeout)
        except queue.Empty:
            got = None
        if got is _END:
            ended = True
        elif isinstance(got, BaseException):
            raise got
        elif got is not None:
            batch.append(got)
            deadline = deadline or clock() + cfg.max_wait_ms / 1000.0
        if batch and (ended or got is None or len(batch) >= cfg.batch_size or clock() >= deadline):
            _flush(batch, scorer, sink, source, stats, errors)
            batch, deadline = [], None
    stats.seconds = clock() - t0
    return stats.summary()


def _flush(batch: list[Message], scorer: RecordScorer, sink, source, stats: StreamStats, errors: TextIO) -> None:
    stats.records += len(batch)
    stats.batches += 1
    decoded: list[tuple[Message, dict, Any]] = []
    rejected: list[tuple[int, Message, str]] = []  # reported in input order, whatever step caught them
    for n, message in enumerate(batch):
        try:
            decoded.append((message, *scorer.decode(message)))
        except ValueError as exc:
            rejected.append((n, message, str(exc)))
    items, invalid = scorer.validate([d[1] for d in decoded]) if decoded else ([], {})
    items = scorer.prepare(items, invalid)
    order = {id(m): n for n, m in enumerate(batch)}
    good: list[tuple[Message, Any, Any]] = []
    for i, (message, _, rid) in enumerate(decoded):
        if i in invalid:
            rejected.append((order[id(message)], message, invalid[i]))
        else:
            good.append((message, items[i], rid))
    for _, message, error in sorted(rejected, key=lambda r: r[0]):
        _report(message, error, sink, stats, errors)
    outputs = []
    for (message, _, rid), result in zip(good, scorer.score([g[1] for g in good]) if good else []):
        if isinstance(result, Exception):
            text = result.message if isinstance(result, HTTPError) else f"{type(result).__name__}: {result}"
            _report(message, f"scoring failed: {text}", sink, stats, errors)
            continue
        head = {"position": message.position, **({"id": rid} if rid is not None else {})}
        outputs.append((message, {**head, **(result if isinstance(result, dict) else {"prediction": result})}))
    if outputs:
        sink.write(outputs)
        stats.scored += len(outputs)
    source.done(batch)  # only now may a source commit these positions


def _report(message: Message, error: str, sink, stats: StreamStats, errors: TextIO) -> None:
    stats.bad += 1
    report = {"position": message.position, "error": error}
    errors.write(json.dumps(report, ensure_ascii=False) + "\n")
    errors.flush()
    sink.reject(message, report)
