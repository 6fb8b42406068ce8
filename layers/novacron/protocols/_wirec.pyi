"""Type stub of the optional C extension (``_wirec.c``); see ``wire.py`` for how it is used."""

from collections.abc import Sequence

from typing_extensions import Buffer

def split_write_request(
    buf: Buffer, /
) -> tuple[list[bytes], list[bytes], bytearray, bytearray, bytearray, bytearray, list[int]]: ...
def decode_series_list(
    contents: Sequence[Buffer], /
) -> tuple[list[bytes], bytearray, bytearray, bytearray, bytearray, list[int]]: ...
