"""Hard-negative mining for training pairs: BM25 or the base model's own ranking, with a false-negative guard.

For each pair, the corpus is every distinct positive in the training set. Candidates are ranked by
BM25 (the ``bm25s`` package when installed, else a built-in BM25 over codeseer's lexical text, the
same identifier splitting the search index uses) or by the base model's cosine (dense). A candidate
is dropped when

* its normalised text (whitespace collapsed) equals the positive's, or it is the positive of another
  pair with the same query: duplicates are not negatives;
* it scores at least ``margin`` times the positive's own score (NV-Retriever's "TopK-PercPos", arXiv
  2407.15831): something the ranker likes as much as the true answer is probably another right answer.

The top ``n`` survivors become the pair's ``negatives`` (hardest first). When the positive itself
scores <= 0 (BM25 with no shared term) the relative guard cannot apply and only the duplicate rules do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np

from codeseer.errors import CodeseerError
from codeseer.text.lexical import lexical_text

SOURCES = ("bm25", "model")
DEFAULT_MARGIN = 0.95
_WORD = re.compile(r"[A-Za-z0-9]+")

__all__ = ["BM25", "DEFAULT_MARGIN", "SOURCES", "mine_hard_negatives", "normalise"]


def normalise(text: str) -> str:
    """Text compared for identity: whitespace runs collapsed, ends stripped."""
    return " ".join(text.split())


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased words of codeseer's lexical text (identifiers also split at camelCase and ``_``)."""
    text = lexical_text(text).replace("_", " ")
    return [w.lower() for w in _WORD.findall(text)]


class BM25:
    """Okapi BM25 (Lucene's idf ``log(1 + (N - df + 0.5) / (df + 0.5))``), scored with a sparse matrix.

    ``scores(queries)`` gives a dense ``(len(queries), len(corpus))`` array. Uses ``bm25s`` when it is
    installed and ``backend`` is ``auto``; ``backend="builtin"`` forces the scipy implementation.
    """

    def __init__(self, corpus: Sequence[str], *, k1: float = 1.2, b: float = 0.75, backend: str = "auto") -> None:
        self.k1, self.b = k1, b
        self.n = len(corpus)
        self.backend = "builtin"
        if backend == "auto":
            try:
                import bm25s  # noqa: F401

                self.backend = "bm25s"
            except ImportError:
                pass
        docs = [bm25_tokens(t) for t in corpus]
        if self.backend == "bm25s":
            import bm25s

            self._bm25s = bm25s.BM25(k1=k1, b=b, method="lucene")
            self._bm25s.index(docs, show_progress=False)
            return
        from scipy.sparse import csr_matrix

        self.vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for i, doc in enumerate(docs):
            counts: dict[int, int] = {}
            for w in doc:
                j = self.vocab.setdefault(w, len(self.vocab))
                counts[j] = counts.get(j, 0) + 1
            rows.extend([i] * len(counts))
            cols.extend(counts)
            vals.extend(counts.values())
        tf = csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(self.n, len(self.vocab)))
        lengths = np.asarray([len(d) for d in docs], dtype=np.float32)
        avg = float(lengths.mean()) if self.n and lengths.sum() else 1.0
        df = np.bincount(tf.indices, minlength=len(self.vocab)).astype(np.float32)
        idf = np.log1p((self.n - df + 0.5) / (df + 0.5))
        tf = tf.tocoo()
        norm = k1 * (1 - b + b * lengths[tf.row] / avg)
        weights = idf[tf.col] * tf.data * (k1 + 1) / (tf.data + norm)
        self.matrix = csr_matrix((weights.astype(np.float32), (tf.row, tf.col)), shape=tf.shape).T.tocsr()  # (V, N)

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        if self.backend == "bm25s":
            out = np.zeros((len(queries), self.n), dtype=np.float32)
            for i, q in enumerate(queries):
                tokens = bm25_tokens(q)
                if tokens:
                    out[i] = self._bm25s.get_scores(tokens)
            return out
        from scipy.sparse import csr_matrix

        rows, cols = [], []
        for i, q in enumerate(queries):
            ids = {self.vocab[w] for w in bm25_tokens(q) if w in self.vocab}  # each query term once
            rows.extend([i] * len(ids))
            cols.extend(ids)
        qm = csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(queries), len(self.vocab)))
        return np.asarray((qm @ self.matrix).todense(), dtype=np.float32)


def _dense_scorer(model, corpus: Sequence[str], *, query_prefixes: Sequence[str] | None,
                  document_prefix: Callable[[int], str] | None, batch_size: int) -> Callable[[Sequence[int], Sequence[str]], np.ndarray]:
    docs = [(document_prefix(i) if document_prefix else "") + t for i, t in enumerate(corpus)]
    doc_vecs = np.asarray(model.encode(docs, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                                       show_progress_bar=False), dtype=np.float32)

    def score(rows: Sequence[int], queries: Sequence[str]) -> np.ndarray:
        texts = [(query_prefixes[r] if query_prefixes else "") + q for r, q in zip(rows, queries)]
        qv = np.asarray(model.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                                     show_progress_bar=False), dtype=np.float32)
        return qv @ doc_vecs.T

    return score


def mine_hard_negatives(pairs: list[dict], n: int, *, source: str = "bm25", margin: float = DEFAULT_MARGIN,
                        model=None, corpus: Sequence[str] | None = None, query_prefixes: Sequence[str] | None = None,
                        doc_prefixes: dict[str, str] | None = None, batch_size: int = 64, block: int = 256,
                        progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Return copies of ``pairs`` with up to ``n`` mined ``negatives`` each (hardest first).

    ``source`` is ``bm25`` or ``model`` (dense: ``model`` is a SentenceTransformer; ``query_prefixes``
    gives each pair's query prefix and ``doc_prefixes`` a document prefix per task). ``corpus``
    defaults to the distinct positives. Negatives a pair already has are kept first and count
    towards ``n``. ``margin`` in (0, 1]: drop candidates scoring >= margin x the positive's score
    (1.0 keeps everything ranked strictly below the positive; 0.95, the default, also what comes within 5%).
    """
    if n < 1:
        return [dict(p) for p in pairs]
    if source not in SOURCES:
        raise CodeseerError(f"unknown negatives source {source!r}: choose bm25 or model")
    if not 0 < margin <= 1:
        raise CodeseerError(f"--margin must be in (0, 1], not {margin}")
    docs: list[str] = []
    doc_index: dict[str, int] = {}  # normalised text -> corpus row
    for text in list(corpus or ()) + [p["positive"] for p in pairs]:
        key = normalise(text)
        if key not in doc_index:
            doc_index[key] = len(docs)
            docs.append(text)
    positives_of: dict[str, set[int]] = {}  # normalised query -> rows of all its positives
    for p in pairs:
        positives_of.setdefault(normalise(p["query"]), set()).add(doc_index[normalise(p["positive"])])

    if source == "bm25":
        bm25 = BM25(docs)
        scorer = lambda rows, queries: bm25.scores(queries)  # noqa: E731
    else:
        if model is None:
            raise CodeseerError("--negatives-from model needs the base model")
        doc_task = {}
        for p in pairs:
            doc_task.setdefault(doc_index[normalise(p["positive"])], p.get("task"))
        prefix = None
        if doc_prefixes:
            prefix = lambda i: doc_prefixes.get(doc_task.get(i) or "", "")  # noqa: E731
        scorer = _dense_scorer(model, docs, query_prefixes=query_prefixes, document_prefix=prefix, batch_size=batch_size)

    out: list[dict] = []
    want = min(n, max(0, len(docs) - 1))
    for start in range(0, len(pairs), block):
        chunk = pairs[start: start + block]
        scores = scorer(list(range(start, start + len(chunk))), [p["query"] for p in chunk])
        for row, pair in enumerate(chunk):
            s = scores[row]
            pos_row = doc_index[normalise(pair["positive"])]
            pos_key = normalise(pair["positive"])
            banned = positives_of.get(normalise(pair["query"]), set()) | {pos_row}
            limit = margin * float(s[pos_row]) if s[pos_row] > 0 else math.inf
            kept = [x for x in pair.get("negatives") or [] if normalise(x) != pos_key][:n]
            seen = {normalise(x) for x in kept}
            take = min(len(docs), want + len(banned) + len(kept) + 16)
            done = 0  # candidates already examined, best first
            while len(kept) < n and done < len(docs):
                top = np.argpartition(-s, take - 1)[:take] if take < len(docs) else np.arange(len(docs))
                ranked = top[np.argsort(-s[top], kind="stable")]
                for j in ranked[done:]:
                    if len(kept) >= n:
                        break
                    j = int(j)
                    if j in banned or s[j] >= limit:
                        continue
                    key = normalise(docs[j])
                    if key == pos_key or key in seen:
                        continue
                    kept.append(docs[j])
                    seen.add(key)
                done = len(ranked)
                take = min(len(docs), take * 4)
            mined = dict(pair)
            mined["negatives"] = kept
            out.append(mined)
        if progress is not None:
            progress(min(start + block, len(pairs)), len(pairs))
    return out
