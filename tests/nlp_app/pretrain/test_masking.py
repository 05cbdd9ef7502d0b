"""Whole-word masking as pure functions, and the MLM collator."""
import random

import torch

from nlp_app.common.tokenization import build_char_vocab, char_tokenizer
from nlp_app.pretrain.masking import IGNORE, WholeWordMaskCollator, apply_mask, choose_masked


def test_whole_word_masking_masks_words_together():
    word_ids = [None, 0, 0, 1, 1, 1, 2, 3, 3, None]
    for seed in range(20):
        chosen = choose_masked(word_ids, 0.3, random.Random(seed))
        assert not chosen[0] and not chosen[-1] and any(chosen)
        for w in range(4):  # all or none of each word
            assert len({chosen[i] for i, x in enumerate(word_ids) if x == w}) == 1


def test_apply_mask_labels_only_chosen():
    inputs, labels = apply_mask([2, 10, 11, 12, 3], [False, True, False, True, False], mask_id=4, n_special=5,
                                vocab_size=20, rng=random.Random(0))
    assert labels == [IGNORE, 10, IGNORE, 12, IGNORE]
    assert inputs[0] == 2 and inputs[2] == 11 and inputs[4] == 3


def test_mlm_collator_pads_labels_with_ignore():
    tok = char_tokenizer(build_char_vocab(["我很喜欢这本书"] * 2, min_freq=1))
    coll = WholeWordMaskCollator(tok, probability=0.5)
    examples = [{"input_ids": tok("喜欢这本书")["input_ids"], "word_ids": [None, 0, 0, 1, 2, 2, None]},
                {"input_ids": tok("书")["input_ids"], "word_ids": [None, 0, None]}]
    torch.manual_seed(0)
    batch = coll(examples)
    assert batch["input_ids"].shape == batch["labels"].shape == (2, 7)
    assert (batch["labels"][1, 3:] == IGNORE).all() and (batch["labels"] != IGNORE).any()
