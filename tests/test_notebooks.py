"""Every chapter notebook of _toc.yml runs top to bottom (papermill) with the smoke profile on the
stand-ins, and with the rehearsal profile on the format-exact data root of
fmsnb.standin.rehearsal: the `full` profile's code paths (CLIP text from a file, the published
evaluator's files, padding that attends, the ddpm sampler, 5 replications with multimodality, no
mirroring, Table 1's base row from an imported MDM release) on files laid out as the real ones."""
from pathlib import Path

import pytest
from papermill import PapermillExecutionError

from fmsnb.publish.book import Chapter, describe_failure, execute, toc_chapters
from fmsnb.standin import rehearsal

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = toc_chapters(REPO)

pytestmark = pytest.mark.notebooks


def _run(chapter: Chapter, out: Path, profile: str, data_root: Path | None) -> None:
    executed = Chapter(chapter.name, chapter.source, out / f"{chapter.name}.ipynb")
    try:
        execute(executed, profile=profile, data_root=data_root and str(data_root), root=REPO)
    except PapermillExecutionError as err:
        pytest.fail(describe_failure(chapter.source, err), pytrace=False)
    assert executed.executed.stat().st_size > 0


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.name)
def test_notebook_runs_with_the_smoke_profile(chapter: Chapter, tmp_path: Path):
    _run(chapter, tmp_path, "smoke", None)


@pytest.fixture(scope="session")
def rehearsal_session(tmp_path_factory) -> tuple[Path, Path]:
    """(data root, runs folder), both written once per session: the chapters run in toc order
    and each reads what the ones before it trained."""
    folder = tmp_path_factory.mktemp("rehearsal")
    return rehearsal.write_data_root(folder / "data"), folder / "runs"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.name)
def test_notebook_runs_with_the_rehearsal_profile(chapter: Chapter, rehearsal_session,
                                                 tmp_path: Path, monkeypatch):
    data_root, runs = rehearsal_session
    monkeypatch.setenv("FMSNB_RUNS", str(runs))     # the kernel inherits it: runs/ stays clean
    _run(chapter, tmp_path, "rehearsal", data_root)
