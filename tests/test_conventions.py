"""The repository's conventions: clean notebooks, the chapter template, one URL, one set of dependencies."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]


def code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def test_there_are_chapters():
    assert NOTEBOOKS, "book/ holds no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path):
    dirty = [i for i, c in enumerate(code_cells(path)) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, (
        f"{path.name}: code cells {dirty} carry outputs or execution counts; clear them with "
        f"`jupyter nbconvert --clear-output --inplace {path.relative_to(ROOT)}`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_chapter_template(path):
    cells = code_cells(path)
    first = source(cells[0])
    assert "google.colab" in first and f"git+{REPO_URL}" in first, (
        f"{path.name}: the first code cell must install cnncourse on Colab from {REPO_URL} (_config.yml)"
    )
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one code cell tagged 'parameters'"
    assert "fast_profile()" in source(tagged[0]), f"{path.name}: the parameters cell must read fast_profile()"
    everything = "\n".join(source(c) for c in cells)
    for needed in ("describe_device(", "seed_everything(", "assert "):
        assert needed in everything, f"{path.name}: no {needed!r} in any code cell"
    markdown = "".join(
        "".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"
    )
    assert "What you will learn" in markdown, f"{path.name}: state the learning goals at the top"
    solutions = [c for c in cells if "hide-cell" in c.get("metadata", {}).get("tags", [])]
    checked = [c for c in solutions if "assert" in source(c)]
    assert "## Exercises" in markdown and len(checked) >= 3, (
        f"{path.name}: end with exercises whose solutions are hidden (tag hide-cell) and checked by asserts"
    )


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def test_toc_lists_existing_chapters_and_every_notebook():
    files = toc_files()
    for name in files:
        assert any((ROOT / f"{name}{ext}").is_file() for ext in (".md", ".ipynb")), f"_toc.yml lists missing {name}"
    for path in NOTEBOOKS:
        assert str(path.relative_to(ROOT).with_suffix("")) in files, f"{path.name} is not in _toc.yml"


def test_book_configuration_never_hides_errors():
    execute = CONFIG["execute"]
    assert execute.get("allow_errors") is False
    assert CONFIG["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert "allow_errors" not in (ROOT / "_toc.yml").read_text()


def test_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_repository_url_is_set_in_one_place():
    # every GitHub URL of the project in the book and README is the one in _config.yml
    pattern = re.compile(r"https://github\.com/[\w.-]+/cnncourse\b")
    for path in [ROOT / "README.md", ROOT / "pyproject.toml", *NOTEBOOKS, *(ROOT / "book").glob("*.md")]:
        for url in pattern.findall(path.read_text()):
            assert url == REPO_URL, f"{path.name} names {url}, but _config.yml says {REPO_URL}"


CONDA_TO_PYPI = {"pytorch": "torch"}


def pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = list(project["dependencies"])
    for extra in ("book", "test"):
        listed += project["optional-dependencies"][extra]
    return {Requirement(r).name.lower(): Requirement(r) for r in listed}


def environment_requirements() -> dict[str, Requirement]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            listed += [d for d in dep["pip"] if not d.startswith("-")]
        elif not dep.startswith(("python", "pip")):
            listed.append(dep)
    reqs = {}
    for line in listed:
        req = Requirement(line)
        reqs[CONDA_TO_PYPI.get(req.name.lower(), req.name.lower())] = req
    return reqs


def test_environment_yml_and_pyproject_agree():
    pip, conda = pyproject_requirements(), environment_requirements()
    assert sorted(pip) == sorted(conda), (
        f"only in pyproject.toml: {sorted(set(pip) - set(conda))}; only in environment.yml: {sorted(set(conda) - set(pip))}"
    )
    for name in pip:
        assert pip[name].specifier == conda[name].specifier, f"{name}: {pip[name].specifier} vs {conda[name].specifier}"


#: Import names of the third-party packages the library may use, and the distributions that provide them.
IMPORT_TO_DISTRIBUTION = {
    "torch": "torch",
    "torchvision": "torchvision",
    "numpy": "numpy",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "ipywidgets": "ipywidgets",
}


def test_packages_the_library_imports_are_runtime_dependencies():
    # an import anywhere in src/cnncourse (a lazy one inside a function too) needs its distribution in
    # pyproject's [project] dependencies, or a plain `pip install cnncourse` breaks that code path
    runtime = {Requirement(r).name.lower() for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    missing = set()
    for path in (ROOT / "src" / "cnncourse").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            missing |= {f"{IMPORT_TO_DISTRIBUTION[t]} ({path.name})" for t in tops
                        if t in IMPORT_TO_DISTRIBUTION and IMPORT_TO_DISTRIBUTION[t] not in runtime}
    assert not missing, f"imported by the library but not in pyproject.toml's dependencies: {sorted(missing)}"
    # the digits of chapter 10 come from scikit-learn
    assert "scikit-learn" in runtime and "scikit-learn" in environment_requirements()


def test_pyproject_uses_lower_bounds_only_except_jupyter_book():
    for name, req in pyproject_requirements().items():
        upper = [s for s in req.specifier if s.operator in ("<", "<=", "==", "~=")]
        if name == "jupyter-book":
            assert str(req.specifier) in (">=1.0.4.post1,<2", "<2,>=1.0.4.post1"), "pin jupyter-book >=1.0.4.post1,<2"
        else:
            assert not upper, f"{name} has an upper bound {req.specifier}: Colab needs lower bounds only"


def test_constraints_satisfy_pyproject():
    reqs = pyproject_requirements()
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pinned = Requirement(line)
            for spec in pinned.specifier:
                if spec.operator == "==":
                    assert reqs[pinned.name].specifier.contains(spec.version), f"{line} breaks pyproject.toml"


def test_library_never_prints():
    offenders = []
    for path in (ROOT / "src" / "cnncourse").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, f"the library reports through logging, not print: {offenders}"


def test_init_files_only_re_export():
    for path in (ROOT / "src" / "cnncourse").rglob("__init__.py"):
        for node in ast.parse(path.read_text()).body:
            assert isinstance(node, (ast.ImportFrom, ast.Import, ast.Assign, ast.Expr)), (
                f"{path.relative_to(ROOT)} defines {type(node).__name__}: __init__ files only re-export"
            )


def test_chapter_titles_leave_numbering_to_the_book():
    # Sphinx numbers the chapters of the numbered parts (and their figures: "Figure 3.2");
    # a number typed into the title would show twice
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc["parts"]:
        for entry in part["chapters"]:
            path = ROOT / f"{entry['file']}.ipynb"
            if not path.is_file():
                continue
            title = "".join(json.loads(path.read_text())["cells"][0]["source"]).splitlines()[0]
            assert title.startswith("# "), f"{path.name}: the first cell must be the title, '# Title'"
            if part.get("numbered"):
                assert not re.match(r"# \d", title), f"{path.name}: {title!r} carries a number; Sphinx adds it"
            else:
                assert re.match(r"# [A-Z]\. ", title), f"{path.name}: appendices keep their letter, '# A. Title'"


def test_chapter_costs_are_rendered_from_their_one_record():
    import importlib.util

    spec = importlib.util.spec_from_file_location("chapter_costs", ROOT / "tools" / "chapter_costs.py")
    costs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(costs)
    fix = "run `python tools/chapter_costs.py render` (never edit the tables by hand)"
    assert (ROOT / "README.md").read_text() == costs.readme_text(), f"README's cost table is stale: {fix}"
    assert costs.INCLUDE.read_text() == costs.include_text(), f"book/_chapter_costs.md is stale: {fix}"
    assert [file for file, _ in costs.chapters()] == [f for f in toc_files() if (ROOT / f"{f}.ipynb").is_file()]


def test_chapter_costs_read_a_book_builds_log(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("chapter_costs", ROOT / "tools" / "chapter_costs.py")
    costs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(costs)
    monkeypatch.setattr(costs, "RECORD", tmp_path / "costs.json")
    rendered = []
    monkeypatch.setattr(costs, "render", lambda: rendered.append(costs.load()))
    log = tmp_path / "build.log"
    log.write_text("\x1b[01mreading sources...\x1b[39;49;00m\n"
                   "/x/book/01_why_convolutions.ipynb: Executed notebook in 55.49 seconds [mystnb]\n"
                   "/x/book/02_not_in_the_toc.ipynb: Executed notebook in 3.00 seconds [mystnb]\n")
    costs.from_log(log, "the test machine")
    record = rendered[0]
    assert record["chapters"] == {"book/01_why_convolutions": {"cpu_default": 55.5}}
    assert record["cpu_machine"] == "the test machine"
    log.write_text("build finished\n")
    with pytest.raises(SystemExit, match="no executed notebook"):
        costs.from_log(log, "the test machine")


def test_every_citation_is_in_the_bibliography():
    pybtex = pytest.importorskip("pybtex.database", reason="the book's bibliography needs pybtex (jupyter-book)")
    entries = pybtex.parse_file(str(ROOT / "references.bib")).entries  # fails on a syntax error, naming the line
    sources = [*(ROOT / "book").glob("*.ipynb"), *(ROOT / "book").glob("*.md")]
    cited = {key.strip() for path in sources
             for keys in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", path.read_text())
             for key in keys.split(",")}
    missing = sorted(cited - {key for key in entries})
    assert not missing, f"cited but not in references.bib: {missing}"
