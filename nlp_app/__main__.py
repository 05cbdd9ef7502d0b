"""Chinese NLP: text classification, masked-LM pre-training, extractive QA and NER (the recipe's
``task:`` picks which; stages after ``train`` take the task and config from the run)::

    python -m nlp_app preprocess --config configs/nlp_app/sentiment.yaml      # clean, de-duplicate, split
    python -m nlp_app train      --config configs/nlp_app/sentiment.yaml      # TF-IDF baseline + BERT, the better served
    python -m nlp_app train      --config configs/nlp_app/pretrain.yaml       # masked-LM pre-training
    python -m nlp_app train      --config configs/nlp_app/sentiment.yaml model.pretrained=runs/nlp_app/pretrain/latest
    python -m nlp_app train      --config configs/nlp_app/ner.yaml            # also qa.yaml
    python -m nlp_app compare    --config configs/nlp_app/sentiment.yaml      # baseline vs BERT scratch vs pre-trained
    python -m nlp_app evaluate   [--run DIR | --config RECIPE] [--data FILE]   # FILE → DIR/evaluations/<stem>/
    python -m nlp_app predict    [--run DIR | --config RECIPE] --input FILE --output preds.jsonl
    python -m nlp_app export     [--run DIR | --config RECIPE]                 # ONNX + int8 ONNX
    python -m nlp_app serve      [--run DIR | --config RECIPE] [serve.backend=onnx-int8]
    python -m nlp_app serve      --run DIR serve.model=bert                    # a run's other model

A tiny CPU run: ``python -m nlp_app train --config configs/nlp_app/sentiment-quick.yaml``. The same
``train`` command resumes the newest unfinished run of that recipe and config; ``--run DIR``
resumes that run; a finished run is never overwritten. Several processes:
``torchrun --standalone --nproc_per_node=2 -m nlp_app train --config …``.
"""
from nlp_app.tasks import TASKS
from shared.cli import main

if __name__ == "__main__":
    main("nlp_app", TASKS, default_config="configs/nlp_app/sentiment.yaml")
