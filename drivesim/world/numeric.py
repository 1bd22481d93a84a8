"""`real_array`: user input as a float64 array, or a ValueError that names the field.

Shared by the procedural world and the learned env, so both refuse the same hostile values
(strings, bools, complex numbers, objects, Python ints beyond float range).
"""

from __future__ import annotations

import reprlib
from typing import Any

import numpy as np


def real_array(value: Any, field: str, expected: str) -> np.ndarray:
    """`value` as a float64 array; ValueError naming `field` unless it holds real numbers
    (ints or floats; not strings, complex, bool or Python ints beyond float range)."""
    try:
        arr = np.asarray(value)
        if arr.dtype == object:
            arr = arr.astype(np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{field}={reprlib.repr(value)} is not allowed; expected {expected}") from None
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{field} has dtype {arr.dtype} (value {reprlib.repr(value)}); expected {expected}")
    return arr.astype(np.float64)
