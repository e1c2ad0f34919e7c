"""residual-widgets: watch an intervention on one residual-stream cell spread through a transformer.

    import residual_widgets as rw
    model = rw.load_model("smollm2-135m")
    sess = rw.Session(model, "When Mary and John went to the store, John gave a drink to")
    eff = sess.ablate((5, 3))               # Effect: resid_delta [L+1, P], kl [P], ...
    atlas = sess.sweep(logit_diff=(" Mary", " John"))

See the README for rows, positions and the causal cone.

``import residual_widgets`` is light: each public name is imported from its module on first use
(PEP 562 ``__getattr__``), so torch, transformers and nnsight load only when a model or session
is made, and ``rw.explore(...)`` can show the grid while they load (:mod:`.explore`).
"""

from importlib import import_module as _import_module
from importlib import metadata as _metadata

#: public name → the submodule defining it (imported on first access)
_LAZY = {
    "Atlas": "effects",
    "Effect": "effects",
    "KINDS": "grid",
    "SITES": "grid",
    "reachable_mask": "grid",
    "LoadedModel": "models",
    "load_model": "models",
    "ResidualExplorer": "widget",
    "Session": "session",
    "SweepProgress": "sweep",
    "SweepTooLarge": "sweep",
    "UnsupportedStepping": "stepper",
    "set_api_key": "remote",
    "RemoteError": "remote",
    "RemoteAuthError": "remote",
    "RemoteModelError": "remote",
    "RemoteNetworkError": "remote",
    "RemoteTimeout": "remote",
    "RemoteCancelled": "remote",
    "Attribution": "attribution",
}

#: ``explore`` is bound now: it is also the name of its submodule, which importing
#: ``residual_widgets.explore`` would otherwise leave in its place (the module imports nothing
#: heavy: torch and the widget load when it is called)
from .explore import explore as explore  # noqa: E402

__all__ = sorted([*_LAZY, "explore"])


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'residual_widgets' has no attribute {name!r}")
    value = getattr(_import_module(f".{mod}", __name__), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


try:  # the version is written once, in pyproject.toml
    __version__ = _metadata.version("residual-widgets")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
