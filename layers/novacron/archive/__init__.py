"""The Parquet archive: raw stream records converted to Parquet per tenant and date, and read back.

``keys`` names every object, ``convert`` turns raw records into sorted, de-duplicated Arrow tables and
Parquet files, ``manifest`` remembers what each received-hour has been converted from, ``archiver``
drives a conversion run and ``reader`` reads the archive back with partition and row-group pruning.
Pure logic: object storage comes in through the ``ArchiveObjects`` protocol (adapters/s3_archive.py).
"""
