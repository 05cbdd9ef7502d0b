"""The recsys_app tasks: one, ``recommend`` (top-K next-item recommendation), in the shape every
app uses (:class:`shared.tasks.Task`), so a second task is a new folder next to ``recommend/``."""
from recsys_app.recommend.compare import compare
from recsys_app.recommend.config import RecsysConfig
from recsys_app.recommend.data import preprocess
from recsys_app.recommend.evaluate import evaluate
from recsys_app.recommend.export import export
from recsys_app.recommend.predict import predict
from recsys_app.recommend.serve import RecsysPredictor
from recsys_app.recommend.train import train
from recsys_app.recommend.tune import apply_tuned, tune
from shared.tasks import Extra, Task

TASKS = {
    "recommend": Task(
        config=RecsysConfig,
        help="top-K recommendation from interactions: popularity, ItemKNN, EASE, ALS, SASRec (model.name)",
        preprocess=preprocess,
        train=train,
        evaluate=evaluate,
        predict=predict,
        export=export,
        predictor=RecsysPredictor.from_run,
        extra={"compare": Extra(compare, "train every model of eval.compare_models on one split and rank them"),
               "tune": Extra(tune, "Optuna per model of tune.models on held-out training interactions (searched on half the users, confirmed on the other half); train with "
                                   "model.params_from=<tune run>")},
        resolve_config=apply_tuned,
    ),
}
