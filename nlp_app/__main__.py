"""Chinese text classification / sentiment, from raw text to a served BERT.

    python -m nlp_app preprocess --config configs/nlp_app/sentiment.yaml      # clean, de-duplicate, split
    python -m nlp_app train      --config configs/nlp_app/sentiment.yaml      # BERT (model.name=baseline: TF-IDF+LR)
    python -m nlp_app train      --config configs/nlp_app/pretrain.yaml       # masked-LM pre-training
    python -m nlp_app train      --config configs/nlp_app/sentiment.yaml model.pretrained=runs/nlp_app/pretrain/latest
    python -m nlp_app compare    --config configs/nlp_app/sentiment.yaml      # baseline vs BERT scratch vs pre-trained
    python -m nlp_app evaluate   [--run DIR] [--data FILE.csv|.jsonl]
    python -m nlp_app predict    [--run DIR] --input texts.txt --output preds.jsonl
    python -m nlp_app export     [--run DIR]                                  # ONNX + int8 ONNX, accuracy vs torch
    python -m nlp_app serve      [--run DIR] [serve.backend=onnx-int8]

A tiny CPU run: ``python -m nlp_app train --config configs/nlp_app/sentiment-quick.yaml``.
Extractive QA and NER use the same stages with their recipes (``--config configs/nlp_app/qa.yaml``,
``ner.yaml``): see :mod:`nlp_app.qa` and :mod:`nlp_app.ner`.
Several processes: ``torchrun --nproc_per_node=2 -m nlp_app train --config …``.
"""
from nlp_app.compare import compare_stage
from nlp_app.evaluate import evaluate_stage, predict_stage
from nlp_app.export import export_stage
from nlp_app.qa_ner_cli import route_tasks
from nlp_app.serve import serve_stage
from nlp_app.stages import preprocess_stage, pretrain_stage
from nlp_app.train import train_stage
from shared.cli import Stage, legacy_main as main

STAGES = {
    "preprocess": Stage(preprocess_stage, "read, validate, de-duplicate and split the data; cache it"),
    "train": Stage(train_stage, "train the recipe's model (a pretrain recipe pre-trains); writes a run"),
    "pretrain": Stage(pretrain_stage, "masked-LM pre-training with whole-word masking (configs/nlp_app/pretrain.yaml)"),
    "compare": Stage(compare_stage, "baseline vs BERT from scratch vs pre-trained BERT on one split; a table"),
    "evaluate": Stage(evaluate_stage, "score a run on its test split or on --data FILE"),
    "predict": Stage(predict_stage, "batch-score --input into --output (JSONL)"),
    "export": Stage(export_stage, "ONNX + int8 ONNX; accuracy of each against torch on the test split"),
    "serve": Stage(serve_stage, "REST API: POST /predict with a list of texts"),
}
STAGES = route_tasks(STAGES)  # recipes with task: qa / ner (configs/nlp_app/qa*.yaml, ner*.yaml) run in nlp_app.qa_ner_cli

if __name__ == "__main__":
    main("nlp_app", STAGES, default_config="configs/nlp_app/sentiment.yaml")
