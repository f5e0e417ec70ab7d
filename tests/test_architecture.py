"""The package layout as a contract: imports point down the data flow, no cycles, no private imports.

The subpackages are the steps of the flow; a module may import from its own step or from an
earlier one, never from a later one (``report`` may use ``segment``, ``segment`` may not use
``report``). Function-level imports count too: a cycle hidden in a function is still a cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "segmentation_lib"

#: the steps in flow order; a module may import from its own layer and from lower ones
LAYERS: dict[str, int] = {
    "errors": 0, "paths": 0, "formatting": 0,
    "config": 1,
    "data": 2,
    "features": 3,
    "predict": 4,
    "segment": 5,
    "score": 6, "validate": 6,
    "experiment": 7, "engine": 7,
    "describe": 8,
    "report": 9,
    "cli": 10,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, imported names, line) for every import of the kit's own modules."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                out.append(("." * node.level + (node.module or ""), [a.name for a in node.names], node.lineno))
            elif node.module and node.module.split(".")[0] == "segmentation_lib":
                out.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "segmentation_lib"]
    return out


def _step(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _resolve(module: str, names: list[str], modules: dict[str, Path]) -> list[str]:
    """The kit modules an import statement loads (``from pkg import mod`` loads ``pkg.mod``)."""
    targets = [module] if module in modules else []
    targets += [f"{module}.{n}" for n in names if f"{module}.{n}" in modules]
    return targets


def test_no_relative_imports() -> None:
    bad = [f"{m} line {line}: from {mod} import ..." for m, p in _modules().items()
           for mod, _, line in _imports(p) if mod.startswith(".")]
    assert not bad, "use absolute imports (segmentation_lib.<step>.<module>):\n" + "\n".join(bad)


def test_every_module_belongs_to_a_step() -> None:
    unknown = sorted({_step(m) for m in _modules() if m != "segmentation_lib"} - set(LAYERS))
    assert not unknown, f"modules outside the known steps {sorted(LAYERS)}: {unknown} (add the step to LAYERS)"


def test_imports_point_down_the_flow() -> None:
    modules = _modules()
    bad = []
    for m, p in modules.items():
        if m == "segmentation_lib":  # the package's lazy table of public names may name any step
            continue
        here = _step(m)
        for mod, names, line in _imports(p):
            for target in _resolve(mod, names, modules):
                there = _step(target)
                if there == here or not there:
                    continue
                if LAYERS[there] > LAYERS[here] or (LAYERS[there] == LAYERS[here]):
                    bad.append(f"{m} (line {line}) imports {target}: '{here}' comes before '{there}' in the flow")
    assert not bad, "\n".join(bad)


def test_no_private_names_imported_from_another_module() -> None:
    bad = [f"{m} line {line}: from {mod} import {n}" for m, p in _modules().items()
           for mod, names, line in _imports(p) for n in names if n.startswith("_") and not n.startswith("__")]
    assert not bad, "make the helper public (and documented) or move it:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {m: sorted({t for mod, names, _ in _imports(p) for t in _resolve(mod, names, modules)} - {m})
             for m, p in modules.items()}
    # a package __init__ is loaded before its submodules; edges into it are edges into the package
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for m in graph:
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("step", [s for s in LAYERS if (PACKAGE / s).is_dir()])
def test_each_step_is_documented_in_its_package(step: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / step / "__init__.py").read_text(encoding="utf-8")))
    assert doc and "Modules:" in doc
    listed = {w.strip("`,. ") for w in doc.split("Modules:")[1].split()}
    actual = {p.stem for p in (PACKAGE / step).glob("*.py") if p.stem != "__init__"}
    assert actual <= listed, f"segmentation_lib/{step}/__init__.py does not list {sorted(actual - listed)}"


#: every public name ``import segmentation_lib as seg`` offered before the package was laid out by step
PUBLIC_BEFORE_THE_MOVE = (
    "load_config resolve_config SegmentationError DataError ConfigError ModelError PipelineError read_transactions "
    "read_customers attach_customers PRESETS QualityPolicy DataQualityReport clean_transactions load_transactions "
    "make_transactions write_demo_data btyd_summary customer_features RFMScorer load_segment_map validate_segment_map "
    "assign_rfm_segments value_engagement_matrix assign_rule_segments validate_rules segment_summary with_actions "
    "describe_summary rescale_segment_map value_engagement_cuts value_engagement_summary describe_measure "
    "describe_scores describe_cut_points describe_value_engagement describe_segment_map score_ranges score_axis_labels "
    "cohort_table retention_curve describe_retention make_preprocessor CustomerSegmenter sweep_k recommend_k "
    "segment_profiles name_segments SurrogateRules crosstab save_model load_model score_customers internal_quality "
    "stability predictive_validity migration actionability_checks ground_truth_agreement headline_metrics run_pipeline"
).split()


def test_the_public_names_survive_the_move() -> None:
    import segmentation_lib as seg

    missing = [n for n in PUBLIC_BEFORE_THE_MOVE if n not in seg.__all__]
    assert not missing
    assert all(callable(getattr(seg, n)) or n == "PRESETS" for n in PUBLIC_BEFORE_THE_MOVE)
    assert seg.stability.__module__ == "segmentation_lib.validate.resampling"
