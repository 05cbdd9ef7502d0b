"""Image classification (``task: classify``): a folder per class, a ``path,label`` CSV or the
embedded digits; torchvision ResNet/VGG or a compact CNN.

Modules in the order data flows: ``config`` (the recipe), ``data`` (sources, checks, split,
presets), ``model``, ``train``, ``evaluate``, ``predict``, ``export`` (ONNX + int8), ``serve``.
"""
