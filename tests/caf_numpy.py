#!/usr/bin/env python3
"""CAF as its definition states it, in plain NumPy: the reference the test suite checks
p2pnode's `caf` against. Usage: caf_numpy.py IN.npy F OUT.npy (float64 rows in, the aggregate out).

Weights start at 1; while they sum to more than n - 2f: the weighted mean mu and covariance,
its top eigenpair (exact, numpy.linalg.eigh), the weights scaled by 1 - tau_i / max tau with
tau_i = (v . (x_i - mu))^2, the max over the vectors whose weight is not 0 yet. The result is the mu of the iteration with the smallest top
eigenvalue (the plain mean when no iteration runs).
"""
import sys

import numpy as np


def caf(x, f):
    n = len(x)
    c = np.ones(n)
    best, best_mu = np.inf, x.mean(axis=0)
    while c.sum() > n - 2 * f:
        mu = (c[:, None] * x).sum(axis=0) / c.sum()
        d = x - mu
        cov = (c[:, None] * d).T @ d / c.sum()
        values, vectors = np.linalg.eigh(cov)
        lam, v = values[-1], vectors[:, -1]
        if lam < best:
            best, best_mu = lam, mu
        tau = (d @ v) ** 2
        top = tau[c > 0].max()  # over the vectors still weighted, as the filter algorithm takes it
        if top <= 0:
            break
        c = np.maximum(0.0, c * (1 - tau / top))
    return best_mu


if __name__ == "__main__":
    x = np.load(sys.argv[1])
    np.save(sys.argv[3], caf(x, int(sys.argv[2])))
