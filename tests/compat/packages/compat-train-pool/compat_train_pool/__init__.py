"""Compatibility corpus: multiprocessing pools inside train()."""
