"""The compiled reading: explicit loop kernels, compiled with numba (the optional extra ``compiled``)."""
