"""The layering of DESIGN.md, checked on the source: every import in autograd_core and
nn (module-level and inside functions alike, since an import inside a function is how a
cycle hides) forms a graph with no cycle, and each layer imports only those below it:

    nn.apps  ->  nn (the library)  ->  autograd_core  ->  autograd_core.kernels  ->  the C extension
"""
import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("autograd_core", "nn")
# compiled from csrc/ by setup.py (absent in a never-built checkout): the cffi kernels and
# kernels.gemm's C entry (csrc/python/gemm_call.c)
EXTENSIONS = ("autograd_core._kernels", "autograd_core._gemm_call")


def _modules():
    """{dotted module name: path} of every .py file in the packages."""
    modules = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                    if parts[-1] == "__init__":
                        parts = parts[:-1]
                    modules[".".join(parts)] = path
    for extension in EXTENSIONS:
        modules[extension] = None
    return modules


def _resolve(module, is_package, level, target):
    """The absolute name of a (possibly relative) import made in `module`."""
    if level == 0:
        return target
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def import_graph():
    """{module: set of project modules it imports}."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        if path is None:
            continue
        is_package = path.endswith("__init__.py")
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, is_package, node.level, node.module)
                # `from package import submodule` imports the submodule
                targets = [source + "." + alias.name if source + "." + alias.name in modules else source
                           for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:  # import a.b.c where c is a name
                    target = target.rpartition(".")[0]
                if target and target != module:
                    edges.add(target)
        graph[module] = edges
    return graph


def _find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return stack[stack.index(child):] + [child]
            if child not in state:
                found = visit(child)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 20, "found only %d modules: is ROOT right?" % len(graph)
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _layer(module):
    if module in EXTENSIONS:
        return 0, "the C extension"
    if module.startswith("nn.apps") or module == "nn.__main__":
        return 4, "nn applications"
    if module.startswith("nn"):
        return 3, "nn library"
    if module.startswith("autograd_core.kernels"):
        return 1, "kernel slices"
    return 2, "autograd_core"


@pytest.mark.parametrize("module", sorted(import_graph()))
def test_each_module_imports_only_layers_below_it(module):
    rank, layer = _layer(module)
    upward = sorted(target for target in import_graph()[module] if _layer(target)[0] > rank)
    assert not upward, "%s (%s) imports %s from a layer above it" % (module, layer, upward)


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The checks above can fail: a made-up graph with a cycle is caught, and so is an
    import from the library into the applications."""
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
    assert _layer("nn.layers")[0] < _layer("nn.apps.cli")[0]
    assert _layer("autograd_core.kernels.gemm")[0] < _layer("autograd_core.tensor")[0]


def _imports_inside_functions(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    return [ast.unparse(node) for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) and node not in tree.body
            and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")]


@pytest.mark.parametrize("module", sorted(name for name, path in _modules().items()
                                          if path and name.startswith("autograd_core")))
def test_autograd_core_imports_nothing_inside_functions(module):
    """An import inside a function is how a cycle hides from the module-level graph; the
    engine's modules import at the top, or the layering is wrong. (nn's applications may
    import optional packages, matplotlib or tqdm, where they are used.)"""
    nested = [line for line in _imports_inside_functions(_modules()[module])
              if any(package in line for package in PACKAGES)]
    assert not nested, "%s imports inside a function: %s" % (module, nested)


def test_the_engine_knows_no_tensor_and_no_op():
    graph = import_graph()
    assert not {"autograd_core.tensor", "autograd_core.function"} & graph["autograd_core.engine"]
    assert not any(target.startswith("autograd_core.ops") for target in graph["autograd_core.engine"])


def test_importing_the_library_loads_no_application():
    """nn/__init__.py aliases the applications' old names (nn.models, nn.cli...) lazily."""
    code = ("import sys, nn, nn.functional, nn.losses, nn.layers, nn.recurrent, nn.autoencoders, nn.optim, "
            "nn.data, nn.checkpoint, nn.init; print(sorted(m for m in sys.modules if m.startswith('nn.apps')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
