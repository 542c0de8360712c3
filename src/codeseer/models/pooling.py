"""Pooling rules (token states -> one vector per text) and vector post-processing.

The torch functions are written with plain tensor ops only, so the same code runs eagerly and inside
an exported ONNX graph. Every rule reads the attention mask, never the pad token id: decoders often
pad with their EOS token, which may also be the real last token of a text.
"""

from __future__ import annotations

import numpy as np

from codeseer.models.registry import CLS, LAST, MEAN


def last_token(hidden, mask):
    """State of the last position whose mask is 1: right padding -> length-1, left padding -> the last column."""
    import torch

    positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0) * mask.to(torch.long)
    idx = positions.argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]


def first_token(hidden, mask):
    """State of the first real token ([CLS] / <s>), whichever side the batch was padded on."""
    import torch

    idx = mask.to(torch.long).argmax(dim=1)  # first 1 in each row
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]


def mean_tokens(hidden, mask):
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


def pool(hidden, mask, pooling: str):
    if pooling == LAST:
        return last_token(hidden, mask)
    if pooling == MEAN:
        return mean_tokens(hidden, mask)
    if pooling == CLS:
        return first_token(hidden, mask)
    raise ValueError(f"no token pooling rule named {pooling!r}")


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def truncate(vectors: np.ndarray, dim: int | None) -> np.ndarray:
    """Matryoshka: keep the first ``dim`` coordinates, then L2-normalise again."""
    if dim is None or dim >= vectors.shape[-1]:
        return l2_normalize(vectors)
    return l2_normalize(vectors[..., :dim])
