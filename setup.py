"""Packaging glue that pyproject.toml cannot express: gen/ installs as ``pug_grpc.gen``.

The generated code is committed at the top of the repository (``gen/``), apart from the
handwritten package; the wheel and editable installs map it under ``pug_grpc.gen``.
"""

from setuptools import find_packages, setup

GENERATED = [f"pug_grpc.gen.{name}" for name in find_packages("gen")]

setup(
    packages=[*find_packages(include=["pug_grpc", "pug_grpc.*"]), "pug_grpc.gen", *GENERATED],
    package_dir={"pug_grpc.gen": "gen"},
)
