"""Series encodings in bulk: label fields followed by one sample, without a Python step per byte.

Receivers that map another protocol to Prometheus series (CloudWatch metric streams, OTLP) end with
many series of one sample each. ``append_samples`` writes those in one call of the C extension when
it is built, and with ``encode_sample`` (the reference, byte for byte what protobuf writes) otherwise.
"""

from __future__ import annotations

from novacron.protocols import wire
from novacron.protocols.timeseries import encode_sample


def append_samples(prefixes: list[bytes], values: list[float], stamps: list[int]) -> list[bytes]:
    """``prefixes[i]`` (a series' ``TimeSeries.labels`` fields) + the sample ``values[i]`` at ``stamps[i]`` ms.

    Timestamps must fit a signed 64-bit integer.
    """
    native = wire.native_module()
    if native is not None:
        joined: list[bytes] = native.append_samples(prefixes, values, stamps)
        return joined
    return append_samples_python(prefixes, values, stamps)


def append_samples_python(prefixes: list[bytes], values: list[float], stamps: list[int]) -> list[bytes]:
    """The reference of the C extension's ``append_samples``."""
    if not len(prefixes) == len(values) == len(stamps):
        raise ValueError("append_samples: prefixes, values and stamps differ in length")
    return [prefix + encode_sample(value, stamp) for prefix, value, stamp in zip(prefixes, values, stamps, strict=True)]
