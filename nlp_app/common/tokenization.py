"""Tokenisers for every NLP task (classification, QA, NER, pre-training):

- :func:`segment`: jieba word segmentation (baseline features, whole-word masking boundaries);
- :func:`build_char_vocab` / :func:`char_tokenizer`: a character-level BERT vocabulary from a
  corpus (Chinese BERTs are character-level): every CJK character is a token, other runs
  (Latin words, numbers) are split into characters, the first as ``c`` and the rest as ``##c``;
- :func:`load_tokenizer` / :func:`resolve_pretrained`: a tokenizer from a run directory, a local
  Hugging Face directory or a hub id (offline runs need it on disk);
- :func:`normalizing_tokenizer`: a tokenizer whose own normaliser does the text normalisation
  (full-width to half-width, lower case), saved in ``tokenizer.json``, so ``transformers.pipeline``
  on a run's model folder and the server see the same text;
- :func:`character_tokenizer`: that normalisation (NFKC only: lower case stays the tokenizer's own
  choice) and a pre-tokeniser that cuts the text into single characters, as the NER taggers read it.
"""
from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_jieba = None


def _get_jieba():
    global _jieba
    if _jieba is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba = jieba
    return _jieba


def segment(text: str) -> list[str]:
    """jieba words of ``text`` (HMM on for unknown words), whitespace tokens dropped."""
    return [w for w in _get_jieba().lcut(text, HMM=True) if w.strip()]


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character ``(start, end)`` spans of the jieba words of ``text``, whitespace skipped."""
    spans = []
    for word, start, end in _get_jieba().tokenize(text, HMM=True):
        if word.strip():
            spans.append((start, end))
    return spans


def _pre_tokenize(text: str) -> list[str]:
    """The pieces BERT's normaliser + pre-tokeniser cut a text into (CJK chars one by one)."""
    from tokenizers import normalizers, pre_tokenizers

    norm = _pre_tokenize.norm = getattr(_pre_tokenize, "norm", None) or normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    pre = _pre_tokenize.pre = getattr(_pre_tokenize, "pre", None) or pre_tokenizers.BertPreTokenizer()
    return [piece for piece, _ in pre.pre_tokenize_str(norm.normalize_str(text))]


def build_char_vocab(texts: Iterable[str], min_freq: int = 2, max_size: int = 12000) -> list[str]:
    """Special tokens, then characters by descending frequency (ties by code point).

    A character inside a non-CJK word also gets a ``##`` continuation entry, so English words
    and numbers tokenise to characters instead of ``[UNK]``.
    """
    counts: Counter[str] = Counter()
    for text in texts:
        for piece in _pre_tokenize(text):
            counts[piece[0]] += 1
            counts.update("##" + ch for ch in piece[1:])
    ranked = sorted((tok for tok, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
    return list(SPECIAL_TOKENS) + ranked[: max(0, max_size - len(SPECIAL_TOKENS))]


def char_tokenizer(vocab: Sequence[str], model_max_length: int = 512):
    """A fast ``BertTokenizer`` over ``vocab`` (as built by :func:`build_char_vocab`)."""
    from transformers import BertTokenizer

    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise ValueError(f"vocabulary lacks special tokens {missing}")
    return BertTokenizer(vocab={tok: i for i, tok in enumerate(vocab)}, do_lower_case=True,
                         tokenize_chinese_chars=True, model_max_length=model_max_length)


def resolve_pretrained(ref: str) -> str:
    """A ``model.pretrained`` value as ``from_pretrained`` wants it: a local directory (a run dir,
    a ``latest`` link or any HF model dir) resolved to its real path, else the string as a hub id.
    A classification run keeps its BERT in ``models/bert/``: that folder is the model directory."""
    path = Path(ref).expanduser()
    if path.exists():
        path = path.resolve()
        if not (path / "config.json").exists() and (path / "models" / "bert" / "config.json").exists():
            path = path / "models" / "bert"
        if not (path / "config.json").exists():
            from shared.errors import UserError

            raise UserError(f"model.pretrained={ref}: {path} has no config.json (a pre-training run dir "
                            "or a Hugging Face model directory is expected)")
        return str(path)
    return ref


def load_tokenizer(ref: str):
    """The tokenizer saved in a run dir / HF directory, or a hub id's (offline: must be cached)."""
    from transformers import AutoTokenizer

    from shared.errors import UserError

    src = resolve_pretrained(ref)
    try:
        return AutoTokenizer.from_pretrained(src)
    except OSError as exc:
        raise UserError(f"cannot load a tokenizer from {ref!r}: {exc}".splitlines()[0]) from None


def text_normalizer(lowercase: bool = True):
    """NFKC (full-width letters, digits and punctuation and the ideographic space to their ASCII
    forms, like :func:`nlp_app.common.normalize.to_half_width`, and other compatibility forms such
    as ① to 1), then lower case when ``lowercase``: the normalisation a classifier's BERT applies."""
    from tokenizers import normalizers

    return normalizers.Sequence([normalizers.NFKC(), *([normalizers.Lowercase()] if lowercase else [])])


def normalizing_tokenizer(tokenizer, lowercase: bool = True):
    """``tokenizer`` with :func:`text_normalizer` run before its own normaliser (a BERT's cleans
    control characters and spaces out CJK characters). The result is a generic fast tokenizer
    (``TokenizersBackend``), because ``BertTokenizer`` rebuilds its normaliser from its options
    on loading and would drop ours; ``save_pretrained`` writes the whole chain to ``tokenizer.json``.
    A tokenizer that normalises so already (a run trained since) is returned as it is: applied on
    loading, this gives runs saved before it the normalisation they had in Python."""
    from tokenizers import normalizers

    ours, own = text_normalizer(lowercase), tokenizer.backend_tokenizer.normalizer
    probe = "Ａ\u3000Ｚ"  # full-width, upper case
    if own is not None and own.normalize_str(probe) == own.normalize_str(ours.normalize_str(probe)):
        return tokenizer
    backend = copy.deepcopy(tokenizer.backend_tokenizer)
    backend.normalizer = ours if own is None else normalizers.Sequence([ours, own])
    return _generic_fast(tokenizer, backend)


def _generic_fast(tokenizer, backend):
    """A ``PreTrainedTokenizerFast`` over ``backend`` with ``tokenizer``'s length and special tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=tokenizer.model_max_length,
                                   model_input_names=list(tokenizer.model_input_names),
                                   **tokenizer.special_tokens_map)


def character_tokenizer(tokenizer):
    """``tokenizer`` as the NER taggers read text: :func:`normalizing_tokenizer`'s NFKC before its
    own normaliser (lower case only if that one lowers), then its own pre-tokeniser (a BERT's drops
    whitespace and control characters) followed by a split into single characters, so a whole
    text (``transformers.pipeline``) is cut into the same tokens as the list of its characters
    (``is_split_into_words``, what mlref feeds): one token per character, ``1`` and ``a`` as word
    starts, whitespace none. Saved with the tokenizer in ``tokenizer.json``; a tokenizer that cuts
    so already is returned as it is (applied on loading, it gives older runs the same cut)."""
    from tokenizers import Regex, pre_tokenizers

    tokenizer = normalizing_tokenizer(tokenizer, lowercase=False)
    own = tokenizer.backend_tokenizer.pre_tokenizer
    probe = "ab12 c"
    if own is not None and [p for p, _ in own.pre_tokenize_str(probe)] == list(probe.replace(" ", "")):
        return tokenizer
    backend = copy.deepcopy(tokenizer.backend_tokenizer)
    one_each = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.pre_tokenizer = pre_tokenizers.Sequence([own or pre_tokenizers.WhitespaceSplit(), one_each])
    return _generic_fast(tokenizer, backend)


def token_word_ids(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int | None]:
    """For each token (character ``offsets`` as a fast tokenizer returns them; ``(0, 0)`` for
    special tokens) the index of the word in ``spans`` that contains its first character, or
    ``None``. Tokens of one word share an id: that is what whole-word masking masks together."""
    out: list[int | None] = []
    w = 0
    for start, end in offsets:
        if start == end:
            out.append(None)
            continue
        while w < len(spans) and spans[w][1] <= start:
            w += 1
        out.append(w if w < len(spans) and spans[w][0] <= start < spans[w][1] else None)
    return out
