"""Compact vector storage: float16, calibrated int8 and binary, with full-precision rescoring.

int8 uses per-dimension ranges calibrated on the indexed vectors (sentence-transformers'
"calibrated scalar quantisation"); binary keeps the sign bit (32x smaller). Both are searched
coarsely, then the top candidates are rescored with the float32 query against the dequantised
documents, which recovers most of the recall lost to quantisation.
"""

from __future__ import annotations

import numpy as np

PRECISIONS = ("float32", "float16", "int8", "binary")
RESCORE_FACTOR = 4  # coarse candidates fetched per result wanted, before rescoring


def calibrate_int8(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension [lo, hi] covering the calibration vectors."""
    lo = vectors.min(axis=0).astype(np.float32)
    hi = vectors.max(axis=0).astype(np.float32)
    hi = np.where(hi - lo < 1e-6, lo + 1e-6, hi)
    return lo, hi


def quantize_int8(vectors: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    scaled = (np.clip(vectors, lo, hi) - lo) / (hi - lo) * 255.0 - 128.0
    return np.clip(np.rint(scaled), -128, 127).astype(np.int8)


def dequantize_int8(codes: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return ((codes.astype(np.float32) + 128.0) / 255.0 * (hi - lo) + lo).astype(np.float32)


def pack_binary(vectors: np.ndarray) -> np.ndarray:
    return np.packbits(vectors > 0, axis=-1)


def unpack_binary(bits: np.ndarray, dim: int) -> np.ndarray:
    """Sign vectors scaled to unit length, so a dot product with a unit query is a cosine."""
    signs = np.unpackbits(bits, axis=-1, count=dim).astype(np.float32) * 2.0 - 1.0
    return signs / np.sqrt(dim)


def bytes_per_vector(precision: str, dim: int) -> int:
    return {"float32": 4 * dim, "float16": 2 * dim, "int8": dim, "binary": (dim + 7) // 8}[precision]


class Codec:
    """Turns float32 unit vectors into a stored column and back, for one index."""

    def __init__(self, precision: str, dim: int, calibration: list[list[float]] | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.precision = precision
        self.dim = dim
        self.lo = self.hi = None
        if calibration is not None:
            self.lo = np.asarray(calibration[0], dtype=np.float32)
            self.hi = np.asarray(calibration[1], dtype=np.float32)

    @property
    def calibration(self) -> list[list[float]] | None:
        return None if self.lo is None else [self.lo.tolist(), self.hi.tolist()]

    def calibrate(self, vectors: np.ndarray) -> None:
        if self.precision == "int8" and self.lo is None and len(vectors):
            self.lo, self.hi = calibrate_int8(vectors)

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if self.precision == "float32":
            return vectors
        if self.precision == "float16":
            return vectors.astype(np.float16)
        if self.precision == "int8":
            if self.lo is None:
                raise ValueError("int8 codec used before calibration")
            return quantize_int8(vectors, self.lo, self.hi)
        return pack_binary(vectors)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        if self.precision in ("float32", "float16"):
            return np.asarray(stored, dtype=np.float32)
        if self.precision == "int8":
            return dequantize_int8(np.asarray(stored), self.lo, self.hi)
        return unpack_binary(np.asarray(stored, dtype=np.uint8), self.dim)
