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


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def test_sigterm_stops_every_child_and_kernel_and_prints_the_summary(book, tmp_path):
    """A scheduler's cancel (SIGTERM) with --jobs 2: both chapters' processes and kernels stop, the
    summary is printed, no partial, spec or result file is left."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    for stem in ("01_first", "02_second"):
        (book / f"{stem}.py").write_text(chapter("""
            # %% tags=["parameters"]
            epochs = 2

            # %%
            import time
            time.sleep(600)
            """))
    out = tmp_path / "out"
    runner = subprocess.Popen([sys.executable, "-m", "genlib.run", "--all", "--jobs", "2", "--book", str(book),
                               "--out", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while len([p for p in _descendants(runner.pid) if "ipykernel" in " ".join(p.cmdline())]) < 2:
            assert time.monotonic() < deadline and runner.poll() is None, "the two kernels never started"
            time.sleep(0.3)
        time.sleep(2)  # into the sleeping cells
        started = _descendants(runner.pid)
        os.kill(runner.pid, signal.SIGTERM)
        stdout, _ = runner.communicate(timeout=90)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 143
    assert "0 passed, 2 failed" in stdout.splitlines()[-1]
    _, alive = psutil.wait_procs(started, timeout=10)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    assert sorted(p.name for p in out.iterdir()) == ["01_first.failed.ipynb", "02_second.failed.ipynb"]


@pytest.mark.parametrize("flag, value", [("--cell-timeout", "nan"), ("--cell-timeout", "inf"),
                                         ("--timeout", "nan"), ("--timeout", "inf")])
def test_time_limits_that_are_not_finite_are_refused(book, tmp_path, capsys, flag, value):
    assert run.main(["01", flag, value, "--book", str(book), "--out", str(tmp_path / "o")]) == 2
    assert "must be a finite number of seconds" in capsys.readouterr().err


def test_a_fractional_cell_limit_rounds_up_and_runs(book, tmp_path, capsys):
    """nbclient's cell timeout is an integer trait: 1.5 failed every chapter with a TraitError."""
    assert run.limits_for({}, 1.5, None).cell == 2
    (book / "01_first.py").write_text(chapter("""
        # %% tags=["parameters"]
        epochs = 2

        # %%
        print(epochs)
        """))
    assert run.main(["01", "--cell-timeout", "1.5", "--book", str(book), "--out", str(tmp_path / "o")]) == 0


def test_a_chapter_whose_cells_all_ran_is_not_reported_as_timed_out(book, tmp_path, monkeypatch):
    """The limit expires while the kernel shuts down after the last cell: the chapter passed."""
    import subprocess

    out = tmp_path / "o"
    out.mkdir()
    c = run.select(["01"], book)[0]
    nb = run.notebook(c)
    for cell in nb.cells:
        cell.metadata["papermill"] = {"status": "completed"}

    class Child:
        pid, returncode, calls = 999_999_999, 0, 0

        def __init__(self, command, **kwargs):
            self.result = command[-1]

        def wait(self, timeout=None):
            Child.calls += 1
            if Child.calls == 1:
                nbformat.write(nb, out / "01_first.partial.ipynb")
                raise subprocess.TimeoutExpired("worker", timeout)
            with open(self.result, "w") as f:
                json.dump({"passed": True}, f)
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(run.subprocess, "Popen", Child)
    passed, error = run.execute(c, {}, out, book, run.Limits(cell=None, chapter=25))
    assert passed and not error and (out / "01_first.ipynb").exists()


def test_a_relative_checkpoint_is_resolved_against_the_callers_folder(book, tmp_path, monkeypatch, capsys):
    import torch

    from genlib import train_family

    (book / "01_first.py").write_text(chapter("""
        # %% tags=["parameters"]
        checkpoint = ""

        # %%
        import os
        print("exists", os.path.isabs(checkpoint), os.path.exists(checkpoint))
        """))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ck").mkdir()
    torch.save({"family": "vae", "params": {}, "model": {}, "history": {}}, tmp_path / "ck" / "vae.pt")
    assert run.main(["01", "checkpoint=ck/vae.pt", "--book", str(book), "--out", str(tmp_path / "o")]) == 0
    assert "exists True True" in printed(tmp_path / "o" / "01_first.ipynb")
    capsys.readouterr()
    assert run.main(["01", "checkpoint=ck/nope.pt", "--book", str(book), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nope.pt not found" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "ck" / "junk.pt").write_text("junk")
    assert run.main(["01", "checkpoint=ck/junk.pt", "--book", str(book), "--out", str(tmp_path / "o")]) == 2
    assert "is not a checkpoint written by genlib.train_family" in capsys.readouterr().err
    assert train_family.read  # the runner checks with the loader's own reader


def test_a_huge_unknown_parameter_name_is_not_echoed_in_full(book, tmp_path, capsys):
    assert run.main(["01", "x" * 100_000 + "=1", "--book", str(book), "--out", str(tmp_path / "o")]) == 2
    assert len(capsys.readouterr().err) < 400


def test_the_engine_is_declared_for_papermill():
    import importlib
    import tomllib
    from pathlib import Path

    from papermill.engines import Engine

    root = Path(run.__file__).resolve().parent.parent
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["entry-points"]["papermill.engine"]
    module, _, name = declared[run.ENGINE].partition(":")
    assert issubclass(getattr(importlib.import_module(module), name), Engine)


def test_plain_papermill_runs_a_widget_chapter_with_the_documented_command(tmp_path):
    """The README's command, ``jupytext ... | papermill - out.ipynb --engine genlib -k python3 --cwd book``,
    on the preface (a live widget). Once the package is installed the ``papermill.engine`` entry point
    makes ``--engine genlib`` work in the ``papermill`` command itself; in a checkout that was not
    reinstalled since the entry point was added, the same command line runs with the engine registered
    through papermill's API first."""
    import importlib.metadata
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(run.__file__).resolve().parent.parent
    installed = any(e.name == run.ENGINE for e in importlib.metadata.entry_points(group="papermill.engine"))
    papermill = [str(Path(sys.executable).with_name("papermill"))] if installed else [sys.executable, "-c", (
        "import sys; from papermill.engines import papermill_engines; from genlib.papermill_engine import Engine; "
        "papermill_engines.register('genlib', Engine); from papermill.cli import papermill; "
        "sys.argv[0] = 'papermill'; papermill()")]
    source = subprocess.run([str(Path(sys.executable).with_name("jupytext")), "--to", "ipynb", "-o", "-",
                             str(root / "book" / "00_preface.py")], capture_output=True, check=True, timeout=120)
    out = tmp_path / "out.ipynb"
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run([*papermill, "-", str(out), "--engine", "genlib", "-k", "python3", "--cwd",
                           str(root / "book"), "--execution-timeout", "300"], input=source.stdout,
                          capture_output=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata.papermill.get("exception") is None
    assert any(o.get("data", {}).get("application/vnd.jupyter.widget-view+json")
               for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))

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


def test_the_default_time_limits_cannot_be_changed_in_place():
    """run.Limits is the default argument of run.execute: frozen, so no call can alter the next one's."""
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        run.Limits().cell = 1
