"""What learns: the GPT of Nanda et al. (gpt.py), the same function computing only what the loss reads
(forward.py), its loss (loss.py), its progress measures (measures.py), and its sizes (sizes.py).

Importing this package imports no tinygrad: sizes.py is what the config checks and the memory estimate read.
"""
