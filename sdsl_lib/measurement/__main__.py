"""``python -m sdsl_lib.measurement``: the measurement command (see :mod:`sdsl_lib.measurement.pipeline`)."""

import sys

from sdsl_lib.measurement.pipeline import main

sys.exit(main())
