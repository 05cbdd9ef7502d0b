"""nlp_app. In Python::

    from nlp_app import load
    model = load("runs/nlp_app/<recipe>/latest")   # a run directory; overrides as "key=value" strings
    model.predict([...])                         # the same dict POST /predict answers (see model.example())
"""


def load(run, *overrides: str):
    """The trained run at ``run`` as a :class:`shared.api.Model`."""
    from nlp_app.tasks import TASKS
    from shared.api import load as load_run

    return load_run("nlp_app", TASKS, run, overrides)
