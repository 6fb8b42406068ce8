"""Type stub of the optional C extension (``_wirec.c``); see ``wire.py`` for how it is used."""

from collections.abc import Sequence

from typing_extensions import Buffer

def split_write_request(
    buf: Buffer, /
) -> tuple[list[bytes], list[bytes], bytearray, bytearray, bytearray, bytearray, list[int]]: ...
def decode_series_list(
    contents: Sequence[Buffer], /
) -> tuple[list[bytes], bytearray, bytearray, bytearray, bytearray, list[int]]: ...
def number_points(data: Buffer, /) -> tuple[list[bytes], list[int], list[bytes | None]] | None: ...
def append_samples(prefixes: list[bytes], values: list[float], stamps: list[int], /) -> list[bytes]: ...
def summary_points(
    data: Buffer, /
) -> tuple[list[tuple[bytes, str, bytes, tuple[float, ...]]], list[int], list[list[float]]] | None: ...
def v2_series(
    raw: Buffer, low: int, high: int, /
) -> tuple[list[bytes | None], bytes, list[int], int, int, int] | None: ...
