"""The refining rule of adaptive phase diagrams on synthetic phase maps whose boundary is known (no training)."""

from __future__ import annotations

import math

import pytest

from grok_sweep.detect.refine import TIE, Axis, Cell, Plan, point_label, refine


def _truth(kind: str, steps: int):
    """A phase map of the unit square, read at lattice points."""

    def line(u: float, v: float) -> str:
        return "grokking" if u + 0.6 * v < 0.7 else "memorization"

    def circle(u: float, v: float) -> str:
        return "comprehension" if (u - 0.55) ** 2 + (v - 0.4) ** 2 < 0.3**2 else "confusion"

    def checker(u: float, v: float) -> str:  # two boundaries that cross at (0.4, 0.6): a checkerboard corner
        return "grokking" if (u < 0.4) == (v < 0.6) else "memorization"

    f = {"line": line, "circle": circle, "checker": checker}[kind]
    return lambda p: f(p[0] / steps, p[1] / steps)


def _run(kind: str, start: int = 5, depth: int = 3, max_points: int = 10_000):
    plan = Plan(start, depth, max_points)
    truth = _truth(kind, plan.steps)
    labels = refine(plan, lambda pts: {p: truth(p) for p in pts})
    dense = [(i, j) for i in range(plan.steps + 1) for j in range(plan.steps + 1)]
    agree = sum(plan.label_at(p, labels) == truth(p) for p in dense) / len(dense)
    return plan, labels, agree, len(dense)


@pytest.mark.parametrize("kind", ["line", "checker"])
def test_straight_boundaries_are_found_exactly_with_a_fraction_of_the_dense_grid(kind):
    plan, _, agree, dense = _run(kind)
    assert agree == 1.0  # a straight boundary leaves no cell whose corners agree while it crosses it
    assert len(plan.points) < 0.5 * dense, (len(plan.points), dense)
    assert len(set(plan.points)) == len(plan.points)  # no point twice


def test_a_curved_boundary_is_found_to_within_a_few_percent():
    plan, _, agree, dense = _run("circle")
    assert agree >= 0.97 and len(plan.points) < 0.6 * dense, (agree, len(plan.points), dense)


def test_only_the_cells_the_boundary_crosses_are_split():
    plan, labels, _, _ = _run("line")
    for cell in plan.leaves:  # with budget to spare, every leaf bigger than a step agrees
        if cell.size > 1:
            assert plan.disagreement(cell, labels)[0] == 1, cell
    assert len(plan.rounds) == 4 and len(plan.rounds[0]) == 25  # the coarse grid, then depth rounds


def test_a_uniform_map_stops_after_the_coarse_grid():
    plan = Plan(4, 3, 1000)
    refine(plan, lambda pts: dict.fromkeys(pts, "grokking"))
    assert len(plan.points) == 16 and len(plan.rounds) == 1


def test_the_budget_goes_to_the_largest_disagreement_first():
    # one cell's corners hold three labels, another's two: a budget for one split takes the first
    plan = Plan(3, 2, 9 + 5)  # 9 coarse points; a split adds 5
    three = {(0, 0): "a", (4, 0): "b", (0, 4): "c"}  # the lower-left cell: a, b, c, a
    labels = {p: three.get(p, "a") for p in plan.points}
    labels[(8, 8)] = "b"  # the upper-right cell: a, a, a, b
    new = plan.next_round(labels)
    assert set(new) == {(2, 0), (0, 2), (4, 2), (2, 4), (2, 2)} and len(plan.points) == 14
    assert plan.next_round({**labels, **dict.fromkeys(new, "a")}) == []  # nothing else fits


def test_the_plan_is_derived_again_from_the_labels_of_a_killed_sweep():
    plan, labels, _, _ = _run("circle")
    again = Plan(5, 3, 10_000)  # a resumed sweep reads the labels from its job folders, round by round
    while again.next_round({p: labels[p] for p in again.points}):
        pass
    assert again.points == plan.points and again.leaves == plan.leaves


def test_a_point_is_labelled_by_the_majority_of_its_replicates():
    assert point_label(["grokking", "grokking", "memorization"]) == "grokking"
    assert point_label(["grokking", "memorization"]) == TIE
    assert point_label(["failed", "failed", "grokking"]) == "failed"  # a failure is its own label, never a phase
    with pytest.raises(ValueError):
        point_label([])


def test_axes_map_the_lattice_onto_linear_and_log_ranges():
    lin, log = Axis("train_ratio", 0.2, 0.6), Axis("weight_decay", 0.03, 3.0, log=True)
    assert [round(lin.value(s, 4), 12) for s in range(5)] == [0.2, 0.3, 0.4, 0.5, 0.6]
    assert math.isclose(log.value(2, 4), 0.3) and math.isclose(log.value(4, 4), 3.0)


def test_cells_split_into_four_and_plans_refuse_what_cannot_be_run():
    assert Cell(0, 0, 4).children() == [Cell(0, 0, 2), Cell(2, 0, 2), Cell(0, 2, 2), Cell(2, 2, 2)]
    for start, depth, budget in ((1, 2, 10), (3, -1, 10), (3, 2, 8)):
        with pytest.raises(ValueError):
            Plan(start, depth, budget)
