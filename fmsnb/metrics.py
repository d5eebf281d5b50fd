"""The five text-to-motion metrics of Guo et al. (2022), computed on evaluator embeddings.

Every number of the paper's Table 1 comes from these functions applied to the T2M evaluator's
512-d text and motion embeddings: R-precision top-1/2/3 and the multimodal distance within
batches of 32 (text, motion) pairs, FID between Gaussians fitted to real and generated motion
embeddings, diversity over 300 random pairs, and multimodality over 10 pairs of generations per
caption. Each is repeated over replications and reported as mean +- 1.96 * std / sqrt(n).
A set too small for the published protocol raises an error unless the caller explicitly asks
for a smaller protocol, which then shows in the result.
"""
from __future__ import annotations

import numpy as np

R_PRECISION_BATCH = 32
DIVERSITY_PAIRS = 300
MULTIMODALITY_PAIRS = 10


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (N, M) between rows of a (N, D) and b (M, D)."""
    sq = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def r_precision(text: np.ndarray, motion: np.ndarray, top_k: int = 3,
                batch: int = R_PRECISION_BATCH) -> tuple[np.ndarray, float]:
    """R-precision at 1..top_k (top_k,) and the multimodal distance of matching pairs (N, D).

    Pairs are taken in consecutive batches of `batch` (an incomplete last batch is left out, as
    the reference evaluation loader drops it); within a batch every text ranks all motions by
    distance, and a hit at k means its own motion is among the k nearest.
    """
    n = (len(text) // batch) * batch
    if n == 0:
        raise ValueError(f"R-precision needs at least {batch} (text, motion) pairs, got {len(text)}")
    hits = np.zeros(top_k)
    matching = 0.0
    for start in range(0, n, batch):
        d = pairwise_distances(text[start:start + batch], motion[start:start + batch])
        # rank of each text's own motion among the batch's motions (0 = nearest)
        rank = (d < np.diag(d)[:, None]).sum(1)
        hits += [(rank < k).sum() for k in range(1, top_k + 1)]
        matching += np.trace(d)
    return hits / n, matching / n


def retrieval(text: np.ndarray, motion: np.ndarray) -> dict[str, float]:
    """Table 1's retrieval columns of matching pairs (N, D): {"R@1", "R@2", "R@3", "MM-Dist"}."""
    top, matching = r_precision(text, motion)
    return {**{f"R@{k + 1}": float(top[k]) for k in range(3)}, "MM-Dist": float(matching)}


def fid(real: np.ndarray, generated: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two embedding sets (N, D) and (M, D)."""
    from scipy import linalg    # here, not at the top: config reads the protocol's sizes above
    mu1, mu2 = real.mean(0), generated.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(generated, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():   # near-singular product: regularise as is customary
        eps = 1e-6 * np.eye(len(s1))
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def diversity(motion: np.ndarray, rng: np.random.Generator, pairs: int = DIVERSITY_PAIRS,
              allow_fewer: bool = False) -> float:
    """Mean distance between `pairs` random pairs of motion embeddings (N, D)."""
    if len(motion) < pairs:
        if not allow_fewer:
            raise ValueError(f"diversity needs at least {pairs} motions, got {len(motion)}; "
                             "enable the smaller protocol in the profile to use fewer pairs")
        pairs = len(motion)
    first = rng.choice(len(motion), pairs, replace=False)
    second = rng.choice(len(motion), pairs, replace=False)
    return float(np.linalg.norm(motion[first] - motion[second], axis=1).mean())


def multimodality(motion: np.ndarray, rng: np.random.Generator,
                  pairs: int = MULTIMODALITY_PAIRS) -> float:
    """Mean distance between `pairs` random pairs of generations per caption.

    motion (n_captions, n_generations, D): all generations of one caption in one row.
    """
    if motion.shape[1] < pairs:
        raise ValueError(f"multimodality needs at least {pairs} generations per caption, "
                         f"got {motion.shape[1]}")
    first = np.stack([rng.choice(motion.shape[1], pairs, replace=False) for _ in motion])
    second = np.stack([rng.choice(motion.shape[1], pairs, replace=False) for _ in motion])
    rows = np.arange(len(motion))[:, None]
    return float(np.linalg.norm(motion[rows, first] - motion[rows, second], axis=-1).mean())


def confidence_interval(values) -> tuple[float, float]:
    """Mean and 95% half-width 1.96 * std / sqrt(n) over replications."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(1.96 * values.std() / np.sqrt(len(values)))
