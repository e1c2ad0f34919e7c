"""residual-widgets: watch an intervention on one residual-stream cell spread through a transformer.

    import residual_widgets as rw
    model = rw.load_model("smollm2-135m")
    sess = rw.Session(model, "When Mary and John went to the store, John gave a drink to")
    eff = sess.ablate((5, 3))               # Effect: resid_delta [L+1, P], kl [P], ...
    atlas = sess.sweep(logit_diff=(" Mary", " John"))

See the README for rows, positions and the causal cone.
"""

from importlib import metadata as _metadata

from .attribution import Attribution
from .effects import Atlas, Effect
from .explore import explore
from .grid import KINDS, SITES, reachable_mask
from .models import LoadedModel, load_model
from .remote import (
    RemoteAuthError,
    RemoteCancelled,
    RemoteError,
    RemoteModelError,
    RemoteNetworkError,
    RemoteTimeout,
    set_api_key,
)
from .session import Session
from .stepper import UnsupportedStepping
from .sweep import SweepProgress, SweepTooLarge
from .widget import ResidualExplorer

__all__ = [
    "Atlas",
    "Effect",
    "KINDS",
    "SITES",
    "LoadedModel",
    "ResidualExplorer",
    "Session",
    "SweepProgress",
    "SweepTooLarge",
    "UnsupportedStepping",
    "explore",
    "load_model",
    "reachable_mask",
    "set_api_key",
    "RemoteError",
    "RemoteAuthError",
    "RemoteModelError",
    "RemoteNetworkError",
    "RemoteTimeout",
    "RemoteCancelled",
    "Attribution",
]
try:  # the version is written once, in pyproject.toml
    __version__ = _metadata.version("residual-widgets")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
