"""The refining rule of an adaptive phase diagram: which points of a plane of two swept keys to run next.

Points live on a lattice: each axis's range is cut into `(start - 1) * 2**depth` equal steps (equal steps of the
logarithm on a log axis), so a point is a pair of integers and no point is ever run twice. Round 0 is the coarse
grid, `start` points per axis; its cells are squares of `2**depth` steps. Each later round splits every leaf cell
whose points (its corners, and any point a finer neighbour put on its edges) do not all share a label, adding the
new corners of its four children (edge midpoints and centre) that are not run yet. With a budget of points, the
cells of the largest disagreement go first: most distinct labels, then the most even split between them, then the
largest cell, then the lowest on the plane (the rule is deterministic, so a resumed sweep re-derives the same
plan from the labels it finds). A cell a round cannot afford stays a leaf. At most `depth` rounds follow the
coarse one, and no cell gets smaller than one lattice step.

Pure: the labels come from the caller (aggregation's phase of each point; the sweeper runs the jobs).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Point = tuple[int, int]  # lattice coordinates (i on the first axis, j on the second)
TIE = "tie"  # a point whose replicates' labels split evenly between the most common ones


@dataclass(frozen=True)
class Axis:
    """One swept key's range: `lo` to `hi`, linear or (log=True) logarithmic."""

    key: str
    lo: float
    hi: float
    log: bool = False

    def value(self, step: int, steps: int) -> float:
        """The value `step` lattice steps from `lo`, of `steps` in all."""
        if self.log:
            a, b = math.log(self.lo), math.log(self.hi)
            return math.exp(a + (b - a) * step / steps)
        return self.lo + (self.hi - self.lo) * step / steps

    @functools.cache  # noqa: B019 - a few small frozen axes per sweep; text() asks for every value written
    def digits(self, steps: int) -> int:
        """Significant digits a value is written with: 3, or more where neighbouring lattice values would
        otherwise read the same (folder names stay short, and no two points share one)."""
        for d in range(3, 18):
            if len({f"{self.value(k, steps):.{d}g}" for k in range(steps + 1)}) == steps + 1:
                return d
        return 17

    def text(self, step: int, steps: int) -> str:
        """The value as the job's override writes it (see digits)."""
        return f"{self.value(step, steps):.{self.digits(steps)}g}"


@dataclass(frozen=True)
class Cell:
    """A square of the lattice: corner (i, j) and side `size` steps."""

    i: int
    j: int
    size: int

    def corners(self) -> list[Point]:
        s = self.size
        return [(self.i, self.j), (self.i + s, self.j), (self.i, self.j + s), (self.i + s, self.j + s)]

    def children(self) -> list[Cell]:
        h = self.size // 2
        return [Cell(self.i + a, self.j + b, h) for b in (0, h) for a in (0, h)]

    def contains(self, p: Point) -> bool:
        return self.i <= p[0] <= self.i + self.size and self.j <= p[1] <= self.j + self.size


def point_label(labels: Iterable[str]) -> str:
    """One point's label from its replicates' (phases, or a status for a job that failed or diverged): the most
    common, or TIE where the most common ones are equally frequent."""
    counts = Counter(labels).most_common()
    if not counts:
        raise ValueError("a point with no labels")
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return TIE
    return counts[0][0]


@dataclass
class Plan:
    """The lattice of a refine sweep: `start` coarse points per axis, `depth` halvings, at most `max_points`."""

    start: int
    depth: int
    max_points: int
    steps: int = field(init=False)  # lattice steps per axis
    leaves: list[Cell] = field(init=False)  # the cells not split (yet)
    points: list[Point] = field(init=False)  # in the order they were added: round by round
    rounds: list[list[Point]] = field(init=False)

    def __post_init__(self) -> None:
        if self.start < 2 or self.depth < 0 or self.max_points < self.start**2:
            raise ValueError(f"start={self.start} (>= 2), depth={self.depth} (>= 0) and max_points="
                             f"{self.max_points} (>= start^2) do not make a plan")  # fmt: skip
        side = 2**self.depth
        self.steps = (self.start - 1) * side
        self.points = [(a * side, b * side) for b in range(self.start) for a in range(self.start)]
        self.rounds = [list(self.points)]
        self.leaves = [Cell(a * side, b * side, side) for b in range(self.start - 1) for a in range(self.start - 1)]

    def restore(self, rounds: list[list[Point]]) -> None:
        """The plan as it stood after `rounds` (the coarse grid first): a leaf was split iff its centre was run,
        since splitting a cell is what adds its centre."""
        if not rounds or sorted(rounds[0]) != sorted(self.rounds[0]):
            raise ValueError("the first round is not this plan's coarse grid")
        self.rounds = [list(r) for r in rounds]
        self.points = [p for r in self.rounds for p in r]
        have, leaves, todo = set(self.points), [], list(self.leaves)
        while todo:
            cell = todo.pop()
            centre = (cell.i + cell.size // 2, cell.j + cell.size // 2)
            if cell.size > 1 and centre in have:
                todo.extend(cell.children())
            else:
                leaves.append(cell)
        self.leaves = sorted(leaves, key=lambda c: (c.j, c.i, -c.size))

    def boundary(self, labels: dict[Point, str]) -> list[Cell]:
        """The leaves whose points do not all share a label, where the refinement ended: the boundary's segments."""
        return [c for c in self.leaves if self.disagreement(c, labels)[0] > 1]

    def disagreement(self, cell: Cell, labels: dict[Point, str]) -> tuple[int, float]:
        """How many distinct labels the cell's points have, and the share of the least common of them (points
        without a label yet are left out)."""
        counts = Counter(labels[p] for p in self.points if cell.contains(p) and p in labels).values()
        return len(counts), min(counts, default=0) / max(sum(counts), 1)

    def next_round(self, labels: dict[Point, str]) -> list[Point]:
        """Split the leaves that disagree (as the budget allows) and return the new points, none if the refinement
        is done. `labels` holds a label for every point so far."""
        if len(self.rounds) > self.depth:
            return []
        score = {c: self.disagreement(c, labels) for c in self.leaves if c.size > 1}
        split = sorted((c for c, (distinct, _) in score.items() if distinct > 1),
                       key=lambda c: (-score[c][0], -score[c][1], -c.size, c.j, c.i))  # fmt: skip
        have, new, chosen = set(self.points), [], set()
        for cell in split:
            extra = [p for child in cell.children() for p in child.corners() if p not in have]
            extra = list(dict.fromkeys(extra))  # children share corners
            if len(self.points) + len(new) + len(extra) > self.max_points:
                continue
            new += extra
            have.update(extra)
            chosen.add(cell)
        self.leaves = [k for c in self.leaves for k in (c.children() if c in chosen else [c])]
        if new:
            self.points += new
            self.rounds.append(new)
        return new

    def value(self, axes: tuple[Axis, Axis], p: Point) -> tuple[float, float]:
        return axes[0].value(p[0], self.steps), axes[1].value(p[1], self.steps)

    def label_grid(self, labels: dict[Point, str]) -> dict[Point, str]:
        """label_at of every lattice point, leaf by leaf (one pass, not one search per point)."""
        out: dict[Point, str] = {}
        for cell in self.leaves:
            run = [q for q in self.points if cell.contains(q) and q in labels]
            for b in range(cell.j, cell.j + cell.size + 1):
                for a in range(cell.i, cell.i + cell.size + 1):
                    if (a, b) not in out and run:
                        out[(a, b)] = labels.get((a, b)) or labels[_nearest((a, b), run)]
        return out

    def label_at(self, p: Point, labels: dict[Point, str]) -> str:
        """The label the refined diagram gives any lattice point: that of the nearest point run in the leaf that
        contains it (its own, where it was run)."""
        if p in labels:
            return labels[p]
        cell = next(c for c in self.leaves if c.contains(p))
        return labels[_nearest(p, [q for q in self.points if cell.contains(q)])]


def _nearest(p: Point, run: list[Point]) -> Point:
    """The run point nearest p (the lowest on the plane among equally near ones)."""
    return min(run, key=lambda q: ((q[0] - p[0]) ** 2 + (q[1] - p[1]) ** 2, q[1], q[0]))


def refine(plan: Plan, label: Callable[[list[Point]], dict[Point, str]]) -> dict[Point, str]:
    """Run the plan to its end: `label` gives the labels of a round's new points (the sweeper trains them)."""
    labels = label(plan.points)
    while new := plan.next_round(labels):
        labels.update(label(new))
    return labels
