"""The small character tagger for CPUs (``model.encoder: bilstm`` or ``cnn``): character
embeddings, optionally concatenated with jieba word-position embeddings (is the character the
Beginning, Middle or End of a jieba word, or a Single-character word), then a BiLSTM or a
dilated CNN, then a linear layer to per-tag scores; a CRF (:mod:`nlp_app.ner.crf`) on top with
``model.crf: true``.

Its inputs are the same token ids as the BERT tagger's (the character vocabulary of
:func:`nlp_app.common.bert.build_tokenizer`, ``[CLS]``/``[SEP]`` included), so encoding, batching
and decoding are shared. Outputs at a position never depend on the padding after a sequence: the
backward LSTM reads each row reversed within its own length, and the CNN zeroes padded positions
after every layer; so a text gets the same tags alone or in any batch, in torch and in ONNX.
A run keeps the architecture (:attr:`CharTagger.arch`) in ``tagger.json`` and the weights in
``model.safetensors`` (:mod:`nlp_app.ner.model` saves and loads them).
"""
from __future__ import annotations

import torch
from torch import nn

WORD_POSITIONS = {"B": 1, "M": 2, "E": 3, "S": 4}  # 0: padding and special tokens


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row of ``x`` (B, T, D) reversed over its first ``lengths[b]`` positions; padding stays."""
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)
    index = lengths.unsqueeze(1) - 1 - steps
    index = torch.where(index >= 0, index, steps)
    return x.gather(1, index.unsqueeze(2).expand_as(x))


class BiLSTM(nn.Module):
    """Stacked bidirectional LSTM (``hidden`` per direction) that ignores right padding."""

    def __init__(self, dim: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.forward_layers = nn.ModuleList(nn.LSTM(dim if i == 0 else 2 * hidden, hidden, batch_first=True)
                                            for i in range(layers))
        self.backward_layers = nn.ModuleList(nn.LSTM(dim if i == 0 else 2 * hidden, hidden, batch_first=True)
                                             for i in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1)
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i:
                x = self.dropout(x)
            ahead, _ = fwd(x)
            behind, _ = bwd(reverse_within_length(x, lengths))
            x = torch.cat([ahead, reverse_within_length(behind, lengths)], dim=2)
        return x


class DilatedCNN(nn.Module):
    """Residual 1-D convolutions (kernel 3) with dilations 1, 2, 4, …: a wide context in few layers."""

    def __init__(self, dim: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.inp = nn.Linear(dim, hidden)
        self.convs = nn.ModuleList(nn.Conv1d(hidden, hidden, 3, padding=2 ** i, dilation=2 ** i) for i in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.unsqueeze(2).to(x.dtype)
        x = self.inp(x) * keep
        for conv, norm in zip(self.convs, self.norms):
            y = torch.relu(conv(self.dropout(x).transpose(1, 2)).transpose(1, 2))
            x = norm(x + y) * keep
        return x


ENCODERS = {"bilstm": BiLSTM, "cnn": DilatedCNN}


class CharTagger(nn.Module):
    """Token ids (+ word positions) → per-tag scores ``(B, T, num_labels)``."""

    def __init__(self, vocab_size: int, num_labels: int, encoder: str = "bilstm", embedding_dim: int = 128,
                 hidden_size: int = 256, num_layers: int = 1, dropout: float = 0.3, word_features: bool = False,
                 word_feature_dim: int = 16):
        super().__init__()
        self.arch = {"vocab_size": vocab_size, "num_labels": num_labels, "encoder": encoder,
                     "embedding_dim": embedding_dim, "hidden_size": hidden_size, "num_layers": num_layers,
                     "dropout": dropout, "word_features": word_features, "word_feature_dim": word_feature_dim}
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.word_embed = nn.Embedding(len(WORD_POSITIONS) + 1, word_feature_dim, padding_idx=0) \
            if word_features else None
        dim = embedding_dim + (word_feature_dim if word_features else 0)
        width = hidden_size // 2 if encoder == "bilstm" else hidden_size
        self.encoder = ENCODERS[encoder](dim, width, num_layers, dropout)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, word_pos: torch.Tensor | None = None,
                **_ignored) -> torch.Tensor:
        x = self.embed(input_ids)
        if self.word_embed is not None:
            x = torch.cat([x, self.word_embed(word_pos)], dim=2)
        return self.classifier(self.dropout(self.encoder(self.dropout(x), attention_mask)))

