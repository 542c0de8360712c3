"""Batches of one repository at a time (``codeseer train --batches repository``).

With InfoNCE every other positive of a batch is a negative. In a batch drawn from 200 repositories
those negatives are easy: another language, other names. What repository localisation confuses is
the *same* repository's other functions, which share its vocabulary. Drawing each batch from one
repository turns the in-batch negatives into exactly those (SweRank's same-repository negatives,
without mining them). Rows with no repository (``data mine`` pairs, the general mix) fill batches
of their own. As in sentence-transformers' no-duplicates sampler, no text appears twice in a batch:
a commit that touched three functions gives three rows with one query, and each must not be the
other's negative.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler

__all__ = ["RepositoryBatchSampler"]


class RepositoryBatchSampler(DefaultBatchSampler):
    """Each batch holds rows of one repository (``groups[i]`` is row i's, None: no repository; see
    :func:`codeseer.train.data.repository_of`), no
    text twice; rows left over when a repository cannot fill another batch join the ungrouped ones.
    Batch order and the rows inside each group are shuffled anew each epoch (seeded: same order on
    ``--resume``)."""

    def __init__(self, dataset, batch_size: int, drop_last: bool, valid_label_columns=None, generator=None,
                 seed: int = 0, *, groups: Sequence[str | None]) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        if len(groups) != len(dataset):
            raise ValueError(f"{len(groups)} groups for {len(dataset)} rows")
        text_columns = [c for c in dataset.column_names if c not in (valid_label_columns or []) and c != "label"]
        columns = [list(dataset[c]) for c in text_columns]
        self.texts = [frozenset(hash(col[i]) for col in columns) for i in range(len(dataset))]
        self.groups = list(groups)
        self._cache: tuple[int, list[list[int]]] | None = None

    def _fill(self, rows: list[int], partial: bool) -> tuple[list[list[int]], list[int]]:
        """Greedy batches without a repeated text; rows that cannot make a full batch come back
        (or, with ``partial``, end up in smaller last batches)."""
        batches, remaining = [], rows
        while remaining:
            batch, seen, skipped = [], set(), []
            for i in remaining:
                if len(batch) < self.batch_size and seen.isdisjoint(self.texts[i]):
                    batch.append(i)
                    seen.update(self.texts[i])
                else:
                    skipped.append(i)
            if len(batch) < self.batch_size and not partial:
                return batches, batch + skipped
            batches.append(batch)
            remaining = skipped
        return batches, []

    def batches(self) -> list[list[int]]:
        """This epoch's batches (computed once per epoch)."""
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        by_group: dict[str, list[int]] = defaultdict(list)
        loose: list[int] = []
        for i, group in enumerate(self.groups):
            (loose if group is None else by_group[group]).append(i)
        batches: list[list[int]] = []
        for group in sorted(by_group):
            full, rest = self._fill([int(i) for i in rng.permutation(by_group[group])], partial=False)
            batches += full
            loose += rest
        batches += self._fill([int(i) for i in rng.permutation(loose)], partial=not self.drop_last)[0]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        self._cache = (self.epoch, batches)
        return batches

    def __iter__(self):
        yield from self.batches()

    def __len__(self) -> int:
        return len(self.batches())
