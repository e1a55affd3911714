"""Diagnostics: see and measure the vanishing gradient.

Quantities (each a function returning the measured value; the equation is in its docstring):

- ``gradient_profile``: batch-mean ||dL/dh_t|| per layer, by lag (``profile``);
- ``memory_horizon``: the lag where that profile falls below epsilon x its lag-0 value, and
  ``memory_reach``: the last lag where it is still at or above it;
- ``gate_keep``: the product of a gated cell's trained keep gate over the last k steps (``gates``);
- ``input_contribution``: batch-mean ||dL/dx_t|| by position, for any ``torch.nn.Module`` (``inputs``);
- ``update_share``: the Frobenius norm of every step's term of dL/dW_hh and dL/dW_ih (``updates``);
- ``jacobian_chain`` and ``pascanu_condition``: singular values of dh_t/dh_{t-1}, the norm of
  their product over k steps against (gamma sigma_max(W_hh))^k (``jacobian``);
- ``layer_gradients``: per-layer gradient norms of a stacked network (``profile``);
- ``training_history``: gradient norms, clipped and skipped steps, NaN events and the plateau
  of one run in the results database (``history``);
- the six impacts of the vanishing gradient (``impacts``; instability's
  ``perturbation_sensitivity`` is ``perturbation``).

``diagnose(model, task)`` measures them all and gives a verdict; ``diagnose_module``
measures any module's input contribution. ``figures`` draws them. The settings
``diagnose`` reads default to ``DEFAULT_EXAMPLES`` (examples in the fixed batch),
``DEFAULT_LAG`` (the lag of the reported ratio), ``DEFAULT_EPSILON`` (the memory
horizon's threshold) and ``DEFAULT_RECENT`` (how many last steps the shares count).
"""

from typing import TYPE_CHECKING

from bptt.diagnostics.common import DEFAULT_EXAMPLES, fixed_batch, task_objective
from bptt.diagnostics.curves import plateau_length, steps_to_target
from bptt.diagnostics.diagnosis import (
    DEFAULT_LAG,
    DEFAULT_RECENT,
    Diagnosis,
    diagnose,
    profile_and_layers,
)
from bptt.diagnostics.gates import GateKeep, gate_keep
from bptt.diagnostics.inputs import input_contribution, recent_share
from bptt.diagnostics.jacobian import JacobianChain, PascanuCondition, jacobian_chain, layer_inputs, pascanu_condition
from bptt.diagnostics.own import ModuleDiagnosis, diagnose_module
from bptt.diagnostics.perturbation import perturbation_sensitivity
from bptt.diagnostics.profile import (
    DEFAULT_EPSILON,
    GradientProfile,
    LayerGradients,
    gradient_profile,
    layer_gradients,
    memory_horizon,
    memory_reach,
)
from bptt.diagnostics.updates import UpdateShare, update_share
from bptt.lazy import lazy_attributes

if TYPE_CHECKING:
    from bptt.diagnostics.history import TrainingHistory, training_history
    from bptt.diagnostics.impacts import (
        RunOutcome,
        depth_gradients,
        local_minima,
        long_term_dependencies,
        seed_spread,
        slow_convergence,
    )

# Read a run back from the database, or build and train models: loaded on first use, so the
# per-step view (``bptt.watch``, ``gradient_profile``) loads neither the database nor the loop.
__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "TrainingHistory": "bptt.diagnostics.history",
        "training_history": "bptt.diagnostics.history",
        "RunOutcome": "bptt.diagnostics.impacts",
        "depth_gradients": "bptt.diagnostics.impacts",
        "local_minima": "bptt.diagnostics.impacts",
        "long_term_dependencies": "bptt.diagnostics.impacts",
        "seed_spread": "bptt.diagnostics.impacts",
        "slow_convergence": "bptt.diagnostics.impacts",
    },
)

__all__ = [
    "DEFAULT_EPSILON",
    "DEFAULT_EXAMPLES",
    "DEFAULT_LAG",
    "DEFAULT_RECENT",
    "Diagnosis",
    "GateKeep",
    "GradientProfile",
    "JacobianChain",
    "LayerGradients",
    "ModuleDiagnosis",
    "PascanuCondition",
    "RunOutcome",
    "TrainingHistory",
    "UpdateShare",
    "depth_gradients",
    "diagnose",
    "diagnose_module",
    "fixed_batch",
    "gate_keep",
    "gradient_profile",
    "input_contribution",
    "jacobian_chain",
    "layer_gradients",
    "layer_inputs",
    "local_minima",
    "long_term_dependencies",
    "memory_horizon",
    "memory_reach",
    "pascanu_condition",
    "perturbation_sensitivity",
    "plateau_length",
    "profile_and_layers",
    "recent_share",
    "seed_spread",
    "slow_convergence",
    "steps_to_target",
    "task_objective",
    "training_history",
    "update_share",
]
