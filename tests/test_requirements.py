"""The README's install (``pip install -r requirements.txt``) brings everything the app and the package
advertise: every third-party module imported anywhere in app.py, forger_app/ and gan/ (lazy imports inside
functions too) is provided by requirements.txt or by what its packages require, unless it is listed in
OPTIONAL with the reason it may be absent.

Building a venv from requirements.txt alone would download gigabytes (torch) on every run; instead the
requirements are resolved against the installed distributions' own metadata (``Requires-Dist``, markers and
extras evaluated), which is what pip would install.
"""
from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCAL = {"gan", "forger_app", "app"}

# modules the code imports that requirements.txt deliberately leaves out, and why each may be missing
OPTIONAL = {
    "spaces": "ZeroGPU hardware only; forger_app.zerogpu.zero_gpu falls back to a plain call without it",
    "accelerate": "training on several processes only; one process needs none of it, and says to install it",
    "torchmetrics": "FID/KID in gan/evaluate/metrics.py only; the offline digit metrics need neither",
    "torch_fidelity": "FID/KID in gan/evaluate/metrics.py only",
    "onnxruntime": "only checks an ONNX export; without it the file is written and the CLI says 'not checked'",
}
# what each advertised feature imports, directly or through a plugin (imageio's FFMPEG plugin loads
# imageio_ffmpeg by name, so no import statement shows it): never optional
FEATURES = {
    "the app": ["gradio", "pandas", "PIL", "numpy", "torch", "torchvision", "safetensors", "huggingface_hub", "tqdm"],
    "video translation (mp4 and gif in, mp4 out)": ["imageio", "imageio.v2", "imageio.v3", "imageio_ffmpeg"],
    "ONNX export (python -m gan export --format onnx)": ["onnx"],
    # Gradio imports it when launched with mcp_server=True; no import statement of ours shows it
    "agents over MCP (python app.py --mcp)": ["mcp", "mcp.server.streamable_http_manager"],
}


def _requirements(path: Path) -> list[Requirement]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        assert not line.startswith("-"), f"{path.name}: {line!r}: requirements.txt is read by Spaces as it is"
        out.append(Requirement(line))
    return out


def _installed_closure(roots: list[Requirement]) -> set[str]:
    """The canonical names of every distribution pip would install for ``roots`` (markers and extras
    evaluated for this Python), read from the installed distributions' metadata."""
    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in roots]
    done_extras: set[tuple[str, frozenset]] = set()
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if (name, extras) in done_extras:
            continue
        done_extras.add((name, extras))
        dist = md.distribution(req.name)  # PackageNotFoundError: a requirement is not even installed here
        assert dist.version in req.specifier or not req.specifier, (req, dist.version)
        seen.add(name)
        for text in dist.requires or []:
            sub = Requirement(text)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if sub.marker is not None and not any(sub.marker.evaluate(env) for env in envs):
                continue
            todo.append((sub, frozenset(sub.extras)))
    return seen


def _imported_modules() -> dict[str, set[str]]:
    """Third-party top-level modules imported anywhere in the app and the package: {module: {files}}."""
    files = [ROOT / "app.py", *(ROOT / "forger_app").rglob("*.py"), *(ROOT / "gan").rglob("*.py")]
    found: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@functools.cache
def _distributions_of_modules() -> dict[str, list[str]]:
    return md.packages_distributions()


def _providers(module: str) -> set[str]:
    return {canonicalize_name(d) for d in _distributions_of_modules().get(module.split(".")[0], [])}


def test_every_import_of_the_app_and_the_package_is_installed_by_requirements_txt():
    closure = _installed_closure(_requirements(ROOT / "requirements.txt"))
    imported = _imported_modules()
    assert {"gradio", "torch", "imageio", "onnx"} <= set(imported)  # the scan sees lazy imports too
    unmet = {}
    for module, files in sorted(imported.items()):
        if module in OPTIONAL:
            continue
        providers = _providers(module)
        if not providers & closure:
            unmet[module] = (sorted(providers) or "not installed here", sorted(files))
    assert not unmet, f"imported but not brought by requirements.txt (add it there, or to OPTIONAL with why): {unmet}"
    # OPTIONAL lists only what is really imported and really not required (else it hides nothing, or too much)
    assert set(OPTIONAL) <= set(imported), set(OPTIONAL) - set(imported)
    assert not any(_providers(m) & closure for m in OPTIONAL), [m for m in OPTIONAL if _providers(m) & closure]


def test_every_advertised_feature_imports_only_what_requirements_txt_brings():
    closure = _installed_closure(_requirements(ROOT / "requirements.txt"))
    for feature, modules in FEATURES.items():
        for module in modules:
            assert module.split(".")[0] not in OPTIONAL, (feature, module)
            if feature != "the app":  # (the app's own modules are imported by every other test file)
                __import__(module)  # importable here, and from a distribution that requirements.txt brings:
            assert _providers(module) & closure, f"{feature} needs {module}, which requirements.txt does not bring"
