"""The paper's tables as data, with their loaders and errata (see :mod:`sdsl_lib.paper.tables`)."""

from sdsl_lib.paper.tables import *  # noqa: F401,F403
from sdsl_lib.paper.tables import __all__  # noqa: F401
