/* autograd_core._gemm_call: kernels.gemm's common case, called from Python without cffi.
 *
 * Why it exists. At n = 64 a product takes ~4.8 us in the C GEMM, and numpy's whole
 * np.matmul ~5.7 us. Through cffi the same product cost ~6.7 us: the Python around the
 * call (three ffi.from_buffer, np.empty, the checks, cffi's argument conversion and its
 * GIL release) is ~1.8 us, where numpy's is ~0.9. Written against the CPython and numpy
 * C APIs, that work is a few struct reads and one allocation.
 *
 * It holds no kernel. bind() hands it the addresses of the cffi extension's
 * ag_sgemm_product / ag_dgemm_product (kernels/gemm.py does so at import), so the GEMM,
 * its thread count and its SIMD level stay one piece of state in autograd_core._kernels.
 *
 *   gemm(a, b, trans_a, trans_b) -> C = op(a) @ op(b), a new C-contiguous array, or None
 *
 * None means "not the common case": kernels.gemm then takes its general path, which
 * checks everything, raises the errors users see, and reads views in place. The common
 * case: a and b exact numpy arrays, 2-D, both float32 or both float64 in native byte
 * order, C-contiguous and aligned (read-only is fine: they are only read); trans_a and
 * trans_b exactly True or False; the inner sizes equal; bind() called. Checking is all
 * this file does beyond the call, so a case it gets wrong can only be sent the general
 * way, never computed differently. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <stdint.h>

typedef void (*sgemm_product)(int transposes, int64_t m, int64_t n, int64_t k, const float *a,
                              int64_t lda, const float *b, int64_t ldb, float *c);
typedef void (*dgemm_product)(int transposes, int64_t m, int64_t n, int64_t k, const double *a,
                              int64_t lda, const double *b, int64_t ldb, double *c);

static sgemm_product float_product = NULL;
static dgemm_product double_product = NULL;

/* Products of at least this many multiply-adds run with the GIL released, so that other
 * Python threads go on meanwhile (the 100^3 product takes ~20 us). Below it the GIL is
 * kept: releasing and taking it back costs about as much as a 16^3 product. */
#define RELEASE_GIL_WORK ((int64_t)1 << 18)

/* The common case for one operand: an exact ndarray, 2-D, of typenum in native byte
 * order, C-contiguous and aligned. */
static int common_operand(PyObject *x, int typenum) {
    if (!PyArray_CheckExact(x))
        return 0;
    PyArrayObject *array = (PyArrayObject *)x;
    return PyArray_NDIM(array) == 2 && PyArray_TYPE(array) == typenum && PyArray_ISNOTSWAPPED(array)
           && PyArray_ISCARRAY_RO(array);
}

static PyObject *gemm(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "_gemm_call.gemm: got %zd arguments, expected 4 (a, b, trans_a, trans_b)",
                     nargs);
        return NULL;
    }
    if (float_product == NULL || !PyArray_CheckExact(args[0]))
        Py_RETURN_NONE;
    const int typenum = PyArray_TYPE((PyArrayObject *)args[0]);
    if ((typenum != NPY_FLOAT32 && typenum != NPY_FLOAT64) || !common_operand(args[0], typenum)
            || !common_operand(args[1], typenum))
        Py_RETURN_NONE;
    if ((args[2] != Py_True && args[2] != Py_False) || (args[3] != Py_True && args[3] != Py_False))
        Py_RETURN_NONE;
    PyArrayObject *a = (PyArrayObject *)args[0], *b = (PyArrayObject *)args[1];
    const int trans_a = args[2] == Py_True, trans_b = args[3] == Py_True;
    const npy_intp *a_shape = PyArray_DIMS(a), *b_shape = PyArray_DIMS(b);
    const int64_t m = trans_a ? a_shape[1] : a_shape[0], k = trans_a ? a_shape[0] : a_shape[1];
    const int64_t n = trans_b ? b_shape[0] : b_shape[1], k_b = trans_b ? b_shape[1] : b_shape[0];
    if (k != k_b)
        Py_RETURN_NONE;  /* the general path raises, naming the shapes */
    npy_intp c_shape[2] = {(npy_intp)m, (npy_intp)n};
    PyObject *c = PyArray_SimpleNew(2, c_shape, typenum);
    if (c == NULL)
        return NULL;
    /* lda and ldb are the stored row lengths (C-contiguous); the C entry returns at once
     * for m or n == 0 and writes zeros for k == 0. */
    const int transposes = trans_a + 2 * trans_b;
    const int release = (double)m * (double)n * (double)k >= (double)RELEASE_GIL_WORK;  /* no int64 overflow */
    PyThreadState *saved = release ? PyEval_SaveThread() : NULL;
    if (typenum == NPY_FLOAT32)
        float_product(transposes, m, n, k, (const float *)PyArray_DATA(a), a_shape[1],
                      (const float *)PyArray_DATA(b), b_shape[1], (float *)PyArray_DATA((PyArrayObject *)c));
    else
        double_product(transposes, m, n, k, (const double *)PyArray_DATA(a), a_shape[1],
                       (const double *)PyArray_DATA(b), b_shape[1], (double *)PyArray_DATA((PyArrayObject *)c));
    if (release)
        PyEval_RestoreThread(saved);
    return c;
}

/* bind(float_address, double_address): the addresses (ints) of ag_sgemm_product and
 * ag_dgemm_product; bind(0, 0) unbinds, and gemm then always answers None. */
static PyObject *bind(PyObject *module, PyObject *args) {
    (void)module;
    unsigned long long float_address, double_address;
    if (!PyArg_ParseTuple(args, "KK:bind", &float_address, &double_address))
        return NULL;
    if ((float_address == 0) != (double_address == 0)) {
        PyErr_SetString(PyExc_ValueError, "_gemm_call.bind: got one address of zero, expected both or neither");
        return NULL;
    }
    float_product = (sgemm_product)(uintptr_t)float_address;
    double_product = (dgemm_product)(uintptr_t)double_address;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"gemm", (PyCFunction)(void (*)(void))gemm, METH_FASTCALL,
     "gemm(a, b, trans_a, trans_b): op(a) @ op(b) for kernels.gemm's common case, else None."},
    {"bind", bind, METH_VARARGS, "bind(float_address, double_address): the C GEMM entries to call."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "_gemm_call",
    "kernels.gemm's common case called without cffi (see csrc/python/gemm_call.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__gemm_call(void) {
    import_array();  /* numpy's C API; returns NULL with ImportError set when it fails */
    return PyModule_Create(&module_definition);
}
