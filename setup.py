"""Build settings that pyproject.toml cannot express: the optional native wire decoder.

``novacron.protocols._wirec`` is plain C against the CPython API. It is optional: without a compiler
the build skips it and ``novacron.protocols.wire`` uses its numpy decoder (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "novacron.protocols._wirec",
            sources=["layers/novacron/protocols/_wirec.c"],
            optional=True,
        )
    ]
)
