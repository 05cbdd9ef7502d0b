"""The CRF layer against brute force on tiny sequences: the likelihood (every tag sequence
enumerated), Viterbi (the best valid sequence), and only valid BIO/BIOES sequences ever decoded."""
import itertools

import numpy as np
import pytest
import torch

from nlp_app.ner.crf import CRF, allowed_transitions, masked_scores, repair_bio, viterbi
from nlp_app.ner.features import IGNORE
from nlp_app.ner.model import compact

BIO = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]


def _random_crf(labels, seed):
    torch.manual_seed(seed)
    crf = CRF(labels)
    with torch.no_grad():
        for p in (crf.transitions, crf.start, crf.end):
            p.normal_(0, 1.5)
    return crf


def _valid(labels, seq) -> bool:
    start, trans, end = allowed_transitions(labels)
    return bool(start[seq[0]] and end[seq[-1]] and all(trans[a, b] for a, b in itertools.pairwise(seq)))


@torch.no_grad()
def _score(crf, em, seq) -> float:
    s = crf.start[seq[0]] + em[0, seq[0]] + crf.end[seq[-1]]
    s = s + sum(crf.transitions[a, b] + em[t + 1, b] for t, (a, b) in enumerate(itertools.pairwise(seq)))
    return float(s)


def _valid_sequences(labels, n):
    return [seq for seq in itertools.product(range(len(labels)), repeat=n) if _valid(labels, seq)]


def test_bio_rules():
    start, trans, end = allowed_transitions(BIO)
    ix = {t: i for i, t in enumerate(BIO)}
    assert not start[ix["I-LOC"]] and start[ix["B-LOC"]] and start[ix["O"]] and end.all()
    assert not trans[ix["O"], ix["I-PER"]] and not trans[ix["B-LOC"], ix["I-PER"]]
    assert not trans[ix["I-LOC"], ix["I-PER"]]
    assert trans[ix["B-PER"], ix["I-PER"]] and trans[ix["I-PER"], ix["I-PER"]] and trans[ix["I-PER"], ix["B-LOC"]]


def test_bioes_rules():
    start, trans, end = allowed_transitions(BIOES)
    ix = {t: i for i, t in enumerate(BIOES)}
    assert not trans[ix["B-PER"], ix["O"]] and trans[ix["B-PER"], ix["E-PER"]] and trans[ix["E-PER"], ix["S-PER"]]
    assert not end[ix["B-PER"]] and not end[ix["I-PER"]] and end[ix["E-PER"]]
    assert not start[ix["E-PER"]]


@pytest.mark.parametrize("labels", [BIO, BIOES], ids=["bio", "bioes"])
@pytest.mark.parametrize("n", [1, 2, 4])
def test_likelihood_equals_brute_force_over_valid_sequences(labels, n):
    crf = _random_crf(labels, seed=n)
    em = torch.randn(1, n, len(labels)) * 2
    seqs = _valid_sequences(labels, n)
    log_z = torch.logsumexp(torch.tensor([_score(crf, em[0], s) for s in seqs]), 0)
    for gold in seqs[:: max(1, len(seqs) // 7)]:
        expected = float(log_z) - _score(crf, em[0], gold)
        got = crf.nll(em, torch.tensor([gold]), torch.ones(1, n, dtype=torch.bool)) * n  # nll is per token
        assert got.item() == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_padded_rows_score_like_unpadded_ones():
    crf = _random_crf(BIO, seed=3)
    em = torch.randn(2, 5, len(BIO))
    tags = torch.tensor([[0, 1, 2, 0, 3], [3, 4, 0, 0, 0]])
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    together = crf.nll(em, tags, mask) * 7
    alone = crf.nll(em[:1], tags[:1], mask[:1]) * 5 + crf.nll(em[1:, :2], tags[1:, :2], mask[1:, :2]) * 2
    assert together.item() == pytest.approx(alone.item(), rel=1e-5)


@pytest.mark.parametrize("labels", [BIO, BIOES], ids=["bio", "bioes"])
def test_viterbi_is_the_best_valid_sequence(labels):
    for seed in range(20):
        crf = _random_crf(labels, seed)
        n = 1 + seed % 5
        em = torch.randn(n, len(labels)) * 3
        best = max(_valid_sequences(labels, n), key=lambda s: _score(crf, em, s))
        assert tuple(viterbi(em.numpy(), crf.decoder())) == best


def test_decoding_never_yields_an_invalid_sequence_even_when_argmax_would():
    crf = CRF(BIO)  # all scores zero: only the mask decides
    em = np.zeros((3, len(BIO)))
    em[:, BIO.index("I-PER")] = 10  # argmax says I-PER I-PER I-PER (starts inside an entity)
    em[0, BIO.index("B-LOC")] = 9
    tags = [BIO[i] for i in viterbi(em, crf.decoder())]
    assert tags[0] != "I-PER" and _valid(BIO, [BIO.index(t) for t in tags])
    assert tags == ["B-PER", "I-PER", "I-PER"]


def test_saved_params_decode_like_the_layer(tmp_path):
    from nlp_app.ner.crf import load_params

    crf = _random_crf(BIO, seed=5)
    crf.to_json(tmp_path / "crf.json")
    em = np.random.default_rng(0).normal(size=(6, len(BIO)))
    assert viterbi(em, masked_scores(load_params(tmp_path / "crf.json"))) == viterbi(em, crf.decoder())
    assert load_params(tmp_path / "missing.json") is None


def test_compact_moves_scored_positions_left_in_order():
    scores = torch.arange(2 * 5 * 1, dtype=torch.float).view(2, 5, 1)
    labels = torch.tensor([[IGNORE, 1, 2, 3, IGNORE], [IGNORE, 4, IGNORE, IGNORE, IGNORE]])
    em, tags, mask = compact(scores, labels)
    assert em[0, :, 0].tolist() == [1, 2, 3] and em[1, 0, 0].item() == 6
    assert tags[0].tolist() == [1, 2, 3] and mask.tolist() == [[True] * 3, [True, False, False]]


def test_repair_bio_reads_slips_as_seqeval_does():
    assert repair_bio(["O", "I-PER", "I-PER", "I-LOC", "B-ORG", "I-ORG"]) == \
        ["O", "B-PER", "I-PER", "B-LOC", "B-ORG", "I-ORG"]
    assert repair_bio(["I-PER"]) == ["B-PER"]
