"""What a user sees before running anything: every runner's --help, the dasjax command, the package's metadata."""
import importlib.metadata
from pathlib import Path

import pytest

import dasjax
from conftest import ROOT, load_script

RUNNERS = sorted(p.stem for p in (ROOT / "experiments").glob("run_*.py")) + ["calibrate"]


@pytest.mark.parametrize("name", RUNNERS)
def test_every_runner_help_describes_it(name, capsys):
    """--help shows the first line of the runner's docstring and no empty default."""
    mod = load_script(name)
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert mod.__doc__.strip().splitlines()[0] in out
    assert "(default: None)" not in out


def test_the_version_is_written_once_and_the_license_ships():
    assert importlib.metadata.version("dasjax") == dasjax.__version__
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (Path(dasjax.__file__).parent / "py.typed").exists()
    assert "preferred-citation" in (ROOT / "CITATION.cff").read_text()


def test_dasjax_fields_lists_every_config_field_with_its_meaning(capsys):
    from dasjax.cli import main
    from dasjax.config import flat_names
    from dasjax.field_docs import describe_fields
    assert main(["fields"]) == 0
    listed = capsys.readouterr().out
    docs = describe_fields()
    from dasjax.config import flat_field
    unique = {n for n in flat_names() if len({sec for sec, _ in flat_field(n)}) == 1}   # kernel_size: 2 sections
    assert unique - {"kind", "name"} <= {d.name for d in docs} | {"search_epochs", "retrain_epochs"}
    for d in docs:
        assert f"  {d.name} = {d.default!r}" in listed
    by_name = {d.name: d for d in docs}
    assert "register #40" in by_name["blur_alignment"].meaning and "centred, causal" in by_name["blur_alignment"].accepts
    assert by_name["data_dir"].meaning.endswith('"embedded" forces those')   # a comment continued below the field
    assert sum(bool(d.meaning) for d in docs) >= 0.8 * len(docs)
    assert main(["fields", "retrain"]) == 0 and "[retrain]" in capsys.readouterr().out
    assert main(["fields", "nope"]) == 2 and "not a config section" in capsys.readouterr().err
    assert main(["version"]) == 0 and capsys.readouterr().out.strip() == dasjax.__version__
    assert 'dasjax = "dasjax.cli:main"' in (ROOT / "pyproject.toml").read_text()


def test_the_dasjax_command_runs_every_runner(capsys):
    """dasjax <runner> is the runner: its --help under the command's name, its usage errors (exit 2),
    and the repository's experiments/run_<runner>.py wrappers for each."""
    import importlib.util
    from dasjax.cli import RUNNERS, main
    for command, (module, _) in RUNNERS.items():
        spec = importlib.util.spec_from_file_location(f"run_{module}", ROOT / "experiments" / f"run_{module}.py")
        wrapper = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(wrapper)
        assert wrapper.main is load_script(f"run_{module}").main
        with pytest.raises(SystemExit) as e:
            main([command, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: dasjax {command} ") and "(default: None)" not in out
    assert main(["table1", "--preset", "nope"]) == 2 and "--preset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["das_single", "--help"])                   # the module's name works as well
    assert capsys.readouterr().out.startswith("usage: dasjax das-single ")


def test_the_packaged_step_times_are_the_benchmarks():
    """dasjax all's estimate ships in the package as a copy of the benchmark's measurements; after a
    new benchmark, python -m dasjax.runners.estimate --write refreshes it."""
    from dasjax.runners.estimate import benchmark_step_times, packaged_step_times
    import pandas as pd
    pd.testing.assert_frame_equal(packaged_step_times(), benchmark_step_times(ROOT / "docs" / "results"),
                                  check_dtype=False)


def test_the_resume_line_names_the_command_that_was_run():
    from dasjax.runners.common import machine_error_line
    err = OSError(28, "No space left on device", "x")
    assert machine_error_line(err, [], ["--preset", "cpu"], program="dasjax table1").endswith(
        "Resume with: dasjax table1 --preset cpu")
    assert machine_error_line(err, [], ["--preset", "cpu"], program="experiments/run_table1.py").endswith(
        "Resume with: python experiments/run_table1.py --preset cpu")


def test_the_api_reference_builds_and_documents_the_public_api(tmp_path):
    """docs/api_reference.py renders a page per module without warnings; every name a package
    exports has a docstring and appears on its package's page."""
    import inspect
    import analysis
    pytest.importorskip("pdoc")                 # in the test extras; absent only where they are not installed
    names, problems = load_script("api_reference", folder="docs").build(tmp_path)
    assert problems == []                       # pdoc read every docstring and annotation
    assert {"dasjax", "dasjax.runners.table1", "dasjax.config", "analysis", "analysis.stats"} <= set(names)
    for name in names:
        assert (tmp_path / (name.replace(".", "/") + ".html")).is_file(), name
    for package in (dasjax, analysis):
        page = (tmp_path / f"{package.__name__}.html").read_text()
        for name in package.__all__:
            obj = getattr(package, name)
            if callable(obj) or inspect.isclass(obj):
                assert inspect.getdoc(obj), f"{package.__name__}.{name} has no docstring"
            assert name in page, f"{package.__name__}.{name} is not on its page"
