"""Conformance of attention classes: the checks (``conformance``) and the shared test inputs
and dense references (``inputs``).

>>> from lra.check import CHECKS, run_checks
>>> for result in run_checks(models.REGISTRY["local"]):
...     print(result.describe())

Imports torch, ``models``, ``tasks`` (the Text recipe's vocabulary for the parameter rule) and
``lra.config`` (where ``conf/`` is).
"""

from lra.check.conformance import CHECKS, Check, CheckResult, run_checks

__all__ = ["CHECKS", "Check", "CheckResult", "run_checks"]
