"""Object detection (``task: detect``): a YOLO-style detector written here and torchvision's
Faster R-CNN, on COCO / VOC / YOLO-txt data or the generated shapes set (commands: ``vision_app``).

Modules, in the order data flows: ``config`` (the recipe), ``formats`` (readers/writers,
validation), ``data`` (split, cache, presets, torch dataset), ``yolo`` and ``models`` (the
detectors), ``train``, ``predict`` (:class:`~vision_app.detect.predict.Detector`, the one
inference path), ``evaluate`` (mAP, plots), ``export`` (ONNX), ``serve``.
"""
