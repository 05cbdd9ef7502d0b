"""Object detection for vision_app (``task: detect``): a YOLO-style detector written here and
torchvision's Faster R-CNN, on COCO / VOC / YOLO-txt data or the generated shapes set.

    python -m vision_app train    --config configs/vision_app/detect.yaml             # YOLO-style
    python -m vision_app train    --config configs/vision_app/detect_fasterrcnn.yaml  # Faster R-CNN
    python -m vision_app train    --config configs/vision_app/detect-quick.yaml       # minutes on a CPU
    python -m vision_app evaluate --config configs/vision_app/detect.yaml [--data coco.json]
    python -m vision_app predict  --config configs/vision_app/detect.yaml --input images/ --output dets.jsonl
    python -m vision_app export   --config configs/vision_app/detect.yaml
    python -m vision_app serve    --config configs/vision_app/detect.yaml

Modules, in the order data flows: ``formats`` (readers/writers, validation), ``data`` (split,
cache, torch dataset), ``yolo`` and ``models`` (the detectors), ``train``, ``evaluate`` (mAP,
plots), ``predict`` (loading a run, the one inference path), ``export`` (ONNX), ``serve``.
"""
