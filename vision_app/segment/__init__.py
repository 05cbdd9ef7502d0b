"""Semantic segmentation (``task: segment``): images with per-pixel class masks, or the generated
shapes set; a compact U-Net, or a U-Net decoder on a ResNet-18 encoder.

Modules in the order data flows: ``config`` (the recipe), ``data`` (sources, checks, split,
presets), ``model``, ``train``, ``evaluate`` (IoU, Dice, overlays), ``predict``, ``export``
(ONNX + int8), ``serve``.
"""
