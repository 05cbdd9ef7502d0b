"""The NLP app's tasks: one :class:`shared.tasks.Task` per recipe ``task:`` value.

=========  ==============================================  ==========================================
task       recipes (``configs/nlp_app/``)                  stages
=========  ==============================================  ==========================================
classify   ``sentiment.yaml`` (+ ``-quick``)               all, and ``compare``
pretrain   ``pretrain.yaml``, ``qa_ner_pretrain.yaml``     preprocess, train, evaluate (masked-LM)
qa         ``qa.yaml``, ``qa_pretrained.yaml``             all but compare
           (each + ``-quick``)
ner        ``ner.yaml``, ``ner_bert.yaml``,                all but compare
           ``ner_pretrained.yaml`` (each + ``-quick``)
=========  ==============================================  ==========================================
"""
from __future__ import annotations

from functools import partial

from nlp_app.classify import data as classify_data
from nlp_app.classify.compare import compare
from nlp_app.classify.config import ClassifyConfig
from nlp_app.classify.evaluate import evaluate as classify_evaluate
from nlp_app.classify.evaluate import predict as classify_predict
from nlp_app.classify.export import export as classify_export
from nlp_app.classify.serve import TextClassifierPredictor
from nlp_app.classify.train import train as classify_train
from nlp_app.ner import data as ner_data
from nlp_app.ner.config import NERConfig
from nlp_app.ner.evaluate import evaluate as ner_evaluate
from nlp_app.ner.evaluate import predict as ner_predict
from nlp_app.ner.export import export as ner_export
from nlp_app.ner.serve import NERPredictor
from nlp_app.ner.train import train as ner_train
from nlp_app.pretrain import data as pretrain_data
from nlp_app.pretrain.config import PretrainConfig
from nlp_app.pretrain.evaluate import evaluate as pretrain_evaluate
from nlp_app.pretrain.train import train as pretrain_train
from nlp_app.qa import data as qa_data
from nlp_app.qa.config import QAConfig
from nlp_app.qa.evaluate import evaluate as qa_evaluate
from nlp_app.qa.evaluate import predict as qa_predict
from nlp_app.qa.export import export as qa_export
from nlp_app.qa.serve import QAPredictor
from nlp_app.qa.train import train as qa_train
from shared.tasks import Extra, Task

PRETRAIN = Task(
    config=PretrainConfig, help="masked-LM domain pre-training with whole-word masking",
    preprocess=pretrain_data.preprocess, train=pretrain_train, evaluate=pretrain_evaluate)

TASKS = {
    "classify": Task(
        config=ClassifyConfig, help="text classification / sentiment: jieba + TF-IDF baseline or BERT",
        preprocess=classify_data.preprocess, train=classify_train, evaluate=classify_evaluate,
        predict=classify_predict, export=classify_export, predictor=TextClassifierPredictor.from_run,
        extra={"compare": Extra(partial(compare, pretrain=PRETRAIN),
                                "baseline vs BERT from scratch vs pre-trained BERT on one split; a table")}),
    "pretrain": PRETRAIN,
    "qa": Task(
        config=QAConfig, help="extractive question answering (SQuAD / CMRC 2018 format)",
        preprocess=qa_data.preprocess, train=qa_train, evaluate=qa_evaluate, predict=qa_predict,
        export=qa_export, predictor=QAPredictor.from_run),
    "ner": Task(
        config=NERConfig, help="named-entity recognition (character BIO: PER / LOC / ORG): BiLSTM-CRF or BERT",
        preprocess=ner_data.preprocess, train=ner_train, evaluate=ner_evaluate, predict=ner_predict,
        export=ner_export, predictor=NERPredictor.from_run),
}
