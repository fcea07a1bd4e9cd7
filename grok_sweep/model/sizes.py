"""The model's sizes from a job's config, without building it: read by the model, the trainer and the memory
estimate (run/resources.py), so that each rule is written once."""

from __future__ import annotations

SEQ_LEN = 3  # a, b, "="
# Folding the MLP into per-token tables (forward.py) does less arithmetic but runs more, smaller kernels:
# measured faster at width 128 (nanda2023) and slower at widths 64 and 32 (docs/performance/fold.md)
FOLD_MIN_WIDTH = 128


def family(cfg) -> str:  # noqa: ANN001 - a job's config
    """The job's model family; a job of an earlier version (no model.name) trained the transformer."""
    return getattr(cfg.model, "name", None) or "transformer"


def vocab(modulus: int) -> int:
    """p numbers and "="."""
    return modulus + 1


def mlp_width(cfg) -> int:  # noqa: ANN001 - a job's config
    """model.mlp_width, where null means 4 * width (Nanda et al. 2023)."""
    return cfg.model.mlp_width or 4 * cfg.width


def folds(layers: int, width: int) -> bool:
    """Whether the forward folds the MLP into per-token tables (forward.py): one block, width >= FOLD_MIN_WIDTH."""
    return layers == 1 and width >= FOLD_MIN_WIDTH


def n_params(cfg) -> int:  # noqa: ANN001 - a job's config
    """The model's parameter count. The GPT: embeddings, blocks (attention, MLP with biases), unembedding."""
    p, d, name = cfg.modulus, cfg.width, family(cfg)
    if name == "quadratic":
        return 2 * p * d + d * p
    if name == "mlp":
        sizes = [2 * p, *[d] * cfg.model.layers, p]
        return sum(a * b + (b if cfg.model.bias else 0) for a, b in zip(sizes, sizes[1:]))  # noqa: B905
    mlp, layers = mlp_width(cfg), cfg.model.layers
    return vocab(p) * d + SEQ_LEN * d + layers * (4 * d * d + 2 * d * mlp + mlp + d) + d * p
