"""The chapter runner, on a tiny book of its own made in a temporary folder."""
import json
import textwrap

import nbformat
import pytest

from genlib import run

HEADER = textwrap.dedent("""\
    # ---
    # jupyter:
    #   jupytext:
    #     formats: ipynb,py:percent
    #   kernelspec:
    #     display_name: Python 3
    #     language: python
    #     name: python3
    # ---
    """)


def chapter(body: str) -> str:
    return HEADER + textwrap.dedent(body)


@pytest.fixture
def book(tmp_path):
    folder = tmp_path / "book"
    folder.mkdir()
    (folder / "01_first.py").write_text(chapter("""
        # %% tags=["parameters"]
        epochs = 2
        k = 3

        # %%
        from genlib.train import check_epochs
        check_epochs(epochs)
        print(json.dumps({"epochs": epochs, "k": k}) if (json := __import__("json")) else "")
        """))
    (folder / "02_second.py").write_text(chapter("""
        # %% tags=["parameters"]
        dataset = "digits"

        # %%
        from genlib.data import check_dataset
        check_dataset(dataset, ("digits",))
        print("dataset", dataset)
        """))
    (folder / "notes.py").write_text("# not a chapter\n")
    (folder / "profiles.yml").write_text("book: {}\npaper:\n  all: {epochs: 9}\n  02_second: {dataset: digits}\n")
    return folder


def printed(path):
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_chapters_are_found_and_named_three_ways(book):
    assert [c.stem for c in run.chapters(book)] == ["01_first", "02_second"]
    assert [c.stem for c in run.select(["2", "first"], book)] == ["02_second", "01_first"]
    with pytest.raises(ValueError, match=r"unknown chapter '7'; choose one of: 01_first, 02_second"):
        run.select(["7"], book)


def test_overrides_are_parsed_as_yaml():
    assert run.parse_overrides(["epochs=50", "device=cuda", "betas=[1, 4]", "lr=1e-3"]) == {
        "epochs": 50, "device": "cuda", "betas": [1, 4], "lr": 1e-3}
    with pytest.raises(ValueError, match="not of the form name=value"):
        run.parse_overrides(["=3"])


def test_profile_then_overrides_limited_to_declared_parameters(book):
    c = run.select(["01"], book)[0]
    declared = run.declared_parameters(run.notebook(c))
    assert declared == {"epochs": 2, "k": 3}
    profile = run.load_profile("paper", book)
    assert run.parameters_for(c, declared, profile, {"k": 5, "dataset": "x"}) == {"epochs": 9, "k": 5}
    with pytest.raises(ValueError, match=r"unknown profile 'fast'; choose one of: book, paper"):
        run.load_profile("fast", book)


def test_a_run_executes_with_overrides_and_never_in_place(book, tmp_path, capsys):
    out = tmp_path / "out"
    assert run.main(["01", "k=7", "--book", str(book), "--out", str(out)]) == 0
    assert json.loads(printed(out / "01_first.ipynb").splitlines()[-1]) == {"epochs": 2, "k": 7}
    assert not list(book.glob("*.ipynb"))
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("ok    01_first") and line.endswith("k=7")


def test_a_failing_chapter_is_reported_and_the_others_still_run(book, tmp_path, capsys):
    out = tmp_path / "out"
    code = run.main(["--all", "epochs=0", "--book", str(book), "--out", str(out)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0].startswith("FAIL  01_first")
    assert lines[1].strip() == "cell 2: ValueError: epochs must be a positive integer (1, 2, ...), got 0"
    assert lines[2].startswith("ok    02_second")
    assert lines[-1].startswith("1 passed, 1 failed")
    assert "dataset digits" in printed(out / "02_second.ipynb")
    assert not (out / "01_first.ipynb").exists()  # a failure is kept aside, never built
    assert "epochs must be a positive integer" in json.dumps(nbformat.read(out / "01_first.failed.ipynb", 4))


def test_an_unknown_dataset_fails_with_its_choices(book, tmp_path, capsys):
    assert run.main(["02", "dataset=cifar", "--book", str(book), "--out", str(tmp_path / "o")]) == 1
    assert "ValueError: unknown dataset 'cifar'; choose one of: digits" in capsys.readouterr().out


def test_bad_command_lines_exit_2_before_running(book, tmp_path, capsys):
    assert run.main(["01", "nope=1", "--book", str(book), "--out", str(tmp_path / "o")]) == 2
    assert "no chosen chapter has a parameter named nope; valid: epochs, k" in capsys.readouterr().err
    for inside in (book, book / "sub" / "dir"):
        assert run.main(["01", "--book", str(book), "--out", str(inside)]) == 2
        assert "never run in place" in capsys.readouterr().err
    assert not (book / "sub").exists()


@pytest.mark.parametrize("override", ["k=[unclosed", "k=!!python/object/apply:os.system ['echo hi']",
                                      "k={a: 1", "k=[" + "x" * 5000])
def test_malformed_or_tagged_yaml_is_one_line_and_runs_nothing(book, tmp_path, capsys, override):
    out = tmp_path / "o"
    assert run.main(["01", override, "--book", str(book), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "is not a plain YAML value" in err
    assert len(err) < 300  # a long value is not echoed in full
    assert not out.exists()


def test_an_unwritable_out_folder_is_one_line(book, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert run.main(["01", "--book", str(book), "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "is not a writable folder" in err


def test_long_values_are_shortened_in_the_summary(book, tmp_path, capsys):
    assert run.main(["01", "k=" + "7" * 500, "--book", str(book), "--out", str(tmp_path / "o")]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert len(line) < 200 and "characters)" in line


def test_a_chapter_that_never_finishes_is_reported_and_the_next_one_runs(book, tmp_path, capsys):
    (book / "01_first.py").write_text(chapter("""
        # %% tags=["parameters"]
        epochs = 2

        # %%
        print("started")

        # %%
        import time
        while True:
            time.sleep(0.5)
        """))
    out = tmp_path / "out"
    code = run.main(["--all", "--timeout", "60", "--book", str(book), "--out", str(out)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0].startswith("FAIL  01_first")
    assert "ran past its limit of 60 s (in cell 2: 'import time')" in lines[1]
    assert lines[2].startswith("ok    02_second") and lines[-1].startswith("1 passed, 1 failed")
    assert not (out / "01_first.ipynb").exists() and (out / "01_first.failed.ipynb").exists()
    assert not list(out.glob("*.partial.ipynb"))


def test_a_cell_time_limit_names_the_cell(book, tmp_path, capsys):
    (book / "01_first.py").write_text(chapter("""
        # %% tags=["parameters"]
        epochs = 2

        # %%
        import time
        time.sleep(600)
        """))
    assert run.main(["01", "--cell-timeout", "5", "--book", str(book), "--out", str(tmp_path / "o")]) == 1
    assert "CellTimeoutError" in capsys.readouterr().out


def test_ctrl_c_leaves_no_notebook_under_the_built_name(book, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    (book / "01_first.py").write_text(chapter("""
        # %% tags=["parameters"]
        epochs = 2

        # %%
        import time
        time.sleep(600)
        """))
    out = tmp_path / "out"
    out.mkdir()
    (out / "01_first.ipynb").write_text("{}")  # an older run's notebook: must not pass for this one's
    runner = subprocess.Popen([sys.executable, "-m", "genlib.run", "--all", "--book", str(book), "--out", str(out)],
                              stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "01_first.partial.ipynb").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # into the sleeping cell
    os.kill(runner.pid, signal.SIGINT)
    stdout, _ = runner.communicate(timeout=60)
    assert runner.returncode == 130
    assert "KeyboardInterrupt" in stdout and "0 passed, 1 failed, 1 not run" in stdout
    assert not (out / "01_first.ipynb").exists() and (out / "01_first.failed.ipynb").exists()
    assert not (out / "02_second.ipynb").exists()


def test_a_relative_data_folder_is_made_absolute_for_the_kernels(monkeypatch, tmp_path):
    import os

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENLIB_DATA", "cache")
    run._absolute_data_dir()
    assert os.environ["GENLIB_DATA"] == str(tmp_path / "cache")


def test_cell_ids_are_stable_across_conversions(book):
    c = run.select(["01"], book)[0]
    assert [cell.id for cell in run.notebook(c).cells] == [cell.id for cell in run.notebook(c).cells]


def test_two_jobs_run_two_chapters_at_once(book, tmp_path, capsys):
    """Each chapter leaves a marker and waits for the other's: only a concurrent run passes."""
    for mine, other in (("01_first", "02_second"), ("02_second", "01_first")):
        (book / f"{mine}.py").write_text(chapter(f"""
            # %% tags=["parameters"]
            markers = ""

            # %%
            import pathlib, time
            folder = pathlib.Path(markers)
            (folder / "{mine}").touch()
            deadline = time.monotonic() + 120
            while not (folder / "{other}").exists():
                assert time.monotonic() < deadline, "the other chapter never started"
                time.sleep(0.2)
            print("met")
            """))
    markers = tmp_path / "markers"
    markers.mkdir()
    code = run.main(["--all", "--jobs", "2", f"markers={markers}", "--book", str(book), "--out", str(tmp_path / "o")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and lines[-1].startswith("2 passed, 0 failed")
    assert sorted(line.split()[1] for line in lines[:2]) == ["01_first", "02_second"]


def test_an_offline_machine_without_mnist_fails_in_one_line_before_any_chapter(book, tmp_path, capsys, monkeypatch):
    from genlib import data

    monkeypatch.setenv("GENLIB_DATA", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(data, "MNIST_MIRRORS", ((tmp_path / "no-network").as_uri() + "/",))
    (book / "02_second.py").write_text((book / "02_second.py").read_text().replace('("digits",)', "None"))
    out = tmp_path / "o"
    assert run.main(["02", "dataset=mnist", "--book", str(book), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "02_second (dataset=mnist)" in err
    assert "python -m genlib.data fetch mnist" in err and not out.exists()
