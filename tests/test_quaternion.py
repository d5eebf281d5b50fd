"""Tests of the quaternion helpers that are not exercised through the HumanML3D representation."""
import numpy as np
import pytest

from fmsnb.quaternion import from_matrix, qyaw, to_matrix


def same_rotation(q, r):
    return np.allclose(q, r, atol=1e-9) or np.allclose(q, -r, atol=1e-9)


def test_from_matrix_inverts_to_matrix():
    rng = np.random.default_rng(0)
    qs = rng.normal(size=(200, 4))
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    for q in qs:
        assert same_rotation(from_matrix(to_matrix(q)), q)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_from_matrix_handles_half_turns(axis):
    q = np.zeros(4)
    q[1 + axis] = 1.0                       # 180 degrees about x, y or z: trace -1, w = 0
    assert same_rotation(from_matrix(to_matrix(q)), q)
    assert same_rotation(from_matrix(to_matrix(qyaw(np.array(np.pi)))), qyaw(np.array(np.pi)))
