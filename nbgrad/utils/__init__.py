"""Utilities: batching data (``nbgrad.utils.data``)."""
