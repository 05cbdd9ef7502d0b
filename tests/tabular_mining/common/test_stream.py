"""The stream stage: good and bad lines, micro-batching, a failing batch, a refusing ``prepare``,
the CLI on a real churn run (served == streamed), and Kafka against librdkafka's in-process mock
cluster."""
import io
import json
import re
import threading

import pandas as pd
import pytest
from pydantic import BaseModel, ConfigDict, Field

from shared.config import load_config
from shared.serving import HTTPError, Predictor
from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.classify.data import load_splits
from tabular_mining.classify.evaluate import load_classify_run
from tabular_mining.classify.predict import score_frame
from tabular_mining.common.stream import LineSink, LineSource, Message, StreamConfig, run_stream


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: float


class Body(BaseModel):
    instances: list[Row] = Field(min_length=1)


class Doubler(Predictor):
    request_model = Body

    def __init__(self):
        self.batches = []

    def predict_batch(self, items):
        if any(r.x == 13 for r in items):
            raise ValueError("x=13 cannot be scored")
        self.batches.append(len(items))
        return [{"y": 2 * r.x} for r in items]


def stream_text(text: str, predictor=None, **cfg):
    out, err = io.StringIO(), io.StringIO()
    predictor = predictor or Doubler()
    summary = run_stream(predictor, LineSource(io.StringIO(text)), LineSink(out), StreamConfig(**cfg), errors=err)
    return ([json.loads(x) for x in out.getvalue().splitlines()],
            [json.loads(x) for x in err.getvalue().splitlines()], summary, predictor)


def test_good_and_bad_lines():
    lines = ['{"x": 1, "id": "a"}', "{not json", "[1, 2]", '{"x": "abc"}', '{"y": 1}', "", '{"x": 13}', '{"x": 2.5}']
    text = "".join(line + "\n" for line in lines)
    out, err, summary, _ = stream_text(text, batch_size=100)
    assert out == [{"position": 1, "id": "a", "y": 2.0}, {"position": 8, "y": 5.0}]
    assert [e["position"] for e in err] == [2, 3, 4, 5, 7]
    assert "not valid JSON" in err[0]["error"] and "JSON object" in err[1]["error"]
    assert err[2]["error"].startswith("x:") and "required" in err[3]["error"].lower()
    assert "x=13" in err[4]["error"]
    assert summary["records"] == 7 and summary["scored"] == 2 and summary["bad"] == 5


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 5000, r'"\ud800"'])
def test_lines_the_server_would_refuse_are_reported_like_it(value):
    out, err, _, _ = stream_text(f'{{"x": 1}}\n{{"x": {value}}}\n{{"x": 2}}\n')
    assert [o["y"] for o in out] == [2.0, 4.0]
    assert [e["position"] for e in err] == [2] and "not valid JSON" in err[0]["error"]
    json.dumps(err, ensure_ascii=False).encode("utf-8")  # the report itself is writable UTF-8


def test_micro_batches_respect_batch_size():
    text = "".join(json.dumps({"x": i}) + "\n" for i in range(10))
    out, err, summary, predictor = stream_text(text, batch_size=4, max_wait_ms=10_000)
    assert [o["y"] for o in out] == [2.0 * i for i in range(10)] and not err
    assert predictor.batches == [4, 4, 2] and summary["batches"] == 3


def test_a_partial_batch_is_flushed_after_max_wait_while_the_source_blocks():
    delivered = threading.Event()

    class Sink(LineSink):
        def write(self, outputs):
            super().write(outputs)
            delivered.set()

    def source():
        yield Message(1, '{"x": 1}')
        assert delivered.wait(20), "the first record was never flushed"  # blocks like a quiet stdin
        yield Message(2, '{"x": 2}')

    class Source:
        def __iter__(self):
            return source()

        def done(self, messages):
            pass

    out = io.StringIO()
    summary = run_stream(Doubler(), Source(), Sink(out), StreamConfig(batch_size=100, max_wait_ms=5),
                         errors=io.StringIO())
    assert summary["batches"] == 2 and summary["scored"] == 2


def test_a_record_prepare_refuses_is_reported_and_the_rest_are_scored():
    class Picky(Doubler):
        def prepare(self, item):
            if item.x < 0:
                raise HTTPError(422, "x must not be negative")
            return item

    out, err, summary, _ = stream_text('{"x": 1}\n{"x": -1}\n{"x": 2}\n', Picky(), batch_size=10)
    assert [o["y"] for o in out] == [2.0, 4.0]
    assert err == [{"position": 2, "error": "x must not be negative"}] and summary["bad"] == 1


def test_stream_cli_on_a_churn_run_matches_batch_scoring(churn_run, tmp_path, capsys, cli):
    cfg = load_config(ClassifyConfig, "configs/tabular_mining/churn-quick.yaml",
                      ["name=churn-smoke", "data.sample=800", "eval.cv_folds=2"])
    test = load_splits(cfg.name, cfg.data).test
    loaded = load_classify_run(churn_run, True)
    features = test[loaded.schema.names].head(20)
    lines = [json.dumps({"id": i, **{k: (None if pd.isna(v) else v) for k, v in row.items()}})
             for i, row in enumerate(features.to_dict("records"))]
    lines.insert(3, '{"tenure": "oops"}')
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert cli("stream", "--run", churn_run, "--input", src, "--output", dst, "stream.batch_size=8") == 0
    scored = [json.loads(x) for x in dst.read_text().splitlines()]
    assert [s["id"] for s in scored] == list(range(20))
    offline = score_frame(loaded, features, 0.5)["probability"].tolist()
    assert [s["probability"] for s in scored] == pytest.approx(offline, abs=1e-6)
    captured = capsys.readouterr()
    assert '"position": 4' in captured.err and '"scored": 20' in captured.out


def _mock_bootstrap(producer) -> str:
    broker = next(iter(producer.list_topics(timeout=10).brokers.values()))
    return f"{broker.host}:{broker.port}"


def test_kafka_source_and_sink_on_the_mock_cluster():
    ck = pytest.importorskip("confluent_kafka")
    from tabular_mining.common.kafka import KafkaSink, KafkaSource
    from tabular_mining.common.stream import KafkaConfig

    cluster = ck.Producer({"test.mock.num.brokers": 1})  # an in-process broker, alive while this object is
    boot = _mock_bootstrap(cluster)
    records = [b'{"x": 1, "id": 7}', b"garbage", b'{"x": 2}', b'{"x": 13}', b'{"x": 3}']
    for i, value in enumerate(records):
        cluster.produce("records", value=value, key=str(i).encode())
    assert cluster.flush(10) == 0
    cfg = KafkaConfig(bootstrap_servers=boot, input_topic="records", output_topic="scores",
                      dead_letter_topic="bad", group_id="t", max_messages=len(records), idle_timeout_s=20,
                      extra={"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})  # quick rebalance below
    source, sink = KafkaSource(cfg), KafkaSink(cfg)
    err = io.StringIO()
    try:
        summary = run_stream(Doubler(), source, sink, StreamConfig(batch_size=2, max_wait_ms=50), errors=err)
    finally:
        source.close()
        sink.close()
    assert summary["scored"] == 3 and summary["bad"] == 2

    def drain(topic, n):
        c = ck.Consumer({"bootstrap.servers": boot, "group.id": f"check-{topic}", "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        got = []
        for _ in range(200):
            if len(got) == n:
                break
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append((m.key(), json.loads(m.value())))
        c.close()
        return got

    scores = drain("scores", 3)
    assert sorted(v["y"] for _, v in scores) == [2.0, 4.0, 6.0]
    assert {k for k, v in scores if v.get("id") == 7} == {b"0"}  # keys carried through, ids echoed
    assert all(re.fullmatch(r"records/\d+/\d+", v["position"]) for _, v in scores)
    assert sorted(v["value"] for _, v in drain("bad", 2)) == ["garbage", '{"x": 13}']
    # offsets were committed for the delivered batches: the group resumes after them
    cluster.produce("records", value=b'{"x": 4}')
    assert cluster.flush(10) == 0
    again = KafkaSource(cfg.model_copy(update={"max_messages": 1}))
    try:
        assert [m.value for m in again] == [b'{"x": 4}']
    finally:
        again.close()


def test_kafka_live_broker_or_skip():
    pytest.importorskip("confluent_kafka")
    import os

    from tabular_mining.common.kafka import broker_reachable

    servers = os.environ.get("MLREF_KAFKA", "localhost:9092")
    if not broker_reachable(servers, timeout_s=1.0):
        pytest.skip(f"no Kafka broker at {servers} (set MLREF_KAFKA=host:port to run this)")
    from tabular_mining.common.kafka import KafkaSink, KafkaSource
    from tabular_mining.common.stream import KafkaConfig

    topic = f"mlref-live-{os.getpid()}"
    cfg = KafkaConfig(bootstrap_servers=servers, input_topic=topic, output_topic=topic + "-out",
                      group_id=topic, max_messages=2, idle_timeout_s=30)
    sink = KafkaSink(KafkaConfig(bootstrap_servers=servers, output_topic=topic))
    sink.write([(Message(0, ""), {"x": 1}), (Message(1, ""), {"x": 2})])
    source, out = KafkaSource(cfg), KafkaSink(cfg)
    try:
        summary = run_stream(Doubler(), source, out, StreamConfig(id_field=None, batch_size=2), errors=io.StringIO())
    finally:
        source.close()
        out.close()
    assert summary["scored"] == 2
