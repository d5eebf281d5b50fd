"""Tests for the book around the chapters: the Colab cell of every notebook, the Colab launch
buttons, the configuration (citations, offline MathJax), the toc and the Pages workflow."""
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import yaml
from pybtex.database import parse_file

from fmsnb import book

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _config() -> dict:
    return yaml.safe_load((REPO / "_config.yml").read_text())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_the_colab_cell_right_after_its_parameters(path):
    cells = nbformat.read(path, as_version=4).cells
    code = [c for c in cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), f"{path}: first code cell"
    assert code[1].source == book.COLAB_CELL, (
        f"{path}: the code cell after the parameters must be fmsnb.book.COLAB_CELL, verbatim")
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


def test_config_has_colab_buttons_citations_and_offline_math():
    config = _config()
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["repository"]["url"].startswith("https://github.com/")
    assert config["repository"]["path_to_book"] == ""       # source_launch_url relies on it
    extensions = config["sphinx"]["extra_extensions"]
    assert "fmsnb.book" in extensions and "sphinx-mathjax-offline" in extensions
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
    assert files[-5:] == ["book/notebooks/09_performance", "book/real_data", "book/profiles",
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
