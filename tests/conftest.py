"""Shared fixtures: the real reference files in ../shared/data beside the repository, and a
repository root with a profile small enough to train and sample in seconds."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` relative to the repository root; tests that need it skip without it."""
    path = REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real reference data not found at {path}")
    return path


# Every stage at its smallest: a handful of clips, a 1-layer model, two training steps.
TINY_PROFILE = """name: tiny
standin: {clips_per_action: 1}
fms_standin: {subjects: 3, max_episodes: 1}
fms: {views: [front], mirror: false}
model: {latent_dim: 16, layers: 1, heads: 2, ff_size: 32}
pretrain: {steps: 4, batch_size: 4, checkpoint_every: 2, log_every: 2}
finetune: {steps: 2, batch_size: 4, checkpoint_every: 2, log_every: 1}
styles: [textual, token]
sampling: {steps: 2}
generation: {per_cell: 1}
"""


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory) -> Path:
    """A repository root holding params/tiny.yml (TINY_PROFILE); one per test module, so its
    runs/ start empty."""
    root = tmp_path_factory.mktemp("repo")
    (root / "params").mkdir()
    (root / "params" / "tiny.yml").write_text(TINY_PROFILE)
    return root
