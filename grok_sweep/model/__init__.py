"""What learns: the model families (family.py): the GPT of Nanda et al. (gpt.py) and the same function computing only
what the loss reads (forward.py), K GPTs stacked (packed.py), the MLPs of Prieto et al. (mlp.py) and Gromov
(quadratic.py); the loss (loss.py), the transformer's progress measures (measures.py), every family's IPR
(weight_measures.py), and the sizes (sizes.py).

Importing this package imports no tinygrad: sizes.py is what the config checks and the memory estimate read.
"""
