"""Serving: the app factory, micro-batcher, limits and telemetry. See :mod:`shared.serving.app`."""
from shared.serving.app import HTTPError, Predictor, ServeConfig, create_app, serve
from shared.serving.batcher import MicroBatcher, QueueFull

__all__ = ["HTTPError", "MicroBatcher", "Predictor", "QueueFull", "ServeConfig", "create_app", "serve"]
