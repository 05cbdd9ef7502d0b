"""Serving: the app factory, the predictor contract, micro-batcher, limits and telemetry.

See :mod:`shared.serving.app` (the routes), :mod:`shared.serving.predictor` (the hooks an app
implements) and :mod:`shared.serving.server` (running it, workers, slow clients).
"""
from shared.serving.app import create_app
from shared.serving.batcher import MicroBatcher, QueueFull
from shared.serving.config import ServeConfig
from shared.serving.predictor import ErrorBody, HTTPError, Predictor, StrictRequest
from shared.serving.server import serve

__all__ = ["ErrorBody", "HTTPError", "MicroBatcher", "Predictor", "QueueFull", "ServeConfig", "StrictRequest",
           "create_app", "serve"]
