"""The notebook-sized public API: batched DAS search, retraining, baselines, methods.

>>> import dasjax
>>> cfg = dasjax.make_config(problem="blur", op_set="all", width=16, epochs=5)
>>> found = dasjax.search(cfg, seeds=range(8))              # 8 DAS trials, one program
>>> final = dasjax.retrain(cfg, found.architecture, seeds=range(8))
>>> final.arch_psnr, found.one_shot_psnr, found.arch_strings

The stages live in :mod:`dasjax.stages`, the methods (and their registry) in :mod:`dasjax.methods`;
this module gathers what a notebook needs.
"""
from __future__ import annotations

from .methods import (CURVATURE_EVERY, BUILTIN_METHODS, Method, get_method, method_config, method_names,
                      random_methods, register_method, run_group, run_method, run_sets)
from .stages import (MethodResult, RetrainResult, SearchResult, fixed_architectures, make_search_program,
                     random_architectures, resolve_hparams, retrain, search)

#: the paper's methods (the built-in ones; ``method_names()`` lists a user's too)
METHODS = tuple(BUILTIN_METHODS)

__all__ = ["CURVATURE_EVERY", "METHODS", "Method", "MethodResult", "RetrainResult",
           "SearchResult", "fixed_architectures", "get_method", "make_search_program", "method_config",
           "method_names", "random_architectures", "random_methods", "register_method", "resolve_hparams",
           "retrain", "run_group", "run_method", "run_sets", "search"]
