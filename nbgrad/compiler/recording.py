"""The switch the op layer consults while ``nbgrad.compile`` captures a function.

``active`` is the recorder of the capture under way (captures run one at a
time, in any thread), None otherwise: every hook in the eager code is one test
of it, so eager ops pay nothing else. The recorder ignores calls from threads
other than the capturing one.
"""
active = None
