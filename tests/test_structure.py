"""The code's shape: no import cycles, no Gradio in the library, no model named outside the registry, the
library's face only the public API, the app's glue split by concern into short modules.

Imports are read from the source (every import, also inside functions; not those under
``if TYPE_CHECKING``), so a cycle that only shows at run time on some path is caught too. One idiom is
not an edge: a submodule importing the public API (``import gan``) inside a function, which runs after
the package has loaded.
"""
from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gan
from conftest import ROOT

PACKAGES = ("gan", "forger_app")


def _modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def import_graph(*, type_checking: bool = False) -> dict[str, set[str]]:
    """module -> the project modules it imports (``from gan import weights`` is an edge to gan.weights);
    with ``type_checking``, also the imports under ``if TYPE_CHECKING``."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = set() if type_checking else _type_checking_lines(tree)
        top_level = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
                if id(node) not in top_level and name != "gan" and name.startswith("gan."):
                    targets = [t for t in targets if t != "gan"]  # the lazy public-API idiom
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_there_are_no_import_cycles():
    graph = import_graph()
    assert "gan.cards" in graph["gan.train.common"] and "gan.cards" in graph["gan.evaluate.metrics"]  # the graph is read
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_training_has_no_import_circle_even_for_type_hints():
    """The config has its own module: the shared trainer parts take it from there, not from the loop,
    which imports every family trainer."""
    from gan.train import TrainConfig

    graph = import_graph(type_checking=True)
    train = {m: {t for t in targets if t.startswith("gan.train")} for m, targets in graph.items()
             if m.startswith("gan.train")}
    assert "gan.train.config" in train["gan.train.common"]  # the graph is read
    assert find_cycle(train) is None, " -> ".join(find_cycle(train))
    assert TrainConfig.__module__ == "gan.train.config"


def test_the_package_face_only_defines_the_public_api():
    """gan/__init__.py is the package's face and nothing else: a table of the public names and the module that
    defines each (the functions in gan/api.py, image I/O in gan/images.py, the served-model cache in
    gan/serving.py), resolved on first use, so ``import gan`` imports no torch (the app serves its page first)."""
    path = ROOT / "gan" / "__init__.py"
    text = path.read_text()
    assert len(text.splitlines()) <= 80, f"gan/__init__.py has {len(text.splitlines())} lines"
    tree = ast.parse(text)
    defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert defined == ["__getattr__", "__dir__"], "helpers belong in their own module"
    assigned = [t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)]
    assert all(name == "__all__" or name.isupper() for name in assigned), assigned  # constants, no state
    for name, module in gan.API.items():
        value = getattr(gan, name)
        assert getattr(importlib.import_module(module), name) is value
        assert not callable(value) or getattr(value, "__module__", module) == module, (name, value.__module__)
    assert set(gan.__all__) <= set(gan.API) and "sample" in gan.__all__
    assert gan.registry is importlib.import_module("gan.registry")  # submodules too, as before
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gan.nope  # noqa: B018
    light = subprocess.run([sys.executable, "-c", "import sys, gan; gan.list_specs = gan.registry.list_specs; "
                            "print('torch' in sys.modules)"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert light.stdout.strip() == "False", "import gan (and its registry) must not import torch"


def test_the_app_builds_its_page_before_torch_loads():
    """Cold start: importing the app (which builds the whole page, its model pickers included) imports no torch;
    torch loads behind the page, where the models are prepared (README, Speed)."""
    light = subprocess.run([sys.executable, "-c", "import sys, app; print(type(app.demo).__name__, 'torch' in sys.modules)"],
                           cwd=ROOT, capture_output=True, text=True, check=True)
    assert light.stdout.split()[-2:] == ["Blocks", "False"], light.stdout[-500:]


def test_the_package_face_re_exports_no_private_name():
    """A private name is not part of the API: gan/__init__.py binds one only for its own code (``weights as
    _weights``, a module its functions use beside their ``weights`` argument), and no caller reaches a private
    name through the package: it imports it from the module that defines it (``gan.serving.load_recording``)."""
    tree = ast.parse((ROOT / "gan" / "__init__.py").read_text())
    bound = [a.asname or a.name for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names]
    assert "importlib" in bound  # the imports are read
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    unused = [name for name in bound if name.startswith("_") and name not in loaded]
    assert not unused, f"gan/__init__.py re-exports private names {unused}: import them from their module"
    assert not [name for name in gan.__all__ if name.startswith("_")]
    reached = []
    for path in [ROOT / "app.py", *(p for folder in ("gan", "forger_app", "tests", "benchmarks")
                                     for p in (ROOT / folder).rglob("*.py"))]:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"(?<![\w.])gan\._[a-z]", line):
                reached.append(f"{path.relative_to(ROOT)}:{i} {line.strip()}")
    assert not reached, "private names are imported from the module that defines them:\n" + "\n".join(reached)


APP_MODULES = {  # forger_app's modules, one concern each (README's Architecture table says what each holds)
    "boundary", "handlers", "sessions", "uploads", "zips", "messages", "pickers", "loading", "zerogpu",
    "sampling", "training", "judging", "display", "downloads", "links", "latents",
}
HANDLERS_LINES = 1000  # one handler per event, each short
MODULE_LINES = 400  # any other module of forger_app


def test_the_app_glue_is_split_by_concern_into_short_modules():
    """forger_app/helpers.py (1,272 lines of everything) is gone, with no shim: each concern has a module
    whose name says what it holds, and none grows into a new catch-all."""
    from forger_app import loading, messages, sessions, uploads, zerogpu, zips

    folder = ROOT / "forger_app"
    assert not (folder / "helpers.py").exists() and not (folder / "utils.py").exists()
    assert {p.stem for p in folder.glob("*.py")} >= APP_MODULES
    assert sessions.Session.__module__ == "forger_app.sessions" and zips.safe_extract_zip.__module__ == "forger_app.zips"
    assert uploads.uploaded_file.__module__ == "forger_app.uploads" and zerogpu.on_gpu is not None
    assert messages.user_message.__module__ == "forger_app.messages" and callable(loading.loaded)
    for path in folder.glob("*.py"):
        lines = len(path.read_text().splitlines())
        budget = HANDLERS_LINES if path.name == "handlers.py" else MODULE_LINES
        assert lines <= budget, f"{path.name} has {lines} lines (budget {budget}): give a concern its own module"


def test_evaluation_has_a_file_each_for_the_classifier_the_metrics_and_the_cli():
    from gan import evaluate
    from gan.evaluate import cli

    folder = ROOT / "gan" / "evaluate"
    assert not (ROOT / "gan" / "evaluate.py").exists()
    assert {p.name for p in folder.glob("*.py")} >= {"__init__.py", "classifier.py", "metrics.py", "cli.py"}
    assert evaluate.DigitClassifier.__module__ == evaluate.train_classifier.__module__ == "gan.evaluate.classifier"
    assert evaluate.digit_metrics.__module__ == evaluate.fid_kid.__module__ == "gan.evaluate.metrics"
    assert callable(cli.add_commands)
    init = ast.parse((folder / "__init__.py").read_text())
    assert not [n for n in init.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert all(hasattr(evaluate, name) for name in evaluate.__all__)
    for path in folder.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, path


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_library_does_not_import_gradio_or_handle_its_payloads():
    for path in (ROOT / "gan").rglob("*.py"):
        text = path.read_text()
        tree = ast.parse(text)
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "gradio" not in imported and "gradio_client" not in imported, path
        assert "FileData" not in text and "Sketchpad" not in text, path


def test_the_model_families_are_named_in_the_registry_only():
    import gan.models
    import gan.registry

    assert gan.models.FAMILIES is gan.registry.FAMILIES
    assert set(gan.registry.FAMILIES) == {spec.family for spec in gan.registry.list_specs()}


def _string_constants(tree: ast.AST) -> list[ast.Constant]:
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings]


def test_no_model_is_named_in_code_outside_the_registry():
    names = set(gan.list_models())  # also "mnist-gan", a family's name too: the registry names families
    found = []
    for module, path in _modules().items():
        if module == "gan.registry":
            continue
        for const in _string_constants(ast.parse(path.read_text())):
            if const.value in names:
                found.append(f"{path.relative_to(ROOT)}:{const.lineno} {const.value!r}")
    assert not found, "model names belong in gan/registry.py:\n" + "\n".join(found)


def test_the_app_names_no_model_even_inside_a_sentence():
    """The app's text takes a model's name from the registry ("frog for cifar10-gan" is built from
    cifar10-gan's entry), so a model renamed or removed there leaves no stale mention in the UI. (The
    library's CLI help and error messages may name one as an example.)"""
    names = sorted(gan.list_models(), key=len, reverse=True)
    pattern = re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, names)) + r")(?![\w-])")
    found = []
    for module, path in _modules().items():
        if module == "app" or module.startswith("forger_app"):
            for const in _string_constants(ast.parse(path.read_text())):
                if pattern.search(const.value):
                    found.append(f"{path.relative_to(ROOT)}:{const.lineno} {const.value!r}")
    assert pattern.search("train it (frog for cifar10-gan)") and not pattern.search("cyclegan-mnist2digitsx")
    assert not found, "the app names models only through the registry:\n" + "\n".join(found)
