"""Tests for fmsnb.book: which notebooks the toc makes chapters, and how a failing cell fails."""
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from fmsnb import book

PARAMETERS = 'profile = "default"\ndata_root = None'


def _notebook(path: Path, *cells: str, parameters: str | None = PARAMETERS) -> Path:
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    if parameters is not None:
        nb.cells.append(new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells += [new_markdown_cell("# A chapter")] + [new_code_cell(c) for c in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _book(tmp_path: Path, toc: str, chapters: dict[str, list[str]]) -> Path:
    """A throwaway repository: a toc, the chapters' sources and a `smoke` profile."""
    (tmp_path / "_toc.yml").write_text(toc)
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "smoke.yml").write_text("name: smoke\n")
    for name, cells in chapters.items():
        _notebook(tmp_path / "notebooks" / f"{name}.ipynb", *cells)
    return tmp_path


def test_toc_chapters_are_the_book_notebooks_in_toc_order(tmp_path):
    root = _book(tmp_path, """
format: jb-book
root: book/intro
parts:
  - caption: One
    chapters:
      - file: book/notebooks/02_second
        sections:
          - file: book/notebooks/01_first.ipynb
      - file: book/profiles
  - caption: Two
    chapters:
      - file: book/notebooks/03_third
""", {"01_first": [], "02_second": [], "03_third": []})
    chapters = book.toc_chapters(root)
    assert [c.name for c in chapters] == ["02_second", "01_first", "03_third"]
    assert chapters[1].source == root / "notebooks" / "01_first.ipynb"
    assert chapters[1].executed == root / "book" / "notebooks" / "01_first.ipynb"


def test_toc_chapter_without_a_source_notebook_is_an_error_naming_it(tmp_path):
    root = _book(tmp_path, "format: jb-book\nroot: book/intro\nchapters:\n"
                           "  - file: book/notebooks/09_missing\n", {})
    with pytest.raises(FileNotFoundError, match=r"_toc.yml.*09_missing\.ipynb"):
        book.toc_chapters(root)


def test_toc_must_be_a_jupyter_book_toc(tmp_path):
    root = _book(tmp_path, "format: jb-article\nroot: book/intro\n", {})
    with pytest.raises(ValueError, match="jb-book"):
        book.toc_chapters(root)
    with pytest.raises(FileNotFoundError, match="table of contents"):
        book.toc_chapters(tmp_path / "elsewhere")


TOC_ONE = "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/notebooks/01_tiny\n"


def test_failing_cell_makes_main_exit_non_zero_showing_the_error(tmp_path, capsys):
    root = _book(tmp_path, TOC_ONE, {"01_tiny": [
        "x = 1", "raise RuntimeError(f'boom from a cell, profile {profile}')", "y = 2"]})
    status = book.main(["--root", str(root), "--profile", "smoke"])
    out, err = capsys.readouterr()
    assert status != 0
    assert "RuntimeError" in err and "boom from a cell, profile smoke" in err
    assert "notebooks/01_tiny.ipynb" in err
    assert "[1/1] notebooks/01_tiny.ipynb" in out
    assert "\x1b[" not in err                               # colour codes stripped
    # The executed copy stops at the failure; the build never ran.
    executed = nbformat.read(root / "book" / "notebooks" / "01_tiny.ipynb", as_version=4)
    assert not any(c.get("outputs") for c in executed.cells if c.source == "y = 2")
    assert not (root / "_build").exists()


def test_main_injects_the_profile_and_data_root(tmp_path, capsys):
    root = _book(tmp_path, TOC_ONE, {"01_tiny": ["print(profile, data_root)"]})
    (tmp_path / "data").mkdir()
    status = book.main(["--root", str(root), "--profile", "smoke", "--data-root",
                        str(tmp_path / "data"), "--no-build"])
    assert status == 0
    executed = nbformat.read(root / "book" / "notebooks" / "01_tiny.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert printed.strip() == f"smoke {(tmp_path / 'data').resolve()}"
    assert "in " in capsys.readouterr().out                   # the per-notebook wall time


def test_a_chapter_without_parameters_is_refused(tmp_path):
    root = _book(tmp_path, TOC_ONE, {})
    _notebook(root / "notebooks" / "01_tiny.ipynb", "x = 1", parameters=None)
    with pytest.raises(ValueError, match=r"01_tiny\.ipynb.*parameters"):
        book.main(["--root", str(root), "--profile", "smoke", "--no-build"])


def test_unknown_profile_or_data_root_fail_before_any_notebook_runs(tmp_path):
    root = _book(tmp_path, TOC_ONE, {"01_tiny": ["x = 1"]})
    with pytest.raises(FileNotFoundError, match="no profile 'nope'"):
        book.main(["--root", str(root), "--profile", "nope"])
    with pytest.raises(FileNotFoundError, match="not a folder"):
        book.main(["--root", str(root), "--profile", "smoke", "--data-root", str(tmp_path / "x")])
    assert not (root / "book" / "notebooks").exists()


def test_only_must_name_a_chapter(tmp_path):
    root = _book(tmp_path, TOC_ONE, {"01_tiny": ["x = 1"]})
    with pytest.raises(ValueError, match="01_tiny"):
        book.main(["--root", str(root), "--profile", "smoke", "--only", "02_other", "--no-build"])


FULL_PROFILE = """name: full
fms: {views: [front, side]}
text: {encoder: clip, weights: clip/ViT-B-32.pt}
evaluator_files: {checkpoint: t2m/text_mot_match/model/finest.tar, glove: glove}
"""


def _data_root(tmp_path: Path) -> Path:
    """A fake DATA_ROOT with every file the `full` profile above expects (empty stand-ins)."""
    root = tmp_path / "data"
    hml = root / "HumanML3D"
    for folder in ("new_joint_vecs", "new_joints", "texts"):
        (hml / folder).mkdir(parents=True)
    (hml / "new_joint_vecs" / "000001.npy").touch()
    for name in ("train.txt", "val.txt", "test.txt", "Mean.npy", "Std.npy"):
        (hml / name).touch()
    for view in ("Front", "Side"):
        (root / "FMS" / "Skeleton data" / view).mkdir(parents=True)
        (root / "FMS" / "Skeleton data" / view / f"{view.lower()}_s01_m01_e1.json").touch()
    (root / "FMS" / "experts_score.json").touch()
    (root / "clip").mkdir()
    (root / "clip" / "ViT-B-32.pt").touch()
    (root / "t2m" / "text_mot_match" / "model").mkdir(parents=True)
    (root / "t2m" / "text_mot_match" / "model" / "finest.tar").touch()
    (root / "glove").mkdir()
    return root


def test_dry_run_with_complete_data_prints_the_plan_and_runs_nothing(tmp_path, capsys):
    root = _book(tmp_path, TOC_ONE, {"01_tiny": ["raise RuntimeError('must not run')"]})
    (root / "params" / "full.yml").write_text(FULL_PROFILE)
    data = _data_root(tmp_path)
    status = book.main(["--root", str(root), "--profile", "full", "--data-root", str(data),
                        "--dry-run"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "profile full" in out and str(data) in out
    assert "clip (clip/ViT-B-32.pt)" in out
    assert "[1/1] notebooks/01_tiny.ipynb -> book/notebooks/01_tiny.ipynb" in out
    assert "nothing was run" in out
    assert not (root / "book" / "notebooks").exists()


def test_dry_run_lists_everything_missing_and_exits_2(tmp_path, capsys):
    root = _book(tmp_path, TOC_ONE, {"01_tiny": ["x = 1"]})
    (root / "params" / "full.yml").write_text(FULL_PROFILE)
    data = _data_root(tmp_path)
    (data / "HumanML3D" / "Mean.npy").unlink()
    (data / "HumanML3D" / "new_joint_vecs" / "000001.npy").unlink()
    (data / "FMS" / "Skeleton data" / "Side" / "side_s01_m01_e1.json").unlink()
    (data / "FMS" / "experts_score.json").unlink()
    (data / "clip" / "ViT-B-32.pt").unlink()
    (data / "glove").rmdir()
    _notebook(root / "notebooks" / "01_tiny.ipynb", "x = 1", parameters=None)
    status = book.main(["--root", str(root), "--profile", "full", "--data-root", str(data),
                        "--dry-run"])
    out, err = capsys.readouterr()
    assert status == 2
    assert "[1/1] notebooks/01_tiny.ipynb" in out           # the plan is still printed
    missing = [line for line in err.splitlines() if line.startswith("  - ")]
    assert len(missing) == 7, err
    for expected in ("HumanML3D/Mean.npy: missing", "new_joint_vecs: no .npy",
                     "Skeleton data/Side: no .json", "experts_score.json: missing",
                     "clip/ViT-B-32.pt: missing (text.weights", "glove: missing (evaluator_files",
                     "01_tiny.ipynb: no ['profile', 'data_root']"):
        assert any(expected in line for line in missing), (expected, err)


def test_dry_run_needs_a_data_root_for_files_the_profile_names_under_it(tmp_path, capsys):
    root = _book(tmp_path, TOC_ONE, {"01_tiny": ["x = 1"]})
    (root / "params" / "full.yml").write_text(FULL_PROFILE)
    assert book.main(["--root", str(root), "--profile", "full", "--dry-run"]) == 2
    assert "no --data-root" in capsys.readouterr().err
    assert book.main(["--root", str(root), "--profile", "smoke", "--dry-run"]) == 0
    assert book.main(["--root", str(root), "--profile", "nope", "--dry-run"]) == 2
    assert "no profile 'nope'" in capsys.readouterr().err
    assert book.main(["--root", str(root), "--profile", "smoke", "--dry-run",
                      "--data-root", str(tmp_path / "absent")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_the_repository_passes_its_own_dry_run(capsys):
    repo = Path(__file__).resolve().parents[1]
    assert book.main(["--root", str(repo), "--profile", "smoke", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert all(f"notebooks/{c.name}.ipynb" in out for c in book.toc_chapters(repo))


def test_dry_run_checks_absolute_files_even_without_a_data_root(tmp_path, capsys):
    root = _book(tmp_path, TOC_ONE, {"01_tiny": ["x = 1"]})
    weights = tmp_path / "weights" / "ViT-B-32.pt"
    (root / "params" / "smoke.yml").write_text(f"name: smoke\ntext: {{weights: {weights}}}\n")
    assert book.main(["--root", str(root), "--profile", "smoke", "--dry-run"]) == 2
    assert f"{weights}: missing (text.weights" in capsys.readouterr().err
    weights.parent.mkdir()
    weights.touch()
    assert book.main(["--root", str(root), "--profile", "smoke", "--dry-run"]) == 0
