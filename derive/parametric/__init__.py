"""Theorems for all sizes: every rule proven in index form over symbolic ranges.

The modules, each with one job:

- ``linear``: integer linear forms over index and size symbols, read from SymPy expressions;
- ``conditions``: condition sets (linear inequalities over the integers) and their
  implication and equivalence, decided by Fourier-Motzkin elimination with integer tightening;
- ``terms``: a sum of *terms* ``sum_{bound} [conditions] coefficient``, with products,
  differences and renaming of bound variables;
- ``deltas``: the derivative of a term sum with respect to one entry of a tensor, and the
  elimination of the Kronecker deltas it produces (unit coefficients only, the gcd rule for zero);
- ``scalars``: the scalar functions (relu, step, window maximum) and the exact zero test of a
  coefficient on the region;
- ``reading``: the index-form reading of every operation of the expression language;
- ``theorem``: a statement, its proof, and its verdict (proven / refuted with a counterexample
  checked by concrete evaluation / not proven with the reason);
- ``catalogue``: one theorem per rule of the rule table, for symbolic sizes.

docs/proofs.md gives the soundness argument.
"""
