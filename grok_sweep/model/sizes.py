"""The model's sizes from a job's config, without building it: read by the model, the trainer and the memory
estimate (run/resources.py), so that each rule is written once."""

from __future__ import annotations

SEQ_LEN = 3  # a, b, "="
# Folding the MLP into per-token tables (forward.py) does less arithmetic but runs more, smaller kernels:
# measured faster at width 128 (nanda2023) and slower at widths 64 and 32 (docs/performance/fold.md)
FOLD_MIN_WIDTH = 128


def vocab(modulus: int) -> int:
    """p numbers and "="."""
    return modulus + 1


def mlp_width(cfg) -> int:  # noqa: ANN001 - a job's config
    """model.mlp_width, where null means 4 * width (Nanda et al. 2023)."""
    return cfg.model.mlp_width or 4 * cfg.width


def folds(layers: int, width: int) -> bool:
    """Whether the forward folds the MLP into per-token tables (forward.py): one block, width >= FOLD_MIN_WIDTH."""
    return layers == 1 and width >= FOLD_MIN_WIDTH


def n_params(modulus: int, width: int, layers: int, mlp: int) -> int:
    """The GPT's parameter count: embeddings, blocks (attention, MLP with biases), unembedding."""
    d = width
    return vocab(modulus) * d + SEQ_LEN * d + layers * (4 * d * d + 2 * d * mlp + mlp + d) + d * modulus
