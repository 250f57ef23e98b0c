"""Process start time, recorded by the first import so start-up can be measured."""

import time

STARTED_AT = time.perf_counter()
