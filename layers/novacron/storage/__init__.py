"""Storage logic: the hot-tier block format and keys, the writer and the reader (no AWS here)."""
