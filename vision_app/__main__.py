"""vision_app: image classification, semantic segmentation and object detection; the recipe's
``task:`` picks the task (:data:`vision_app.tasks.TASKS`)::

    python -m vision_app train    --config configs/vision_app/classify-quick.yaml   # ~1 min on 2 CPU cores
    python -m vision_app train    --config configs/vision_app/segment-quick.yaml    # resumes an unfinished run
    python -m vision_app train    --config configs/vision_app/detect-quick.yaml     # YOLO-style; detect_fasterrcnn
    python -m vision_app evaluate --run runs/vision_app/classify/latest [--data FOLDER_OR_CSV]
    python -m vision_app predict  --run runs/vision_app/segment/latest --input images/ --output masks/
    python -m vision_app export   --run runs/vision_app/detect/latest              # ONNX (+ int8: classify, segment)
    python -m vision_app serve    --run runs/vision_app/classify/latest serve.backend=onnx-int8

Stages after ``train`` use the config the run was trained with (``--run``, else the recipe's
``latest``) with ``key=value`` overrides on top; ``preprocess`` and ``train`` take ``--config``.
"""
from shared.cli import main
from vision_app.tasks import TASKS

if __name__ == "__main__":
    main("vision_app", TASKS, default_config="configs/vision_app/classify.yaml")
