"""Tests for fmsnb.publish.book and the book it builds: which notebooks the toc makes chapters,
how a failing cell fails, the dry run; the Colab cell of every notebook and the Colab launch
buttons; the book's own files (configuration with citations and offline MathJax, toc, profiles
page, the Pages workflow)."""
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from pybtex.database import parse_file

from fmsnb.publish import book

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
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
    assert book.main(["--root", str(REPO), "--profile", "smoke", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert all(f"notebooks/{c.name}.ipynb" in out for c in book.toc_chapters(REPO))


def test_dry_run_checks_absolute_files_even_without_a_data_root(tmp_path, capsys):
    root = _book(tmp_path, TOC_ONE, {"01_tiny": ["x = 1"]})
    weights = tmp_path / "weights" / "ViT-B-32.pt"
    (root / "params" / "smoke.yml").write_text(f"name: smoke\ntext: {{weights: {weights}}}\n")
    assert book.main(["--root", str(root), "--profile", "smoke", "--dry-run"]) == 2
    assert f"{weights}: missing (text.weights" in capsys.readouterr().err
    weights.parent.mkdir()
    weights.touch()
    assert book.main(["--root", str(root), "--profile", "smoke", "--dry-run"]) == 0


# --------------------------------------------------- Colab: the first cells, the launch buttons

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_the_colab_cell_right_after_its_parameters(path):
    cells = nbformat.read(path, as_version=4).cells
    code = [c for c in cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), f"{path}: first code cell"
    assert code[1].source == book.COLAB_CELL, (
        f"{path}: the code cell after the parameters must be fmsnb.publish.book.COLAB_CELL, "
        "verbatim")
    assert code[1].metadata.get("tags") == ["remove-cell"], f"{path}: the Colab cell's tags"
    assert sum(c.source == book.COLAB_CELL for c in code) == 1


def _run_colab_cell(monkeypatch, on_colab: bool, cloned: bool) -> list:
    """Execute COLAB_CELL with subprocess.run, os.chdir and the clone check recorded."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(("run", cmd, kw)))
    monkeypatch.setattr("os.chdir", lambda path: calls.append(("chdir", path)))
    real_isdir = __import__("os").path.isdir
    monkeypatch.setattr("os.path.isdir",
                        lambda p: cloned if p == "/content/fmsnb" else real_isdir(p))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(book.COLAB_CELL, "<colab cell>", "exec"), {})
    return calls


def test_colab_cell_does_nothing_off_colab(monkeypatch):
    assert _run_colab_cell(monkeypatch, on_colab=False, cloned=False) == []


def test_colab_cell_clones_installs_and_enters_the_repository_on_colab(monkeypatch):
    calls = _run_colab_cell(monkeypatch, on_colab=True, cloned=False)
    (_, clone, kw1), (_, install, kw2), chdir = calls
    assert clone[:2] == ["git", "clone"] and clone[-2:] == ["https://github.com/fmsnb/fmsnb",
                                                          "/content/fmsnb"]
    assert install[:4] == [sys.executable, "-m", "pip", "install"]
    assert install[-1] == "/content/fmsnb"
    assert kw1["check"] and kw2["check"]                    # a failed install stops the notebook
    assert chdir == ("chdir", "/content/fmsnb")
    # Run again in the same session: nothing is fetched twice.
    assert _run_colab_cell(monkeypatch, on_colab=True, cloned=True) == [("chdir", "/content/fmsnb")]


def test_colab_cell_stays_short_and_mounts_nothing():
    lines = book.COLAB_CELL.splitlines()
    assert len(lines) <= 8 and all(len(line) <= 100 for line in lines)
    assert "drive" not in book.COLAB_CELL and "mount" not in book.COLAB_CELL


def test_launch_url_of_a_chapter_points_at_its_source_notebook():
    base = "https://colab.research.google.com/github/fmsnb/fmsnb/blob/main/"
    page = "book/notebooks/02_data_alignment"
    assert (book.source_launch_url(base + page + ".ipynb", page)
            == base + "notebooks/02_data_alignment.ipynb")
    # A book kept in a subfolder (path_to_book) keeps its prefix.
    assert (book.source_launch_url(base + "docs/" + page + ".ipynb", page)
            == base + "docs/notebooks/02_data_alignment.ipynb")
    assert book.source_launch_url(base + "book/intro.md", "book/intro") == base + "book/intro.md"
    with pytest.raises(ValueError, match="does not end with"):
        book.source_launch_url(base + "elsewhere.ipynb", page)


def test_sphinx_hook_rewrites_only_the_launch_buttons():
    context = {"header_buttons": [
        {"label": "download-buttons", "buttons": [{"type": "link", "url": "x.ipynb"}]},
        {"label": "launch-buttons", "buttons": [
            {"type": "link", "text": "Colab", "url": "https://c/github/o/r/blob/main/"
                                                    "book/notebooks/01_x.ipynb"},
            {"type": "javascript", "javascript": "initThebeSBT()"}]}]}
    book._launch_source_notebooks(None, "book/notebooks/01_x", "page.html", context, None)
    launch = context["header_buttons"][1]["buttons"]
    assert launch[0]["url"] == "https://c/github/o/r/blob/main/notebooks/01_x.ipynb"
    assert context["header_buttons"][0]["buttons"][0]["url"] == "x.ipynb"

    class App:
        connected = []

        def connect(self, event, handler, priority=500):
            self.connected.append((event, handler, priority))
    assert book.setup(App())["parallel_read_safe"]
    # After sphinx-book-theme's launch buttons (priority 501).
    assert App.connected == [("html-page-context", book._launch_source_notebooks, 502)]


# ------------------------------------------------------------------------- the book's own files

def _config() -> dict:
    return yaml.safe_load((REPO / "_config.yml").read_text())


def test_config_has_colab_buttons_citations_and_offline_math():
    config = _config()
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["repository"]["url"].startswith("https://github.com/")
    assert config["repository"]["path_to_book"] == ""       # source_launch_url relies on it
    extensions = config["sphinx"]["extra_extensions"]
    assert "fmsnb.publish.book" in extensions and "sphinx-mathjax-offline" in extensions
    assert all((REPO / bib).is_file() for bib in config["bibtex_bibfiles"])


def _cited_keys(text: str) -> set[str]:
    return {key.strip() for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text)
            for key in group.split(",")}


def test_every_citation_has_an_entry_and_every_entry_has_a_venue():
    entries = parse_file(REPO / "book" / "references.bib").entries
    sources = [*(REPO / "book").glob("*.md"), *NOTEBOOKS]
    cited = set().union(*(_cited_keys(p.read_text()) for p in sources))
    assert cited and cited <= set(entries), sorted(cited - set(entries))
    for key, entry in entries.items():
        assert entry.fields.get("year"), key
        venue = ("booktitle", "journal", "howpublished")
        assert any(entry.fields.get(f) for f in venue), key
    for key in ("tevet2023mdm", "guo2022humanml3d", "xing2022fms", "mahmood2019amass",
                "song2021ddim", "ho2022cfg", "lin2017focal", "radford2021clip",
                "reimers2019sbert", "wang2020minilm", "fitness2024"):
        assert key in entries
    assert entries["xing2022fms"].fields["journal"] == "Scientific Data"


def test_toc_ends_with_the_performance_chapter_and_the_reference_pages():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [c["file"] for c in toc["chapters"]]
    assert files[:2] == ["book/notebooks/01_motion_representation",
                         "book/notebooks/02_data_alignment"]
    assert files[-5:] == ["book/notebooks/08_performance", "book/real_data", "book/profiles",
                          "book/hard_edges", "book/references"]
    assert all((REPO / f"{f}.md").is_file() for f in files[-4:])


def test_profiles_page_shows_every_profile_file():
    page = (REPO / "book" / "profiles.md").read_text()
    for profile in sorted((REPO / "params").glob("*.yml")):
        assert f"```{{literalinclude}} ../params/{profile.name}" in page


def test_pages_workflow_builds_the_default_book_and_deploys_it():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "book.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))       # YAML 1.1 reads `on` as true
    assert "push" in triggers
    assert workflow["permissions"]["pages"] == "write"
    assert workflow["permissions"]["id-token"] == "write"
    build = workflow["jobs"]["build"]["steps"]
    uses = [s.get("uses", "") for s in build]
    assert uses[0].startswith("actions/checkout@")
    python = next(s for s in build if s.get("uses", "").startswith("actions/setup-python@"))
    assert str(python["with"]["python-version"]) == "3.11"
    script = "\n".join(s.get("run", "") for s in build)
    assert re.search(r"pip install torch==2\.13\.0 --index-url "
                     r"https://download\.pytorch\.org/whl/cpu", script)
    assert re.search(r"^make book$", script, re.M)          # the default profile
    upload = next(s for s in build if s.get("uses", "").startswith(
        "actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")
