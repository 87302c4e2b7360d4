"""The notebooks in notebooks/: committed without outputs, executed top to bottom on a run of the
synthetic sample, importing graphfraud (and plotting libraries) only."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TRUTH = ROOT / "data" / "synthetic" / "truth.csv"
ALLOWED_IMPORTS = {"graphfraud", "os", "matplotlib", "networkx"}


def test_there_is_an_analyst_and_a_data_science_notebook() -> None:
    assert [p.name for p in NOTEBOOKS] == ["analyst_ring_tour.ipynb", "data_science_run.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_hold_no_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: strip outputs before committing"
            assert cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_import_graphfraud_and_plotting_only(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    imported: set[str] = set()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                pytest.fail(f"{path.name} defines {node.name}: logic belongs in the package")
    assert "graphfraud" in imported
    assert imported <= ALLOWED_IMPORTS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_on_a_synthetic_run(
    path: Path, sample_run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPHFRAUD_RUN", str(sample_run_dir))
    monkeypatch.setenv("GRAPHFRAUD_TRUTH", str(TRUTH))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend: PNGs
    # The kernel imports this checkout's graphfraud (cwd first on its path), like the tests.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert any("image/png" in out.get("data", {}) for out in outputs)  # the drawings drew
