"""The live view of a sweep: every job's state read from its folder (state.py), drawn as a table on a terminal
or as status lines in a log (live.py). Reads the folders only: no tinygrad, no model, no trainer."""
