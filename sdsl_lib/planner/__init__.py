"""The planner (``sdsl plan``): the draft to train, its lookahead and its gain, with intervals.

``request``        the inputs and their one set of rules (:class:`PlanRequest`, shared with the CLI)
``uncertainty``    the draws: cluster bootstrap of the plane by target, residual scatter, law draws
``core``           :func:`plan`: the chain of laws at the point and per draw
``hardware``       accelerator presets (and their calibration from measured step times)
``hardware_plan``  tokens per second on a roofline with the KV cache, and the memory check
``report``         the :class:`Plan`, its JSON form and its text table
"""

from sdsl_lib.planner.core import plan
from sdsl_lib.planner.request import UNCERTAINTY_MODES, PlanRequest, RequestError

__all__ = ["UNCERTAINTY_MODES", "PlanRequest", "RequestError", "plan"]
