import numpy as np
import pytest

from fmsnb import metrics


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_shift(rng):
    real = rng.normal(size=(500, 16))
    assert abs(metrics.fid(real, real)) < 1e-6
    shifts = [metrics.fid(real, real + s) for s in (0.1, 0.5, 1.0)]
    assert shifts[0] < shifts[1] < shifts[2]
    # a pure mean shift of s in every one of 16 dimensions adds 16 s^2
    assert shifts[2] == pytest.approx(16.0, rel=1e-6)


def test_r_precision_is_one_when_embeddings_coincide(rng):
    emb = rng.normal(size=(64, 8))
    top, matching = metrics.r_precision(emb, emb)
    np.testing.assert_allclose(top, 1.0)
    assert matching == pytest.approx(0.0, abs=1e-6)


def test_r_precision_is_chance_on_random_embeddings(rng):
    text, motion = rng.normal(size=(32 * 300, 8)), rng.normal(size=(32 * 300, 8))
    top, _ = metrics.r_precision(text, motion)
    np.testing.assert_allclose(top, [1 / 32, 2 / 32, 3 / 32], atol=0.01)


def test_the_retrieval_columns_are_r_precision_and_the_matching_distance(rng):
    text, motion = rng.normal(size=(64, 8)), rng.normal(size=(64, 8))
    top, matching = metrics.r_precision(text, motion)
    assert metrics.retrieval(text, motion) == {"R@1": top[0], "R@2": top[1], "R@3": top[2],
                                               "MM-Dist": matching}


def test_r_precision_drops_the_incomplete_batch_and_needs_one_full_batch(rng):
    emb = rng.normal(size=(40, 4))
    top, _ = metrics.r_precision(emb, emb)
    assert top[0] == 1.0
    with pytest.raises(ValueError, match="at least 32"):
        metrics.r_precision(emb[:31], emb[:31])


def test_diversity_of_identical_motions_is_zero(rng):
    assert metrics.diversity(np.ones((300, 5)), rng) == 0.0


def test_diversity_needs_the_published_protocol_unless_told_otherwise(rng):
    emb = rng.normal(size=(100, 5))
    with pytest.raises(ValueError, match="at least 300"):
        metrics.diversity(emb, rng)
    assert metrics.diversity(emb, rng, allow_fewer=True) > 0


def test_multimodality_of_repeated_generations(rng):
    same = np.repeat(rng.normal(size=(20, 1, 4)), 30, axis=1)
    assert metrics.multimodality(same, rng) == 0.0
    spread = rng.normal(size=(20, 30, 4))
    # E|x - y| for independent standard normals in 4-d is about 2.66
    assert metrics.multimodality(spread, rng) == pytest.approx(2.66, abs=0.3)


def test_confidence_interval_formula():
    values = [1.0, 2.0, 3.0, 4.0]
    mean, half = metrics.confidence_interval(values)
    assert mean == 2.5
    assert half == pytest.approx(1.96 * np.std(values) / 2.0)
