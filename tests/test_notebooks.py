"""Every chapter notebook of _toc.yml runs top to bottom with the smoke profile (papermill)."""
from pathlib import Path

import pytest
from papermill import PapermillExecutionError

from fmsnb.book import Chapter, describe_failure, execute, toc_chapters

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.notebooks


@pytest.mark.parametrize("chapter", toc_chapters(REPO), ids=lambda c: c.name)
def test_notebook_runs_with_the_smoke_profile(chapter: Chapter, tmp_path: Path):
    executed = Chapter(chapter.name, chapter.source, tmp_path / f"{chapter.name}.ipynb")
    try:
        execute(executed, profile="smoke", data_root=None, root=REPO)
    except PapermillExecutionError as err:
        pytest.fail(describe_failure(chapter.source, err), pytrace=False)
    assert executed.executed.stat().st_size > 0
