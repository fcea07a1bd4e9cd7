"""Small utilities of every stage, standard library only: atomic files and one-line errors."""
