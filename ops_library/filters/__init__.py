"""Filters ops: one file per op, named as in Data-Juicer."""
