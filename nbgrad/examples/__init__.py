"""Runnable examples: ``python -m nbgrad.examples.autograd_tutorial``."""
