"""setup.py exists only to register the cffi build of csrc/ (metadata lives in pyproject.toml)."""
from setuptools import setup

setup(cffi_modules=["csrc/build_kernels.py:ffibuilder"])
