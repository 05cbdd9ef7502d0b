"""The ``stream`` stage of every tabular_mining task: open the input and output the command line
names, score everything the input yields with the run's predictor, close both.

    head -3 records.jsonl | python -m tabular_mining stream --run runs/tabular_mining/churn/latest
    python -m tabular_mining stream --input records.jsonl --output scored.jsonl [--run DIR]
    python -m tabular_mining stream --input kafka --output kafka stream.kafka.bootstrap_servers=host:9092

``--input``/``--output``: a file, ``-`` or nothing (stdin / stdout), or ``kafka`` (the recipe's
``stream.kafka`` topics). Each input line is one instance as the task's ``POST /predict`` takes it;
see :mod:`tabular_mining.common.stream` for batching and the per-record error reports.
"""
from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from shared.errors import UserError
from shared.serving import Predictor
from tabular_mining.common.kafka import KafkaSink, KafkaSource
from tabular_mining.common.stream import LineSink, LineSource, StreamConfig, run_stream

log = logging.getLogger(__name__)


def stream_stage(predictor: Predictor, cfg: StreamConfig, input_spec: str | Path | None,
                 output_spec: str | Path | None) -> dict | None:
    """Stream from ``input_spec`` to ``output_spec`` until the source ends. The summary goes to
    the log; it is also returned (and printed by the CLI) unless the scores go to stdout."""
    closers: list[Callable[[], None]] = []
    try:
        if input_spec == "kafka":
            source = KafkaSource(cfg.kafka)
            closers.append(source.close)
        elif input_spec in (None, "-"):
            source = LineSource(sys.stdin)
        else:
            source = LineSource(_open(input_spec, "r"))
            closers.append(source.stream.close)
        if output_spec == "kafka":
            sink = KafkaSink(cfg.kafka)
            closers.append(sink.close)
        elif output_spec in (None, "-"):
            sink = LineSink(sys.stdout)
        else:
            sink = LineSink(_open(output_spec, "w"))
            closers.append(sink.stream.close)
        summary = run_stream(predictor, source, sink, cfg)
    finally:
        for close in reversed(closers):
            close()
    log.info("stream done: %s", json.dumps(summary))
    return None if output_spec in (None, "-") else summary


def _open(path: str | Path, mode: str) -> TextIO:
    try:
        return open(path, mode, encoding="utf-8", errors="replace" if mode == "r" else "strict")
    except OSError as exc:
        raise UserError(f"cannot open {path}: {exc.strerror}") from None
