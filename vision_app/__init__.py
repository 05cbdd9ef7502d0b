"""vision_app. In Python::

    from vision_app import load
    model = load("runs/vision_app/<recipe>/latest")   # a run directory; overrides as "key=value" strings
    model.predict([...])                         # the same dict POST /predict answers (see model.example())
"""


def load(run, *overrides: str):
    """The trained run at ``run`` as a :class:`shared.api.Model`."""
    from shared.api import load as load_run
    from vision_app.tasks import TASKS

    return load_run("vision_app", TASKS, run, overrides)
