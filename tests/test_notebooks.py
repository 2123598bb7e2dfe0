"""The analyst notebooks in ``notebooks/``: stored without outputs, and each one runs top to
bottom on the demo data (executed with nbclient on a ``python3`` kernel of the interpreter running
the tests, in a temporary working directory, no network, inline matplotlib backend)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell; a whole notebook takes well under two minutes

# text every notebook's outputs must contain (a failed step shows here even if no cell raised)
EXPECTED = {
    "01_live_quickstart": [
        "TypeError: won must be a bool",
        "restored decider draws the same: True",
        "limits cvar",
        "sized to zero by portfolio_es",
        "elliptical: VaR",
        "realised PnL: {'live'",
    ],
    "02_nightly_fit_and_gate": [
        "prior set v1: active (exit code 0)",
        "prior set v2: active (exit code 4)",
        "winrate: carried (tonight: computational)",
        "returns: refreshed (tonight: passed)",
        "active prior set after night 2: v2, its win rates from v1",
        "prior set v3: active (exit code 0)",
        "12 symbols, prior set v3)",
        "prior set v1 is active",
        "engine picks up the rollback: True -> prior set v1",
        "ess_bulk",
        "analyst report (self-contained HTML",
        "a rejected fit gets its report too: /",
    ],
    "03_risk_cvar_and_backtests": [
        "ES band",
        "portfolio ES",
        "Kupiec",
        "Christoffersen",
        "Z2 p",
    ],
    "04_ab_comparison": [
        "paired t-test",
        "P(test beats control)",
        "deflated Sharpe",
        "P(live beats baseline)",
    ],
}


def _repo_files() -> set[Path]:
    """The checkout's files, without hidden folders (.git, .venv, caches) and bytecode."""
    out = set()
    for top in REPO.iterdir():
        if top.name.startswith("."):
            continue
        paths = top.rglob("*") if top.is_dir() else [top]
        out |= {p for p in paths if "__pycache__" not in p.parts}
    return out


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_four_notebooks_are_there() -> None:
    assert sorted(p.stem for p in NOTEBOOKS) == sorted(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path: Path) -> None:
    nb = _load(path)
    assert nb["nbformat"] == 4
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, f"{path.name} has no code cells"
    for i, cell in enumerate(code):
        assert cell.get("outputs") == [], f"{path.name}: code cell {i} has stored outputs"
        assert cell.get("execution_count") is None, f"{path.name}: code cell {i} has a count"
    assert "widgets" not in nb["metadata"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_headless_and_no_repo_writes(path: Path) -> None:
    """Plots use the inline backend (no display needed); nothing is written relative to the
    repository (work files go to a temporary directory)."""
    source = "\n".join("".join(c["source"]) for c in _load(path)["cells"])
    if "matplotlib" in source:
        assert "%matplotlib inline" in source
    for bad in ("plt.savefig(", ".to_csv(", 'Path("models")', 'Path("data")', 'Path("demo")'):
        assert bad not in source, f"{path.name} writes files: {bad}"


def _kernel_manager(tmp_path: Path):
    """A kernel manager whose ``python3`` kernel is this interpreter (not whatever kernelspec
    happens to be installed for the user)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = tmp_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name="python3", kernel_spec_manager=ksm)


def _output_text(nb) -> tuple[str, int]:
    """All text the notebook printed or displayed, and the number of PNG figures."""
    parts, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                parts.append(out.data.get("text/plain", ""))
                parts.append(out.data.get("text/html", ""))
                images += "image/png" in out.data
    return "\n".join(parts), images


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path, monkeypatch) -> None:
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[dev]' (nbformat)")
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[dev]' (nbclient)")
    pytest.importorskip("ipykernel", reason="pip install -e '.[dev]' (ipykernel)")
    # the kernel imports this checkout's bayes_mem and works in a scratch directory
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    work = tmp_path / "cwd"
    work.mkdir()
    before = _repo_files()
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        km=_kernel_manager(tmp_path),
        timeout=CELL_TIMEOUT,
        allow_errors=False,
        resources={"metadata": {"path": str(work)}},
    )
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - t0
    print(f"{path.name}: {elapsed:.0f} s")
    text, images = _output_text(nb)
    for expected in EXPECTED[path.stem]:
        assert expected in text, f"{path.name}: output lacks {expected!r}"
    assert images >= 1, f"{path.name}: no figure was displayed"
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    new = sorted(str(p.relative_to(REPO)) for p in _repo_files() - before)
    assert not new, f"{path.name} wrote into the repository: {new[:5]}"
