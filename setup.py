"""setup.py registers the C builds (metadata lives in pyproject.toml):

- the cffi build of csrc/*.c, the kernels (autograd_core._kernels, csrc/build_kernels.py);
- csrc/python/gemm_call.c, kernels.gemm's common case called through the CPython and numpy
  C APIs instead of cffi (autograd_core._gemm_call: no kernel of its own, see the file).
  It is optional: a build that fails leaves kernels.gemm on its cffi path, same results.
"""
import os

from setuptools import Extension, setup


def _gemm_call_extension():
    try:
        import numpy
    except ImportError:  # no numpy to build against: kernels.gemm keeps its cffi path
        return []
    compile_args, link_args = ["-O2"], []
    if os.environ.get("AUTOGRAD_CORE_SANITIZE") == "1":  # as csrc/build_kernels.py does
        compile_args = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                        "-fno-sanitize-recover=undefined"]
        link_args = ["-fsanitize=address,undefined"]
    return [Extension("autograd_core._gemm_call", ["csrc/python/gemm_call.c"],
                      include_dirs=[numpy.get_include()], extra_compile_args=compile_args,
                      extra_link_args=link_args, optional=True)]


setup(cffi_modules=["csrc/build_kernels.py:ffibuilder"], ext_modules=_gemm_call_extension())
