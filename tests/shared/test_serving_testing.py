"""The comparison the concurrent-request tests use: equal answers, floats to rounding."""

from shared.serving.testing import same_answer


def test_same_answer_allows_rounding_and_names_the_first_difference():
    a = {"predictions": [{"label": "pos", "score": 0.30487804878048780, "segment": 1}]}
    assert same_answer(a, {"predictions": [{"label": "pos", "score": 0.30487804878048785, "segment": 1}]}) is None
    assert same_answer(a, {"predictions": [{"label": "neg", "score": 0.3048780487804878, "segment": 1}]}) \
        == "body.predictions[0].label: 'pos' != 'neg'"
    assert "score" in same_answer(a, {"predictions": [{"label": "pos", "score": 0.31, "segment": 1}]})
    assert "2 items" in same_answer({"x": [1, 2]}, {"x": [1]}) and "keys" in same_answer({"x": 1}, {"y": 1})
