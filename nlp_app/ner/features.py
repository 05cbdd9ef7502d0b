"""Model inputs of the NER taggers: token lists (+ tags) → token ids, each token's tag on its first
sub-token, and, with ``model.word_features``, each token's position in its jieba word.

Both taggers (BERT and the character BiLSTM/CNN) read the same ids from the same kind of
tokenizer (a character vocabulary, or a pre-trained model's, made to cut text into characters and
to normalise it by :func:`nlp_app.common.tokenization.character_tokenizer`), so one encoder serves
both, and no text is converted here: the tokenizer does it, for ``transformers.pipeline`` too.
"""
from __future__ import annotations

from collections.abc import Sequence

from nlp_app.common.tokenization import text_normalizer, word_spans
from nlp_app.ner.char_model import WORD_POSITIONS

IGNORE = -100  # label of special tokens and continuation sub-tokens: not scored, not trained
BERT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def input_names(model_cfg) -> tuple[str, ...]:
    """The inputs the configured model takes (what a runner is fed)."""
    if model_cfg.encoder == "bert":
        return BERT_INPUTS
    return ("input_ids", "attention_mask") + (("word_pos",) if model_cfg.word_features else ())


def word_positions(tokens: Sequence[str]) -> list[int]:
    """For each token, where its first character sits in the jieba word around it
    (:data:`WORD_POSITIONS`: B, M, E or S); 0 for whitespace. jieba reads the tokens as the
    tokenizer's NFKC leaves them (full-width digits and letters half-width, as it segments best)."""
    nfkc = text_normalizer(lowercase=False)
    tokens = [nfkc.normalize_str(t) for t in tokens]
    text = "".join(tokens)
    per_char = [0] * len(text)
    for start, end in word_spans(text):
        if end - start == 1:
            per_char[start] = WORD_POSITIONS["S"]
            continue
        per_char[start] = WORD_POSITIONS["B"]
        per_char[start + 1:end - 1] = [WORD_POSITIONS["M"]] * (end - start - 2)
        per_char[end - 1] = WORD_POSITIONS["E"]
    out, offset = [], 0
    for token in tokens:
        out.append(per_char[offset] if token and offset < len(per_char) else 0)
        offset += len(token)
    return out


def encode(sentences: Sequence[tuple[list[str], list[str]]] | Sequence[list[str]], tokenizer,
           label2id: dict[str, int] | None, max_length: int, word_features: bool = False) -> list[dict]:
    """Token lists (+ tags) → model inputs; each token's tag goes on its first sub-token, every other
    position is :data:`IGNORE`. Also returns ``word_ids`` to map predictions back to tokens."""
    token_lists = [list(s[0] if isinstance(s, tuple) else s) for s in sentences]
    enc = tokenizer(token_lists, is_split_into_words=True, truncation=True, max_length=max_length)
    out = []
    for i, sent in enumerate(sentences):
        word_ids = enc.word_ids(i)
        item = {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "word_ids": word_ids}
        if "token_type_ids" in enc:
            item["token_type_ids"] = enc["token_type_ids"][i]
        if word_features:
            positions = word_positions(token_lists[i])
            item["word_pos"] = [0 if w is None else positions[w] for w in word_ids]
        if label2id is not None and isinstance(sent, tuple):
            tags, prev, labels = sent[1], None, []
            for w in word_ids:
                labels.append(IGNORE if w is None or w == prev else label2id.get(tags[w], 0))
                prev = w
            item["labels"] = labels
        out.append(item)
    return out


def first_subtokens(word_ids: Sequence[int | None]) -> tuple[list[int], list[int]]:
    """``(positions, tokens)``: the position of each token's first sub-token, and that token's index."""
    positions, tokens, prev = [], [], None
    for pos, w in enumerate(word_ids):
        if w is not None and w != prev:
            positions.append(pos)
            tokens.append(w)
        prev = w
    return positions, tokens
