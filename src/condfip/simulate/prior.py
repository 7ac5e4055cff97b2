"""The synthetic SCM prior: every parameter range the simulator draws from, and the named presets.

`paper-in` and `paper-out` follow the Cond-FiP paper (method brief, section 3); `broad` widens every axis;
`train` is what the shipped weights were trained on (paper-in's ranges with more noise families, node
counts 5-30 and a share of the two extra mechanism families); `train-dense` is `train` with denser graphs
(mean in-degree up to 4 instead of 3: about one node in five has 4+ parents instead of one in eight), a recipe
for the encoder's weak spot, in-context regression on many parents (docs/training-log.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

GRAPHS = ("er", "sf-in", "sf-out", "ws", "sbm", "grg")
MECHANISMS = ("linear", "rff", "mlp", "additive")
NOISES = ("gaussian", "laplace", "uniform", "student-t", "mixture")


@dataclass(frozen=True)
class Prior:
    """Ranges of a synthetic SCM distribution. Tuples ``(lo, hi)`` are uniform ranges."""

    graphs: tuple[str, ...] = ("er", "sf-in", "sf-out")
    edges_per_node: tuple[float, float] = (1.0, 3.0)
    mechanisms: tuple[str, ...] = ("linear", "rff")
    # mixing weights of `mechanisms` (same length); None = uniform
    mechanism_weights: tuple[float, ...] | None = None
    linear_weight: tuple[float, float] = (1.0, 3.0)  # |w| ~ U(lo, hi), random sign
    bias: tuple[float, float] = (-3.0, 3.0)
    rff_lengthscale: tuple[float, float] = (7.0, 10.0)
    rff_amplitude: tuple[float, float] = (10.0, 20.0)
    rff_features: int = 100
    mlp_hidden: int = 16
    noises: tuple[str, ...] = ("gaussian",)
    noise_scale: tuple[float, float] = (0.2, 2.0)
    heteroscedastic: bool = False
    nodes: tuple[int, int] = (20, 20)  # d ~ U{lo..hi} for training batches
    min_noise_fraction: float = 0.01  # below this noise-std / node-std the mechanism is rescaled

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Prior:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def override(self, **changes) -> Prior:
        """A copy with some fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def __post_init__(self):
        for name, allowed in (("graphs", GRAPHS), ("mechanisms", MECHANISMS), ("noises", NOISES)):
            unknown = [v for v in getattr(self, name) if v not in allowed]
            if unknown or not getattr(self, name):
                raise ValueError(f"prior {name} must be a non-empty subset of {allowed}, got {getattr(self, name)}")
        if self.mechanism_weights is not None and len(self.mechanism_weights) != len(self.mechanisms):
            raise ValueError("mechanism_weights must have one weight per mechanism")


PRESETS: dict[str, Prior] = {
    "paper-in": Prior(),
    "paper-out": Prior(
        graphs=("ws", "sbm"),
        linear_weight=(0.5, 4.0),
        rff_lengthscale=(5.0, 12.0),
        rff_amplitude=(8.0, 22.0),
        noises=("laplace",),
    ),
    "broad": Prior(
        graphs=GRAPHS,
        edges_per_node=(0.5, 4.0),
        mechanisms=MECHANISMS,
        linear_weight=(0.5, 4.0),
        rff_lengthscale=(4.0, 12.0),
        rff_amplitude=(5.0, 25.0),
        noises=NOISES,
        noise_scale=(0.1, 3.0),
        nodes=(5, 50),
    ),
    "train": Prior(
        mechanisms=("linear", "rff", "mlp", "additive"),
        mechanism_weights=(0.4, 0.4, 0.1, 0.1),
        noises=NOISES,
        nodes=(5, 30),
    ),
}
PRESETS["train-dense"] = replace(PRESETS["train"], edges_per_node=(1.0, 4.0))


def get_prior(name: str) -> Prior:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]

