"""The ceiling of any server of ours on this machine: bare FastAPI on uvicorn that parses the
same JSON body as a model server and answers a constant. No model, no batcher, no limits, no
middleware: what is left of a request's cost is the framework's. Every app's serving table shows
its server against this one, measured in the same run, so the overhead of ours is a ratio that
does not depend on how fast (or busy) the machine is.

    python -m bench.ceiling --port 8765      # serves until stopped: POST /predict, GET /readyz
"""
from __future__ import annotations

import argparse

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
_ANSWER = {"predictions": [{"label": "ceiling", "probability": 0.5}]}


@app.post("/predict")
async def predict(request: Request) -> JSONResponse:
    """Parse the body as JSON (as every model server must), answer a constant."""
    await request.json()
    return JSONResponse(_ANSWER)


@app.get("/readyz")
async def readyz() -> dict:
    return {"status": "ready"}


def main() -> None:
    """Serve the ceiling app with uvicorn's defaults (logging as quiet as our servers')."""
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    args = ap.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
