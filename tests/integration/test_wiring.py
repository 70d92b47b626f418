"""How the app is put together: no import cycles, and a test app built from its config alone."""

import ast
from pathlib import Path

import consult
from consult import create_app
from consult.realtime import LocalHub

PACKAGE = Path(consult.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_at_load(path: Path) -> set[str]:
    """The package's modules that `path` imports when it loads (not those inside functions)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        target = f"{base}.{node.module}" if node.module else base
        for alias in node.names:
            submodule = f"{target}.{alias.name}"
            found.add(submodule if _exists(submodule) else target)
    return found - {name}


def _exists(module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir()


def test_no_module_of_the_package_imports_itself_back_in_a_cycle():
    graph = {_module_name(p): _imports_at_load(p) for p in PACKAGE.rglob("*.py")}
    # A package's __init__ gathering its own modules is not a cycle: skip parent -> child.
    edges = {m: {t for t in targets if not t.startswith(m + ".")} for m, targets in graph.items()}
    cycles, state = [], {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target) :] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_a_test_app_ignores_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("DISCONNECT_GRACE_SECONDS", "999")
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"})
    assert app.config["REDIS_URL"] is None
    assert app.config["DISCONNECT_GRACE_SECONDS"] == 30
    assert isinstance(app.extensions["consult"].hub, LocalHub)


def test_a_deployment_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'd.db'}")
    monkeypatch.setenv("DISCONNECT_GRACE_SECONDS", "45")
    app = create_app()
    assert app.config["DISCONNECT_GRACE_SECONDS"] == 45.0
    assert app.config["DATABASE_URL"].endswith("d.db")
