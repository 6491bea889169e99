"""Apple's Metal back end: not available, not built."""


def is_available():
    return False


def is_built():
    return False
