"""Two-dimensional projections of embedding vectors: t-SNE, PCA, UMAP.

Cosine geometry throughout: rows are scaled to unit length first, so the
Euclidean distance every method uses is a function of the cosine,
``|u - v|^2 = 2 - 2 cos(u, v)``, and a word's frequency-driven norm does not
place it.

t-SNE runs in scikit-learn for small sets and in openTSNE (FFT-accelerated
gradients, Linderman et al. 2019) from ``large_from`` points on: one thread,
1,000 random 64-dim points, scikit-learn took 4.5 s and openTSNE 2.7 s. For
30,000 x 256 on 2 shared cores openTSNE took 48 s with one thread and
scikit-learn 234 s with two; threads did not pay there, so ``n_jobs`` is 1
unless asked (``bench/plot.py`` measures it).

Perplexity is an effective number of neighbours: it must stay well below the
number of points. ``effective_perplexity`` caps it at (n - 1) / 3 (openTSNE's
own limit; scikit-learn only needs perplexity < n), so the design document's
22-token vocabulary gets 7 rather than failing.

UMAP (``umap-learn``) is an optional extra: installing it pulls in numba, whose
compilation costs about 30 s per process.
"""

from __future__ import annotations

import numpy as np

from seqembed.errors import InputError

METHODS = ("tsne", "pca", "umap")
UMAP_HINT = "UMAP needs the optional extra: pip install 'seqembed[umap]'"


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, float64 (a zero row stays zero)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def effective_perplexity(perplexity: float, n_points: int) -> float:
    """``perplexity`` capped at (n_points - 1) / 3, and at least 1."""
    return float(max(1.0, min(perplexity, (n_points - 1) / 3)))


class Projection:
    """Vectors -> 2-D points, estimator style.

    ``fit(vectors)`` sets ``embedding_`` (n, 2), ``method_`` (which
    implementation ran, e.g. "t-SNE (openTSNE)") and ``perplexity_`` (the one
    used; None for PCA and UMAP). ``fit_transform`` returns ``embedding_``.

    ``max_iter``: t-SNE iterations in all, early exaggeration included
    (None: each library's default, 1000 for scikit-learn, 250 + 500 for
    openTSNE). ``n_neighbors`` is UMAP's, capped at n - 1.
    """

    def __init__(
        self,
        method: str = "tsne",
        perplexity: float = 30.0,
        random_state: int = 0,
        n_jobs: int = 1,
        max_iter: int | None = None,
        large_from: int = 1000,
        n_neighbors: int = 15,
    ):
        self.method = method
        self.perplexity = perplexity
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.max_iter = max_iter
        self.large_from = large_from
        self.n_neighbors = n_neighbors

    def fit(self, vectors: np.ndarray) -> Projection:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {self.method!r}")
        unit = unit_rows(vectors)
        if unit.ndim != 2 or len(unit) < 2:
            raise ValueError("a projection needs at least two vectors")
        from threadpoolctl import threadpool_limits

        self.perplexity_ = None
        # BLAS and OpenMP pools too: on shared cores extra threads only wait.
        with threadpool_limits(self.n_jobs):
            if self.method == "pca":
                points = self._pca(unit)
            elif self.method == "umap":
                points = self._umap(unit)
            elif len(unit) >= self.large_from:
                points = self._opentsne(unit)
            else:
                points = self._sklearn_tsne(unit)
        self.embedding_ = np.asarray(points, dtype=np.float64)
        return self

    def fit_transform(self, vectors: np.ndarray) -> np.ndarray:
        return self.fit(vectors).embedding_

    # ------------------------------------------------------------ methods

    def _pca(self, unit: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA

        self.method_ = "PCA"
        n_components = min(2, unit.shape[1], len(unit))
        points = PCA(n_components, svd_solver="full").fit_transform(unit)
        if n_components < 2:  # one-dimensional input: put the points on a line
            points = np.hstack([points, np.zeros((len(points), 1))])
        return points

    def _sklearn_tsne(self, unit: np.ndarray) -> np.ndarray:
        from sklearn.manifold import TSNE

        self.method_ = "t-SNE (scikit-learn)"
        self.perplexity_ = effective_perplexity(self.perplexity, len(unit))
        return TSNE(
            perplexity=self.perplexity_,
            max_iter=self.max_iter or 1000,
            init="pca",
            learning_rate="auto",
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        ).fit_transform(unit)

    def _opentsne(self, unit: np.ndarray) -> np.ndarray:
        from openTSNE import TSNE

        self.method_ = "t-SNE (openTSNE)"
        self.perplexity_ = effective_perplexity(self.perplexity, len(unit))
        settings = {}
        if self.max_iter is not None:
            settings["early_exaggeration_iter"] = min(250, self.max_iter)
            settings["n_iter"] = max(self.max_iter - 250, 0)
        embedding = TSNE(
            perplexity=self.perplexity_,
            initialization="pca",
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            **settings,
        ).fit(unit.astype(np.float32))
        return np.asarray(embedding)

    def _umap(self, unit: np.ndarray) -> np.ndarray:
        try:
            import umap
        except ImportError:
            raise InputError(UMAP_HINT) from None

        self.method_ = "UMAP"
        return umap.UMAP(
            n_neighbors=max(2, min(self.n_neighbors, len(unit) - 1)),
            random_state=self.random_state,
            n_jobs=1,  # a random_state makes umap-learn run one thread anyway
            init="spectral" if len(unit) > 10 else "random",
        ).fit_transform(unit)


def describe(projection: Projection) -> str:
    """ "t-SNE (scikit-learn), perplexity 7" and the like, for captions."""
    text = projection.method_
    if projection.perplexity_ is not None:
        text += f", perplexity {projection.perplexity_:.3g}"
    return text
