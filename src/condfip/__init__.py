"""condfip: zero-shot structural causal models (Cond-FiP).

    import condfip
    model = condfip.load_pretrained()
    scm = model.infer(data, graph)      # pandas DataFrame + networkx DiGraph (or files)
    scm.sample(1000); scm.do({"X": 3.0}).sample(1000); scm.counterfactual(data, {"X": 3.0})
"""

from condfip.discover import discover
from condfip.errors import CondfipWarning, ExtrapolationWarning, InputError, InputWarning
from condfip.inference import InferredSCM, ZeroShotModel, load_pretrained, load_scm
from condfip.scm import SCM
from condfip.version import __version__

__all__ = ["SCM", "CondfipWarning", "ExtrapolationWarning", "InferredSCM", "InputError", "InputWarning",
           "ZeroShotModel", "__version__", "discover", "load_pretrained", "load_scm"]
