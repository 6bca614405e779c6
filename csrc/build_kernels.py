"""cffi builder: compiles every csrc/*.c into the extension module autograd_core._kernels.

Every file is compiled for baseline x86-64 (no -mavx2 / -march=native): the ISA-specific
code (gemm_x86.c, conv2d_x86.c, winograd_x86.c, pool_x86.c, rnn_cells_x86.c, optim_x86.c,
activation_x86.c, norm_x86.c) carries its own target attributes or `#pragma GCC target`, and runs
only when ag_get_simd_level() allows it. special.c (erf, erfc) is scalar libm calls
with no ISA-specific part; the extension links libm for it. softmax.c is portable loops
that the compiler vectorises at the baseline.

The C API is the declarations in kernels.h between the CFFI-BEGIN/CFFI-END markers.
Environment knobs (for CI and debugging, not for users):
  AUTOGRAD_CORE_SANITIZE=1   build with -fsanitize=address,undefined and -O1 -g
  AUTOGRAD_CORE_NO_OPENMP=1  build without OpenMP even where the compiler supports it
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))


def _cdef_from_header(path):
    with open(path) as f:
        text = f.read()
    start = text.index("/* CFFI-BEGIN */") + len("/* CFFI-BEGIN */")
    end = text.index("/* CFFI-END */")
    return text[start:end]


def _compiler_accepts(flags):
    """True when the C compiler can build and link a tiny OpenMP program with flags."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc.split()[0]) is None:
        return False
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        c_file = os.path.join(tmp, "t.c")
        with open(c_file, "w") as f:
            f.write(src)
        cmd = cc.split() + [c_file, "-o", os.path.join(tmp, "t")] + flags
        try:
            return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        except OSError:
            return False


def _flags():
    compile_args = ["-std=c99", "-O3", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"]
    link_args = []
    if os.environ.get("AUTOGRAD_CORE_SANITIZE") == "1":
        compile_args = ["-std=c99", "-O1", "-g", "-fno-omit-frame-pointer",
                        "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
        link_args += ["-fsanitize=address,undefined"]
    if sys.platform != "win32" and os.environ.get("AUTOGRAD_CORE_NO_OPENMP") != "1" \
            and _compiler_accepts(["-fopenmp"]):
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    return compile_args, link_args


ffibuilder = FFI()
ffibuilder.cdef(_cdef_from_header(os.path.join(HERE, "kernels.h")))
_compile_args, _link_args = _flags()
ffibuilder.set_source(
    "autograd_core._kernels",
    '#include "kernels.h"',
    # setuptools wants source paths relative to the project root, where pip runs us.
    sources=sorted(os.path.relpath(p) for p in glob.glob(os.path.join(HERE, "*.c"))),
    # The drivers are include templates (*_driver.h, *_rows.h, *_level.h): editing one must rebuild.
    depends=sorted(os.path.relpath(p) for p in glob.glob(os.path.join(HERE, "*.h"))),
    include_dirs=[HERE],
    # libm's erff / erf / erfcf / erfc (special.c); the C runtime has it built in on Windows
    libraries=[] if sys.platform == "win32" else ["m"],
    extra_compile_args=_compile_args,
    extra_link_args=_link_args,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
