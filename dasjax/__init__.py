"""dasjax: trial-batched differentiable architecture search for inverse problems in JAX.

Quick use::

    import dasjax
    cfg = dasjax.make_config(problem="blur", op_set="all", width=16, epochs=5)
    found = dasjax.search(cfg, seeds=range(8))           # 8 DAS trials as one program
    final = dasjax.retrain(cfg, found.architecture, seeds=range(8))
    print(found.arch_strings, found.one_shot_psnr, final.arch_psnr)

On a CPU, importing dasjax gives JAX one host device per core (``$DASJAX_CPU_DEVICES``;
see :mod:`dasjax._devices`), over which the trials of a batched run are spread.
"""
from ._devices import configure_cpu_devices

configure_cpu_devices()

from . import hparams  # noqa: E402
from .api import (METHODS, MethodResult, RetrainResult, SearchResult, fixed_architectures, run_sets,
                  random_architectures, random_methods, retrain, run_method, search)
from .config import (Config, ProblemConfig, RetrainConfig, RunConfig, ScheduleConfig, SearchConfig,
                     SpaceConfig, make_config)
from .hparams import H1, H2, HParamSet
from . import operations
from .operations import OpInputs, Operation, register_op
from .options import op_options, problem_options, space_options
from . import curvature, early_stop, hpo, loop_hooks
from .problems import ImageProblem, InverseProblem, Problem, make_problem, psnr, register_problem
from .methods import Method, register_method
from . import algorithms, projection
from .algorithms import SearchAlgorithm, register_algorithm
from .program import BatchedProgram
from .adaptive import AdaptiveResult, run_adaptive
from . import bsds
from .results import load_results, method_records, save_results
from .spaces import make_space

__version__ = "0.1.0"

__all__ = [
    "Config", "ProblemConfig", "SpaceConfig", "ScheduleConfig", "SearchConfig", "RetrainConfig",
    "RunConfig", "make_config", "hparams", "HParamSet", "H1", "H2", "Problem", "make_problem", "psnr",
    "make_space", "search", "retrain", "run_method", "random_methods", "fixed_architectures",
    "random_architectures", "run_sets", "SearchResult", "RetrainResult", "MethodResult", "METHODS",
    "method_records", "save_results", "load_results", "curvature", "early_stop", "hpo", "ImageProblem", "bsds",
    "operations", "Operation", "OpInputs", "register_op", "problem_options", "space_options", "op_options", "InverseProblem", "register_problem",
    "Method", "register_method", "run_adaptive", "AdaptiveResult", "loop_hooks",
    "algorithms", "SearchAlgorithm", "register_algorithm", "BatchedProgram",
]
