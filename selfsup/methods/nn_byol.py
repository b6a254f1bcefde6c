"""BYOL with nearest-neighbour positives (seed 004): the neighbours mined in a learned latent space
(``selfsup neighbors RUN``) stand in for, or blend with, the second augmented view.

probabilistic: each image's second view is aug(NN(x)) with probability p, else aug(x).
weighted: x1 = aug(x), x2 = aug(x), x3 = aug(NN(x)); the target is t~ = w t(x2) + (1 - w) t(x3) and the
prediction p~ = w p(x2) + (1 - w) p(x3); loss = l(p(x1), sg t~) + l(p~, sg t(x1)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from selfsup.data import to_float
from selfsup.data.neighbors import fingerprint, load_neighbors
from selfsup.errors import ConfigError
from selfsup.losses import negative_cosine
from selfsup.methods.base import SGD_RECIPE, StepOutput, register_method
from selfsup.methods.siamese import SiameseBase, SiameseConfig
from selfsup.registry import choose


@dataclass(frozen=True)
class NNBYOLConfig(SiameseConfig):
    neighbors: str = ""  # a neighbour file or the run directory it was mined in (`selfsup neighbors RUN`)
    mode: str = "probabilistic"  # probabilistic or weighted
    p: float = 0.5  # probabilistic: chance that the second view is the neighbour
    w: float = 0.5  # weighted: weight of the augmented view's target (1 - w: the neighbour's)
    ema_momentum: float = 0.99  # seed 004's constant EMA rate

    def __post_init__(self) -> None:
        super().__post_init__()
        choose(MODES, self.mode, "params.mode")  # MODES is defined below, with the method
        for key in ("p", "w"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"params.{key} must be in [0, 1], got {getattr(self, key)}")
        if not self.ema:
            raise ConfigError("nn-byol is BYOL: params.ema must stay true")


@register_method("nn-byol", family="joint-embedding")
class NNBYOL(SiameseBase):
    summary = "BYOL with nearest-neighbour positives mined in a learned latent space (selfsup neighbors)"
    # BYOL's recipe, asymmetric views included (the second view solarized at p 0.2): adopted for nn-BYOL on its own
    # screen and three seeds' validation monitors, +0.8 points over its previous recipe's mean
    # (bench/results/runs-tuned/PLAN-byol.md, lever (h); BENCHMARKS "BYOL's asymmetric views")
    recipe = {**SGD_RECIPE, "augment.second_solarize_p": 0.2}
    Config = NNBYOLConfig
    neighbors_from = "vae"  # seed 004 mines the neighbours in a VAE's latent space
    multi_crop = False  # its second view is a neighbour, not a crop

    def __init__(self, backbone, params: NNBYOLConfig, augment, context) -> None:  # type: ignore[no-untyped-def]
        if not params.neighbors:  # a required input, checked when the method is built (an ordinary config key)
            raise ConfigError("nn-byol needs its neighbours: mine them with `selfsup neighbors RUN`, then "
                              "`selfsup train nn-byol --set neighbors=RUN`")
        super().__init__(backbone, params, augment, context)
        self.images: torch.Tensor | None = None
        if not context.training:  # a trained run loaded for use: the neighbours only feed training
            self.neighbor_record: dict | None = None
            self.register_buffer("neighbor_index", torch.zeros(0, dtype=torch.long), persistent=False)
            return
        record = load_neighbors(params.neighbors)
        if record["size"] != context.num_examples:
            raise ConfigError(f"the neighbour file {record['path']} covers {record['size']} images of "
                              f"{record['dataset']} but the training set has {context.num_examples}; mine the "
                              "neighbours on the same dataset, classes, limit and seed")
        self.neighbor_record = {key: record[key] for key in ("path", "dataset", "size", "fingerprint", "metric")}
        self.register_buffer("neighbor_index", record["indices"][:, 0].clone(), persistent=False)

    def attach_data(self, dataset) -> None:  # type: ignore[no-untyped-def]
        if dataset is None:
            raise ConfigError("nn-byol looks neighbour images up by index, so it needs the in-memory training set; "
                              "train it without data.stream")
        if self.neighbor_record is None:
            raise ConfigError("this nn-byol model was loaded for use, without its neighbour file; train through "
                              "`selfsup train` (or `--resume`), which reads it")
        if fingerprint(dataset) != self.neighbor_record["fingerprint"]:
            raise ConfigError(f"the neighbour file {self.neighbor_record['path']} was mined on other images or "
                              f"another order ({self.neighbor_record['size']} images of "
                              f"{self.neighbor_record['dataset']}) than the training set ({len(dataset)} images of "
                              f"{dataset.name}); mine them with the same dataset, classes, limit and seed")
        self.images = dataset.images

    def neighbors_of(self, batch) -> torch.Tensor:  # type: ignore[no-untyped-def]
        if self.images is None:
            raise RuntimeError("nn-byol: attach_data(training set) must be called before training")
        index = self.neighbor_index[batch.indices.to(self.neighbor_index.device)]
        return to_float(self.images[index.to(self.images.device)]).to(batch.images.device)

    def make_views(self, batch, generator: torch.Generator) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
        return MODES[self.params.mode][0](self, batch.images, self.neighbors_of(batch), generator)

    def views_loss(self, batch, views: tuple[torch.Tensor, ...]) -> StepOutput:  # type: ignore[no-untyped-def]
        return MODES[self.params.mode][1](self, views)

    # -- probabilistic: the second view is the neighbour's with probability p ---------------------------------
    def probabilistic_views(self, x: torch.Tensor, neighbour: torch.Tensor, generator: torch.Generator
                            ) -> tuple[torch.Tensor, ...]:
        v1 = self.augment(x, generator)
        use = torch.rand(x.shape[0], generator=generator, device=generator.device).to(x.device) < self.params.p
        second = torch.where(use[:, None, None, None], neighbour, x)
        return v1, self.augment.second(second, generator)

    def probabilistic_loss(self, views: tuple[torch.Tensor, ...]) -> StepOutput:
        return self.siamese_loss(*views)

    # -- weighted: targets and predictions blend the image's second view and its neighbour's --------------------
    def weighted_views(self, x: torch.Tensor, neighbour: torch.Tensor, generator: torch.Generator
                       ) -> tuple[torch.Tensor, ...]:
        return (*self.augment.pair(x, generator), self.augment.second(neighbour, generator))

    def weighted_loss(self, views: tuple[torch.Tensor, ...]) -> StepOutput:
        w = self.params.w
        z, p = self.online(torch.cat(views))
        p1, p2, p3 = p.chunk(3)
        t1, t2, t3 = self.target(torch.cat(views)).chunk(3)
        target = w * t2 + (1 - w) * t3
        prediction = w * p2 + (1 - w) * p3
        loss = negative_cosine(p1, target) + negative_cosine(prediction, t1)
        return StepOutput(loss, self.observe(z[: 2 * p1.shape[0]]), record=self._track)


# mode -> (views, loss)
MODES = {
    "probabilistic": (NNBYOL.probabilistic_views, NNBYOL.probabilistic_loss),
    "weighted": (NNBYOL.weighted_views, NNBYOL.weighted_loss),
}
