"""Fréchet distance between two Gaussians fitted to feature sets (FID / FVD and their probe variants).

    d² = |μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^{1/2}

The trace of the matrix square root is computed without scipy and without a
non-symmetric sqrtm: with S = Σ₁^{1/2} (symmetric eigen-decomposition),
Σ₁ Σ₂ is similar to S Σ₂ S, which is symmetric positive semi-definite, so
tr (Σ₁ Σ₂)^{1/2} = Σᵢ sqrt(λᵢ(S Σ₂ S)). Everything runs in float64 and tiny negative
eigenvalues from round-off are clamped to zero, so rank-deficient covariances
(fewer samples than feature dimensions) are handled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class GaussianStats:
    """Mean (d,) and covariance (d, d) in float64 of `count` feature vectors."""

    mean: np.ndarray
    cov: np.ndarray
    count: int


def _as_features(name: str, features: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().double().numpy()
    if not isinstance(features, np.ndarray):
        raise ValueError(f"{name} must be a numpy array or torch tensor, got {type(features).__name__}")
    if features.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), got shape {tuple(features.shape)}")
    if features.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 feature vectors to fit a Gaussian, got {features.shape[0]}")
    if not np.issubdtype(features.dtype, np.floating):
        raise ValueError(f"{name} must be floating point, got dtype {features.dtype}")
    features = features.astype(np.float64)
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{name} contains NaN or inf")
    return features


def gaussian_stats(features: np.ndarray | torch.Tensor, name: str = "features") -> GaussianStats:
    """Fit mean and (unbiased) covariance to (n, d) features."""
    x = _as_features(name, features)
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / (x.shape[0] - 1)  # (d, d)
    return GaussianStats(mean=mean, cov=cov, count=int(x.shape[0]))


def _sym_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix via eigh (negative round-off clamped)."""
    sym = 0.5 * (matrix + matrix.T)
    vals, vecs = np.linalg.eigh(sym)
    root = np.sqrt(np.clip(vals, 0.0, None))
    return (vecs * root) @ vecs.T


def trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """tr (Σa Σb)^{1/2} for symmetric PSD Σa, Σb."""
    root_a = _sym_sqrt(cov_a)
    inner = root_a @ cov_b @ root_a
    vals = np.linalg.eigvalsh(0.5 * (inner + inner.T))
    return float(np.sqrt(np.clip(vals, 0.0, None)).sum())


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(a.mean, a.cov) and N(b.mean, b.cov)."""
    if a.mean.shape != b.mean.shape:
        raise ValueError(
            f"feature dimensions differ: {a.mean.shape[0]} vs {b.mean.shape[0]}; "
            "both sets must come from the same feature extractor"
        )
    diff = a.mean - b.mean
    value = float(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2.0 * trace_sqrt_product(a.cov, b.cov))
    return max(value, 0.0)


def frechet_from_features(features_a: np.ndarray | torch.Tensor, features_b: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two (n, d) feature sets."""
    return frechet_distance(gaussian_stats(features_a, "features_a"), gaussian_stats(features_b, "features_b"))
