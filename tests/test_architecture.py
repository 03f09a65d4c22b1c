"""The package's shape, read from its code: layers that import only downwards, small modules and
functions. docs/architecture.md draws the same layers."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "research"

# Lowest first; a module imports only modules of lower layers.
LAYERS = [
    ("errors", "names", "provenance", "multiplicity", "replication", "taps"),
    ("journal",),
    ("devices", "storage", "coordination", "activations", "init", "data"),
    ("theory", "ridge", "bracket", "own_model"),
    ("residual", "transformer"),
    ("models", "theory_cache"),
    ("probes", "recipe", "members"),
    ("train", "objectives", "finite_width"),
    ("checkpoint", "asrun", "estimate", "lsuv"),
    ("predictions", "populations", "search", "profile", "crossing"),
    ("verdicts",),
    ("experiment", "compare", "advise", "analysis_cache"),
    ("studies", "render"),
    ("judging",),
    ("extrapolate", "worker", "figures", "dashboard", "export"),
    ("depth_series",),
    ("report",),
    ("sweep",),
    ("commands",),
    ("cli",),
    ("__main__", "__init__"),
]
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 450, 60


def _imports(path: pathlib.Path) -> set[str]:
    """The package's modules that `path` imports (at module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "research":
            found |= {a.name for a in node.names} if node.module == "research" else {node.module.split(".")[1]}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("research.")}
    return found - {path.stem}


def test_every_module_has_a_layer_and_imports_only_lower_ones():
    modules = {p.stem: p for p in PACKAGE.glob("*.py")}
    layer = {m: i for i, names in enumerate(LAYERS) for m in names}
    assert set(modules) == set(layer), "a module missing from LAYERS, or a layer naming no module"
    upward = [(m, d) for m, p in modules.items() for d in _imports(p) if d in layer and layer[d] >= layer[m]]
    assert upward == []  # (importer, imported): same or higher layer, so a circle is impossible


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_modules_and_functions_stay_small(path):
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    functions = (n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    long = [
        (f.name, f.end_lineno - f.lineno + 1) for f in functions if f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_the_layer_check_catches_an_upward_import(tmp_path):
    low = tmp_path / "errors.py"
    low.write_text("from research import report\n")  # the lowest layer reaching for the top
    assert "report" in _imports(low)
