"""Numeric training with symode's gradients: optimisers, the objective (any gradient route), targets, the loop."""
from .data import Targets, default_times, fit_model, ode_targets, read_targets, state_at, truth_targets
from .loop import TrainResult, run
from .objective import Objective, SignFlipped
from .optim import OPTIMIZERS, Adam, GradientDescent, Optimizer, make_optimizer

__all__ = ["Targets", "default_times", "fit_model", "ode_targets", "read_targets", "state_at", "truth_targets", "TrainResult",
           "run", "Objective", "SignFlipped", "OPTIMIZERS", "Adam", "GradientDescent", "Optimizer",
           "make_optimizer"]
