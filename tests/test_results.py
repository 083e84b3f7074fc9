"""genlib.results reads numbers a chapter glued into its executed notebook."""
import nbformat
import pytest

from genlib import results


def notebook_with(tmp_path, **values):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("glue(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={results.GLUE_PREFIX + "text/plain": repr(v)},
                                           metadata={"scrapbook": {"name": k, "mime_prefix": results.GLUE_PREFIX}})
                    for k, v in values.items()]
    nb.cells.append(cell)
    path = tmp_path / "02_x.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_glued_number_is_quoted(tmp_path, monkeypatch):
    path = notebook_with(tmp_path, gmm_best_nll=126.53, k=20)
    monkeypatch.setattr(results, "BOOK", tmp_path)
    assert results.quote("02_x", "gmm_best_nll") == pytest.approx(126.53)
    assert results.glued(path) == {"gmm_best_nll": "126.53", "k": "20"}


def test_a_missing_key_or_notebook_is_one_line(tmp_path, monkeypatch):
    notebook_with(tmp_path, a=1.0)
    monkeypatch.setattr(results, "BOOK", tmp_path)
    with pytest.raises(KeyError, match="glues no number named 'b'; it glues: a"):
        results.quote("02_x", "b")
    with pytest.raises(FileNotFoundError, match="no executed notebook"):
        results.quote("07_nothing", "a")
