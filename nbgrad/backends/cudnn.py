"""cuDNN: not available. ``enabled``, ``benchmark``, ``deterministic`` and ``allow_tf32`` may be set."""
enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available():
    return False


def version():
    return None
