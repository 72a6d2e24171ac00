"""The planner (``sdsl plan``): the draft to train, its lookahead and its gain, with intervals.

``core``      the chain of laws with uncertainty draws
``hardware``  hardware presets and the roofline step-time model
"""

from sdsl_lib.planner.core import UNCERTAINTY_MODES, plan

__all__ = ["UNCERTAINTY_MODES", "plan"]
