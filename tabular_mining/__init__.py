"""tabular_mining. In Python::

    from tabular_mining import load
    model = load("runs/tabular_mining/<recipe>/latest")   # a run directory; overrides as "key=value" strings
    model.predict([...])                         # the same dict POST /predict answers (see model.example())
"""


def load(run, *overrides: str):
    """The trained run at ``run`` as a :class:`shared.api.Model`."""
    from shared.api import load as load_run
    from tabular_mining.tasks import TASKS

    return load_run("tabular_mining", TASKS, run, overrides)
