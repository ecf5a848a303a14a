"""ECO's compact generative sample space (Danelljan et al., CVPR 2017, section 3.2).

The training samples are modelled by a Gaussian mixture with at most ``L`` components
(means ``mu_l``, prior weights ``pi_l``). Each new sample ``x`` becomes a component of weight
``gamma`` (the learning rate) while the others are scaled by ``1 - gamma``. When more than ``L``
components would exist: a component whose weight is below ``gamma (1 - gamma)^(2L)`` is replaced
("lowest prior"); otherwise the two closest components ``k, l`` are merged,
``pi_n = pi_k + pi_l``, ``mu_n = (pi_k mu_k + pi_l mu_l) / (pi_k + pi_l)``, where the new sample
takes part as a candidate of the closest pair. Distances are Euclidean (Parseval: computed on
the Fourier coefficients). Weights always sum to 1.
"""

from __future__ import annotations

import torch

from deepvideo.track.eco.fourier import inner, inner_rows


class SampleSpace:
    """At most ``capacity`` components; each sample is a list of half-plane Fourier tensors
    (one per feature block, shapes fixed by the first sample)."""

    def __init__(self, capacity: int, learning_rate: float):
        if capacity < 2:
            raise ValueError(f"sample space: capacity must be at least 2, got {capacity}")
        if not 0 < learning_rate < 1:
            raise ValueError(f"sample space: learning rate must be in (0, 1), got {learning_rate}")
        self.capacity = capacity
        self.learning_rate = learning_rate
        self.min_weight = learning_rate * (1 - learning_rate) ** (2 * capacity)
        self.samples: list[torch.Tensor] | None = None        # per block [L, C, H, W]
        self.weights = torch.zeros(capacity, dtype=torch.float64)
        self.gram = torch.zeros(capacity, capacity, dtype=torch.float64)
        self.count = 0

    def _store(self, slot: int, sample: list[torch.Tensor]) -> None:
        if self.samples is None:
            self.samples = [torch.zeros((self.capacity,) + tuple(block.shape), dtype=block.dtype)
                            for block in sample]
        for stored, block in zip(self.samples, sample, strict=True):
            stored[slot] = block
        row = sum(inner_rows(stored, stored[slot]) for stored in self.samples)
        self.gram[slot, :] = row
        self.gram[:, slot] = row

    def _distances_to(self, sample: list[torch.Tensor]) -> torch.Tensor:
        """Squared distances from ``sample`` to the stored components."""
        cross = sum(inner_rows(stored[:self.count], block)
                    for stored, block in zip(self.samples, sample, strict=True))
        own = sum(inner(block, block) for block in sample)
        return self.gram.diagonal()[:self.count] + own - 2 * cross

    def update(self, sample: list[torch.Tensor]) -> int:
        """Add ``sample`` by the section 3.2 rules; returns the index of the component it went
        into (a new, replaced or merged one)."""
        gamma = self.learning_rate
        if self.count == 0:
            self._store(0, sample)
            self.weights[0] = 1.0
            self.count = 1
            return 0
        self.weights[:self.count] *= 1 - gamma
        if self.count < self.capacity:
            slot = self.count
            self.count += 1
            self._store(slot, sample)
            self.weights[slot] = gamma
        else:
            slot = self._make_room(sample)
        self.weights /= self.weights.sum()
        return slot

    def _make_room(self, sample: list[torch.Tensor]) -> int:
        gamma = self.learning_rate
        lowest = int(torch.argmin(self.weights))
        if self.weights[lowest] < self.min_weight:
            self._store(lowest, sample)
            self.weights[lowest] = gamma
            return lowest
        to_new = self._distances_to(sample)
        closest = int(torch.argmin(to_new))
        pair = self.gram.diagonal()[:, None] + self.gram.diagonal()[None, :] - 2 * self.gram
        pair = pair + torch.diag(torch.full((self.capacity,), float("inf"), dtype=pair.dtype))
        k, l = divmod(int(torch.argmin(pair)), self.capacity)
        if to_new[closest] < pair[k, l]:
            self._merge_into(closest, sample, gamma)
            return closest
        self._merge_into(k, [s[l] for s in self.samples], float(self.weights[l]))
        self._store(l, sample)
        self.weights[l] = gamma
        return l

    def _merge_into(self, slot: int, sample: list[torch.Tensor], weight: float) -> None:
        own = float(self.weights[slot])
        total = own + weight
        merged = [(own * stored[slot] + weight * block) / total
                  for stored, block in zip(self.samples, sample, strict=True)]
        self._store(slot, merged)
        self.weights[slot] = total

    def active(self) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The stored component means (per block ``[count, ...]``) and their weights."""
        if self.samples is None:
            raise RuntimeError("sample space: no sample added yet")
        return [s[:self.count] for s in self.samples], self.weights[:self.count]
