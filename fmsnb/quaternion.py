"""Quaternion helpers in numpy, w first, broadcasting over any leading axes.

The HumanML3D representation is defined through quaternion inverse and forward kinematics, and
its recovery through rotations about Y; these few functions are all the rotation algebra the
package needs. Quaternions are (..., 4) arrays `(w, x, y, z)`; vectors are (..., 3).
"""
from __future__ import annotations

import numpy as np


def qmul(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product q * r, (..., 4)."""
    w1, x1, y1, z1 = np.moveaxis(q, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(r, -1, 0)
    return np.stack([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ], axis=-1)


def qinv(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion (its conjugate)."""
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    qvec = q[..., 1:]
    uv = np.cross(qvec, v)
    uuv = np.cross(qvec, uv)
    return v + 2.0 * (q[..., :1] * uv + uuv)


def qbetween(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """The shortest-arc unit quaternion rotating direction v0 onto v1, (..., 4)."""
    axis = np.cross(v0, v1)
    w = np.sqrt((v0 ** 2).sum(-1) * (v1 ** 2).sum(-1)) + (v0 * v1).sum(-1)
    q = np.concatenate([w[..., None], axis], axis=-1)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def qyaw(angle: np.ndarray) -> np.ndarray:
    """Rotation about +Y by `angle` radians, (..., 4)."""
    zero = np.zeros_like(angle)
    return np.stack([np.cos(angle / 2), zero, np.sin(angle / 2), zero], axis=-1)


def to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of quaternions (..., 4)."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    s = 2.0 / (q * q).sum(-1)
    return np.stack([
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
    ], axis=-1).reshape(q.shape[:-1] + (3, 3))


def from_matrix(m: np.ndarray) -> np.ndarray:
    """The unit quaternion (4,) of one rotation matrix (3, 3); the inverse of `to_matrix` up to
    the sign of q."""
    w = np.sqrt(max(1.0 + np.trace(m), 1e-12)) / 2
    if w > 0.1:
        return np.array([w, (m[2, 1] - m[1, 2]) / (4 * w), (m[0, 2] - m[2, 0]) / (4 * w),
                         (m[1, 0] - m[0, 1]) / (4 * w)])
    i = int(np.argmax(np.diag(m)))       # a half-turn: build from the largest axis component
    j, k = (i + 1) % 3, (i + 2) % 3
    r = np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
    q = np.empty(4)
    q[0], q[1 + i] = (m[k, j] - m[j, k]) / (2 * r), r / 2
    q[1 + j], q[1 + k] = (m[j, i] + m[i, j]) / (2 * r), (m[k, i] + m[i, k]) / (2 * r)
    return q / np.linalg.norm(q)


def to_cont6d(q: np.ndarray) -> np.ndarray:
    """The continuous 6D rotation representation: the first two matrix columns, (..., 6)."""
    m = to_matrix(q)
    return np.concatenate([m[..., 0], m[..., 1]], axis=-1)
