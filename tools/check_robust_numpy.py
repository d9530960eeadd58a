#!/usr/bin/env python3
"""Checks `p2pnode aggregate` in float64 against plain NumPy definitions of the rules.

Optional (needs python3-numpy; not part of CI). Usage: tools/check_robust_numpy.py [BUILD_DIR]
Prints the largest absolute difference per rule; they should be ~1e-15.
"""
import itertools
import os
import subprocess
import sys
import tempfile

import numpy as np

BIN = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "build", "p2pnode")
TMP = tempfile.mkdtemp()
IN, OUT = os.path.join(TMP, "X.npy"), os.path.join(TMP, "out.npy")
rng = np.random.default_rng(0)
X = rng.normal(size=(11, 50)); X[9:] += 20
np.save(IN, X)
n, f = X.shape[0], 2
def ours(rule, *extra):
    subprocess.run([BIN, 'aggregate', '--rule', rule, '--f', str(f), *extra, IN, OUT], check=True, capture_output=True)
    return np.load(OUT)
ref = {}
ref['mean'] = X.mean(0)
ref['median'] = np.median(X, 0)
S = np.sort(X, 0); ref['trimmed-mean'] = S[f:n-f].mean(0)
med = np.median(X,0); idx = np.argsort(np.abs(X-med),0,kind='stable')[:n-f]; ref['meamed'] = np.take_along_axis(X, idx, 0).mean(0)
D = ((X[:,None,:]-X[None,:,:])**2).sum(-1)
sc = np.array([np.sort(np.delete(D[i],i))[:n-f-1].sum() for i in range(n)])
ref['krum'] = X[np.argmin(sc)]
ref['multi-krum'] = X[np.argsort(sc,kind='stable')[:n-f]].mean(0)
nr = (X**2).sum(1); ref['cge'] = X[np.argsort(nr,kind='stable')[:n-f]].mean(0)
ref['monna'] = X[np.argsort(D[0],kind='stable')[:n-f]].mean(0)
best=None
for S_ in itertools.combinations(range(n), n-f):
    dm = max(D[a,b] for a in S_ for b in S_)
    if best is None or dm < best[0]: best=(dm,S_)
ref['mda'] = X[list(best[1])].mean(0)
z = np.median(X,0)
for _ in range(100):
    w = 1/np.maximum(1e-9, np.sqrt(((X-z)**2).sum(1))); zn = (w[:,None]*X).sum(0)/w.sum()
    if np.linalg.norm(zn-z) <= 1e-7*max(np.linalg.norm(zn),1e-12): z=zn; break
    z = zn
ref['geometric-median'] = z
v = X.mean(0)
for _ in range(3):
    d = X - v; nrm = np.sqrt((d**2).sum(1)); s = np.minimum(1, 10/nrm); v = v + (s[:,None]*d).sum(0)/n
ref['centered-clipping'] = v
for k, r in ref.items():
    o = ours(k)
    print(f"{k:18s} max abs diff {np.max(np.abs(o-r)):.2e}")
