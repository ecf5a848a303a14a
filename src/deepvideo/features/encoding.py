"""Encodings of local descriptors: PCA, diagonal GMM, Fisher vectors, bag of words; linear SVM.

Wang & Schmid 2013 (improved trajectories): each descriptor type is reduced by PCA to half its
dimensions, a GMM with K = 256 diagonal components is fitted to a random sample of
descriptors, and a video is the Fisher vector (Perronnin, Sánchez & Mensink 2010) of its
descriptors — gradients with respect to the means and the variances, 2·K·D values —
power-normalised (α = 0.5) and L2-normalised per descriptor type, then the types are
concatenated and classified by one-vs-rest linear SVMs with C = 100. Bag of words (Wang et al.
2011: k-means with 4,000 words, one histogram per type) is the older baseline.

The encoder is stored as plain arrays in an npz file (no pickles).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

GMM_COMPONENTS = 256
BOW_WORDS = 4000
POWER_ALPHA = 0.5
SVM_C = 100.0


def fisher_vector(x: np.ndarray, weights: np.ndarray, means: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """Unnormalised Fisher vector ``[2·K·D]`` (mean gradients, then variance gradients) of
    descriptors ``x [N, D]`` under a diagonal GMM; zeros for N = 0."""
    k, d = means.shape
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"descriptors must be [N, {d}], got {x.shape}")
    if len(x) == 0:
        return np.zeros(2 * k * d, np.float32)
    x = x.astype(np.float64)
    sigma = np.sqrt(variances)
    z = (x[:, None, :] - means[None]) / sigma[None]                       # [N, K, D]
    log_p = (-0.5 * (z ** 2).sum(-1) - np.log(sigma).sum(-1)[None] - 0.5 * d * np.log(2 * np.pi)
             + np.log(weights)[None])
    log_p -= log_p.max(axis=1, keepdims=True)
    gamma = np.exp(log_p)
    gamma /= gamma.sum(axis=1, keepdims=True)                           # posteriors [N, K]
    n = len(x)
    g_mu = np.einsum("nk,nkd->kd", gamma, z) / (n * np.sqrt(weights)[:, None])
    g_sigma = np.einsum("nk,nkd->kd", gamma, z ** 2 - 1) / (n * np.sqrt(2 * weights)[:, None])
    return np.concatenate([g_mu.ravel(), g_sigma.ravel()]).astype(np.float32)


def power_l2(v: np.ndarray, alpha: float = POWER_ALPHA) -> np.ndarray:
    """sign(v)·|v|^α, then divided by its L2 norm (left at zero when all zero)."""
    v = np.sign(v) * np.abs(v) ** alpha
    norm = np.linalg.norm(v)
    return v / norm if norm > 0 else v


@dataclass
class TypeModel:
    """PCA and GMM (or codebook) of one descriptor type."""

    mean: np.ndarray
    components: np.ndarray          # [D', D]
    scale: np.ndarray               # [D'] 1 or 1/sqrt(eigenvalue) with whitening
    weights: np.ndarray             # [K] (ones for bag of words)
    means: np.ndarray               # [K, D'] GMM means or codewords
    variances: np.ndarray           # [K, D']

    def project(self, x: np.ndarray) -> np.ndarray:
        return ((x.astype(np.float64) - self.mean) @ self.components.T) * self.scale


@dataclass
class Encoder:
    """Per-type PCA + GMM (``kind="fisher"``) or k-means codebook (``kind="bow"``)."""

    kind: str
    types: dict[str, TypeModel] = field(default_factory=dict)

    def encode(self, descriptors: dict[str, np.ndarray]) -> np.ndarray:
        """The video's vector: per type FV (power + L2) or L1 word histogram, concatenated."""
        parts = []
        for name, m in self.types.items():
            if name not in descriptors:
                raise KeyError(f"descriptor type {name!r} missing; have {sorted(descriptors)}")
            x = m.project(descriptors[name])
            if self.kind == "fisher":
                parts.append(power_l2(fisher_vector(x, m.weights, m.means, m.variances)))
            else:
                parts.append(bow_histogram(x, m.means))
        return np.concatenate(parts).astype(np.float32)

    def save(self, path: str | os.PathLike) -> None:
        import io

        from deepvideo.io.atomic import atomic_write_bytes

        arrays = {"kind": np.array(self.kind), "types": np.array(list(self.types))}
        for name, m in self.types.items():
            arrays.update({f"{name}/{k}": v for k, v in vars(m).items()})
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Encoder:
        with np.load(path, allow_pickle=False) as z:
            if "kind" not in z or "types" not in z:
                raise ValueError(f"{path}: not a deepvideo features encoder (no 'kind'/'types')")
            names = [str(t) for t in z["types"]]
            fields = TypeModel.__dataclass_fields__
            return cls(str(z["kind"]), {n: TypeModel(**{f: z[f"{n}/{f}"] for f in fields}) for n in names})


def bow_histogram(x: np.ndarray, words: np.ndarray) -> np.ndarray:
    """L1-normalised histogram of nearest codewords (zeros for no descriptors)."""
    hist = np.zeros(len(words), np.float64)
    if len(x):
        d2 = (x ** 2).sum(1)[:, None] - 2 * x @ words.T + (words ** 2).sum(1)[None]
        np.add.at(hist, d2.argmin(axis=1), 1.0)
        hist /= hist.sum()
    return hist


def fit_type(x: np.ndarray, kind: str = "fisher", components: int = GMM_COMPONENTS, pca_ratio: float = 0.5,
             whiten: bool = False, seed: int = 0) -> TypeModel:
    """PCA to ``pca_ratio``·D dimensions, then a diagonal GMM or k-means codebook."""
    from sklearn.decomposition import PCA

    if len(x) < components:
        raise ValueError(f"{len(x)} descriptors cannot fit {components} components; sample more or lower K")
    dims = max(1, round(x.shape[1] * pca_ratio))
    pca = PCA(dims, random_state=seed).fit(x.astype(np.float64))
    scale = 1 / np.sqrt(np.maximum(pca.explained_variance_, 1e-12)) if whiten else np.ones(dims)
    model = TypeModel(pca.mean_, pca.components_, scale, np.ones(components), np.zeros((components, dims)),
                      np.ones((components, dims)))
    y = model.project(x)
    if kind == "fisher":
        from sklearn.mixture import GaussianMixture

        gmm = GaussianMixture(components, covariance_type="diag", reg_covar=1e-6, max_iter=100,
                              random_state=seed).fit(y)
        model.weights, model.means, model.variances = gmm.weights_, gmm.means_, gmm.covariances_
    elif kind == "bow":
        from sklearn.cluster import MiniBatchKMeans

        model.means = MiniBatchKMeans(components, random_state=seed, n_init=1).fit(y).cluster_centers_
    else:
        raise ValueError(f"unknown encoding {kind!r}; choose fisher or bow")
    return model


def fit_encoder(samples: dict[str, np.ndarray], kind: str = "fisher", components: int | None = None,
                pca_ratio: float = 0.5, whiten: bool = False, seed: int = 0) -> Encoder:
    """An :class:`Encoder` fitted on sampled descriptors of each type."""
    k = components or (GMM_COMPONENTS if kind == "fisher" else BOW_WORDS)
    return Encoder(kind, {name: fit_type(x, kind, k, pca_ratio, whiten, seed) for name, x in samples.items()})


def train_svm(x: np.ndarray, y: np.ndarray, c: float = SVM_C, seed: int = 0):
    """One-vs-rest linear SVMs (scikit-learn ``LinearSVC``, C = 100 by default)."""
    from sklearn.svm import LinearSVC

    return LinearSVC(C=c, random_state=seed, max_iter=10000).fit(x, y)
