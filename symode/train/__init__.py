"""Numeric training with symode's gradients: optimisers, the objective (any gradient route), targets, the loop,
the training problem and its pictures, and the training cross-checks (:mod:`symode.train.checks`)."""
from .data import Targets, default_times, fit_model, ode_targets, read_targets, state_at, truth_targets
from .loop import TrainingDiverged, TrainResult, run
from .objective import Objective, SignFlipped, with_theta
from .optim import OPTIMIZERS, Adam, GradientDescent, Optimizer, make_optimizer
from .problem import Problem, figures, make_problem

__all__ = ["Targets", "default_times", "fit_model", "ode_targets", "read_targets", "state_at", "truth_targets",
           "TrainingDiverged", "TrainResult", "run", "Objective", "SignFlipped", "with_theta", "OPTIMIZERS", "Adam",
           "GradientDescent", "Optimizer", "make_optimizer", "Problem", "figures", "make_problem"]
