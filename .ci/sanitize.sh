#!/usr/bin/env bash
# Runs the C-kernel tests against a build with AddressSanitizer + UndefinedBehaviorSanitizer
# (AUTOGRAD_CORE_SANITIZE=1, see csrc/build_kernels.py). Exits non-zero on any report.
#
# The sanitized extension is built in a throwaway copy of the working tree, so the normal
# editable build in this checkout is left alone. Usage:
#   bash .ci/sanitize.sh [extra pytest args or test files]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python}"
work="$(mktemp -d "${TMPDIR:-/tmp}/autograd_core_sanitize.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Tracked and not-ignored files only: no build outputs (the normal _kernels*.so) come along.
(cd "$repo" && git ls-files -z --cached --others --exclude-standard) \
    | (cd "$repo" && xargs -0 cp --parents -t "$work" 2>/dev/null || true)

cd "$work"
# Every kernel family's tests (csrc/X*.c <-> autograd_core/kernels/X.py <-> tests/test_X*.py),
# and the runtime's. A listed file that is missing is an error, not a silent skip: a
# renamed test file must be renamed here too.
# test_threading_faults.py runs its kernels in fresh interpreters, which inherit the
# sanitized build through PYTHONPATH and LD_PRELOAD; test_kernel_differential.py feeds C
# odd layouts (misaligned ones included), which is what UBSan's alignment check is for.
tests=(tests/test_runtime.py tests/test_gemm_kernels.py tests/test_gemm_call.py tests/test_conv2d_kernels.py tests/test_pool_kernels.py
       tests/test_rnn_kernels.py tests/test_optim_kernels.py tests/test_activation_kernels.py tests/test_elu_bce_kernels.py tests/test_threading_faults.py
       tests/test_special_kernels.py tests/test_norm_kernels.py tests/test_softmax_kernels.py
       tests/test_kernel_differential.py)
for test_file in "${tests[@]}"; do
    if [ ! -f "$test_file" ]; then
        echo "sanitize: ERROR: kernel test file $test_file is missing (renamed? update .ci/sanitize.sh)" >&2
        exit 2
    fi
done

echo "sanitize: building the extension with ASan+UBSan in $work"
# setup.py builds both extensions in place (the cffi kernels, autograd_core._kernels, and
# kernels.gemm's C entry, autograd_core._gemm_call); each reads AUTOGRAD_CORE_SANITIZE.
AUTOGRAD_CORE_SANITIZE=1 "$python" setup.py build_ext --inplace > build.log 2>&1 \
    || { cat build.log; echo "sanitize: build failed"; exit 1; }
ls autograd_core/_kernels*.so autograd_core/_gemm_call*.so > /dev/null \
    || { cat build.log; echo "sanitize: an extension is missing after the build"; exit 1; }

# The ASan runtime must be loaded before Python's own allocations; Python leaks by
# design at exit, hence detect_leaks=0.
libasan="$(${CC:-gcc} -print-file-name=libasan.so)"
export LD_PRELOAD="$libasan"
# Reports also go to files: pytest captures stderr, and a halting report would die with it.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:exitcode=99:log_path=$work/report"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$work/report"
export PYTHONPATH="$work${PYTHONPATH:+:$PYTHONPATH}"
export AUTOGRAD_CORE_BACKEND=c
# the differential test's example count (60 by default): ASan makes each ~5x slower
export AUTOGRAD_CORE_DIFFERENTIAL_EXAMPLES=15

# Make sure the tests really load the sanitized copy, not the checkout's build.
"$python" -c '
import sys
from autograd_core.kernels import runtime
assert runtime.extension_available(), "sanitized extension did not import"
for module in (runtime, runtime.extension):
    assert module.__file__.startswith(sys.argv[1]), "imported %s instead of the sanitized copy" % module.__file__
print("sanitize: using", runtime.extension.__file__)
' "$work"

status=0
"$python" -m pytest -q -p no:cacheprovider "${tests[@]}" "$@" || status=$?
if compgen -G "$work/report*" > /dev/null; then
    cat "$work"/report*
    echo "sanitize: sanitizer report(s) above"
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "sanitize: tests failed (exit status $status)"
    exit "$status"
fi
echo "sanitize: clean"
