"""BYOL, SimSiam, DirectPred and DirectCopy: one siamese network with a predictor, four ways to get the target
and the predictor (seed 001). Options on all four: EMA on or off, a one-layer predictor, symmetry
regularisation of the predictor, and eigenspace tracking of the predictor against the correlation F.

loss = -cos(p1, sg z2') - cos(p2, sg z1'), with p the online predictions and z' the targets
(the EMA network's projections, or the online ones under stop-gradient when EMA is off).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn

from selfsup.errors import ConfigError
from selfsup.heads import PROJECTION_BN, mlp_head, projection_head
from selfsup.losses import negative_cosine
from selfsup.methods.base import SGD_RECIPE, Method, StepOutput, register_method
from selfsup.ops.collapse import embedding_health
from selfsup.ops.distributed import all_reduce_mean
from selfsup.ops.schedules import cosine_momentum, update_momentum
from selfsup.registry import choose
from selfsup.space import MULTI_CROP, OPTIMISATION, VIEWS, Choice, Range

# predictor kind -> the head on the d-dim projection (hidden: the projector's width)
PREDICTORS = {
    "mlp": lambda d, hidden: mlp_head(d, (hidden,), d, bn_affine=False, last_bias=False),
    "linear": lambda d, hidden: mlp_head(d, (), d, last_bias=False),  # one d x d layer
}


@dataclass(frozen=True)
class SiameseConfig:
    projection_dim: int = 128  # seed 001: Linear 512 -> BN (no affine) -> ReLU -> Linear 128 (no bias)
    projection_hidden: int = 512
    projection_bn: str = "hidden"  # BatchNorm after the hidden layer; all: also after the output; none
    predictor: str = "mlp"  # mlp (same shape as the projector) or linear (one 128 x 128 layer, no bias)
    ema: bool = True  # a momentum target network; false: the online network under stop-gradient
    ema_momentum: float = 0.996  # EMA rate tau (seed 001: constant 0.996)
    momentum_schedule: str = "constant"  # constant, or cosine from ema_momentum to 1 (BYOL paper)
    symmetric_predictor: bool = False  # symmetry regularisation after every step: W <- (W + W^T) / 2
    track_every: int = 0  # eigenspace tracking every N steps (0: off); logs F's and Wp's spectra and alignment
    rho: float = 0.3  # F <- rho F + (1 - rho) corr (DirectPred, DirectCopy, tracking)
    eps: float = 0.1  # DirectPred: p = sqrt(s) + eps; DirectCopy: Wp = F / ||F|| + eps I
    update_every: int = 1  # DirectPred / DirectCopy: set the predictor from F every N steps
    # SimSiam's fix_pred_lr (Chen & He 2021, section 4.3): the predictor trains at optim.lr throughout, no warm-up
    # and no decay; the rest of the network follows the schedule
    predictor_constant_lr: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema_momentum <= 1.0:
            raise ConfigError(f"params.ema_momentum must be in [0, 1], got {self.ema_momentum}")
        choose(PREDICTORS, self.predictor, "params.predictor")
        if self.momentum_schedule not in ("constant", "cosine"):
            raise ConfigError(f"params.momentum_schedule must be constant or cosine, got {self.momentum_schedule!r}")
        if not 0.0 <= self.rho < 1.0:
            raise ConfigError(f"params.rho must be in [0, 1), got {self.rho}")
        if self.eps < 0 or self.track_every < 0 or self.update_every < 1:
            raise ConfigError("params.eps and params.track_every must be >= 0, params.update_every >= 1")
        if self.projection_dim < 1 or self.projection_hidden < 1:
            raise ConfigError("params.projection_dim and params.projection_hidden must be >= 1")
        choose(PROJECTION_BN, self.projection_bn, "params.projection_bn")


def directpred_predictor(F: torch.Tensor, eps: float) -> torch.Tensor:
    """DirectPred (Tian et al. 2021): F = U diag(s) U^T; s <- max(s / max(s), 0); p = sqrt(s) + eps (>= 1e-4);
    Wp = U diag(p) U^T."""
    s, u = torch.linalg.eigh(F.double())
    s = (s / s.max()).clamp_min(0)
    p = (s.sqrt() + eps).clamp_min(1e-4)
    return (u @ torch.diag(p) @ u.T).to(F.dtype)


def directcopy_predictor(F: torch.Tensor, eps: float) -> torch.Tensor:
    """DirectCopy (Wang et al. 2021): Wp = F / ||F||_F + eps I."""
    return F / torch.linalg.matrix_norm(F) + eps * torch.eye(F.shape[0], dtype=F.dtype, device=F.device)


def eigenspace_stats(F: torch.Tensor, wp: torch.Tensor) -> dict[str, list[float] | float]:
    """Seed 001's tracking: eigenvalues of F and of Wp (real parts, descending), alignment_j = cos(u_j, Wp u_j)
    for F's eigenvectors u_j (in F's descending order), and the asymmetry ||Wp - Wp^T||_F / ||Wp||_F."""
    s, u = torch.linalg.eigh(F.double())
    order = s.argsort(descending=True)
    s, u = s[order], u[:, order]
    wp = wp.double()
    mapped = wp @ u
    alignment = nn.functional.cosine_similarity(mapped, u, dim=0)
    wp_eigen = torch.linalg.eigvals(wp).real.sort(descending=True).values
    asymmetry = (torch.linalg.matrix_norm(wp - wp.T) / torch.linalg.matrix_norm(wp).clamp_min(1e-12)).item()
    return {"eigen_F": s.tolist(), "eigen_Wp": wp_eigen.tolist(), "alignment": alignment.tolist(),
            "asymmetry": asymmetry}


class SiameseBase(Method):
    family = "joint-embedding"
    Config = SiameseConfig
    # measured for BYOL on the validation split (bench/study/transfer_stage4.sh: +0.4 probe, +1.2 kNN, +2.6 NMI over
    # Adam 1e-3 / batch 256); SGD with momentum is also what the SimSiam, DirectPred and DirectCopy papers train with
    recipe = SGD_RECIPE
    search_space = {**OPTIMISATION, **VIEWS, **MULTI_CROP, "params.ema_momentum": Choice((0.99, 0.996, 0.999)),
                    "params.momentum_schedule": Choice(("constant", "cosine"))}
    min_batch_size = 2  # BatchNorm in the heads needs more than one image
    multi_crop = True
    # F, eps -> the predictor's weight (DirectPred, DirectCopy): the predictor is set from F, not trained
    predictor_from_F: ClassVar[Callable[[torch.Tensor, float], torch.Tensor] | None] = None

    def __init__(self, backbone, params: SiameseConfig, augment, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(backbone, params, augment, context)
        d = params.projection_dim
        self.projector = projection_head(backbone.out_dim, params.projection_hidden, d, bn=params.projection_bn,
                                         bn_affine=False, last_bias=False)
        self.predictor = choose(PREDICTORS, params.predictor, "params.predictor")(d, params.projection_hidden)
        if self.predictor_from_F is not None:
            if len([m for m in self.predictor if isinstance(m, nn.Linear)]) != 1:
                raise ConfigError(f"{self.name} sets a one-layer predictor from F; params.predictor must be linear")
            self.predictor.requires_grad_(False)  # written from F after the optimizer step
        else:  # keys only the predictor-from-F methods read: a value given to another method would do nothing
            unused = [k for k in ("eps", "update_every") if getattr(params, k) != getattr(SiameseConfig(), k)]
            if unused:
                raise ConfigError(f"params.{unused[0]} is read by directpred and directcopy only; {self.name} would "
                                  "ignore it")
        if self.predictor_from_F is not None and params.predictor_constant_lr:
            raise ConfigError(f"params.predictor_constant_lr: {self.name}'s predictor is set from F, not trained")
        if params.ema:
            self.target_backbone = copy.deepcopy(backbone).requires_grad_(False)
            self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.register_buffer("F", torch.zeros(d, d))
        self.register_buffer("F_steps", torch.zeros((), dtype=torch.long))
        self.momentum_now = params.ema_momentum
        self._track = False

    def constant_lr_parameters(self) -> list[nn.Parameter]:
        return list(self.predictor.parameters()) if self.params.predictor_constant_lr else []

    @property
    def needs_F(self) -> bool:
        return self.predictor_from_F is not None or self.params.track_every > 0

    def predictor_matrix(self) -> torch.Tensor:
        """The predictor's linear part Wp (d x d): W for one layer, W2 W1 for two (BatchNorm ignored)."""
        weights = [m.weight for m in self.predictor if isinstance(m, nn.Linear)]
        wp = weights[0]
        for w in weights[1:]:
            wp = w @ wp
        return wp.detach()

    # -- the step ---------------------------------------------------------------------------
    def make_views(self, batch, generator: torch.Generator) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
        return self.global_and_local_views(batch.images, generator)

    def begin_step(self, step: int, total_steps: int) -> None:
        track = self.params.track_every
        self._track = track > 0 and (step % track == 0 or step == total_steps - 1)
        if self.params.ema and self.params.momentum_schedule == "cosine":
            self.momentum_now = float(cosine_momentum(self.params.ema_momentum, total_steps)[step])

    def online(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(projection z, prediction p) of the online network."""
        z = self.projector(self.backbone(x))
        return z, self.predictor(z)

    @torch.no_grad()
    def target(self, x: torch.Tensor) -> torch.Tensor:
        return self.target_projector(self.target_backbone(x))

    def siamese_loss(self, *views: torch.Tensor) -> StepOutput:
        """Each view's prediction regresses the other global views' targets: v1 <-> v2 (the symmetric loss of
        BYOL, a sum of two terms), and with multi-crop each small crop -> both globals, averaged to that scale."""
        z, p = self.online(torch.cat(views))
        zs, ps = z.chunk(len(views)), p.chunk(len(views))
        if self.params.ema:
            targets = self.target(torch.cat(views[:2])).chunk(2)
        else:
            targets = (zs[0].detach(), zs[1].detach())
        pairs = [(i, g) for i in range(len(views)) for g in (0, 1) if i != g]
        loss = 2 * sum(negative_cosine(ps[i], targets[g]) for i, g in pairs) / len(pairs)
        return StepOutput(loss, self.observe(torch.cat(zs[:2])), record=self._track)

    def views_loss(self, batch, views: tuple[torch.Tensor, ...]) -> StepOutput:  # type: ignore[no-untyped-def]
        return self.siamese_loss(*views)

    @torch.no_grad()
    def observe(self, z: torch.Tensor) -> dict:
        """Update F from the online projections (2B rows) and collect the collapse and eigenspace logs."""
        logs: dict = embedding_health(z)
        if self.needs_F and self.training:
            z = z.detach().float()
            corr = all_reduce_mean(z.T @ z / z.shape[0])  # mean of the outer products f f^T (global batch)
            rho = self.params.rho if self.F_steps > 0 else 0.0  # the first batch initialises F
            self.F.mul_(rho).add_(corr, alpha=1 - rho)
            self.F_steps += 1
            if self._track:
                logs.update(eigenspace_stats(self.F, self.predictor_matrix()))
        return logs

    # -- after the optimizer step -----------------------------------------------------------
    @torch.no_grad()
    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        if self.predictor_from_F is not None and step % self.params.update_every == 0 and self.F_steps > 0:
            self.predictor[0].weight.copy_(self.predictor_from_F(self.F, self.params.eps))
        if self.params.symmetric_predictor:
            self.symmetrise_predictor()
        if self.params.ema:
            update_momentum(self.backbone, self.target_backbone, self.momentum_now)
            update_momentum(self.projector, self.target_projector, self.momentum_now)

    @torch.no_grad()
    def symmetrise_predictor(self) -> None:
        """One layer: W <- (W + W^T) / 2. Two layers (d -> h -> d): w = (W1 + W2^T) / 2, W1 = w, W2 = w^T."""
        weights = [m.weight for m in self.predictor if isinstance(m, nn.Linear)]
        if len(weights) == 1:
            weights[0].copy_((weights[0] + weights[0].T) / 2)
        else:
            w1, w2 = weights
            w = (w1 + w2.T) / 2
            w1.copy_(w)
            w2.copy_(w.T)


@register_method("byol", family="joint-embedding")
class BYOL(SiameseBase):
    summary = "BYOL: online network + predictor regress an EMA target's projection of the other view"
    # the family's SGD recipe with BYOL's asymmetric views (the second solarized at p 0.2, solo-learn's CIFAR BYOL):
    # adopted 2026-12-03 on three seeds' validation monitors, +0.6 points over the recipe's mean
    # (bench/results/runs-tuned/PLAN-byol.md, lever (e); BENCHMARKS "BYOL's asymmetric views")
    recipe = {**SGD_RECIPE, "augment.second_solarize_p": 0.2}


@dataclass(frozen=True)
class SimSiamConfig(SiameseConfig):
    ema: bool = False  # the target is the online network under stop-gradient


@register_method("simsiam", family="joint-embedding")
class SimSiam(SiameseBase):
    summary = "SimSiam: BYOL without the EMA target (stop-gradient on the online projection)"
    Config = SimSiamConfig
    search_space = {**OPTIMISATION, **VIEWS, **MULTI_CROP}  # no EMA to search
    # the family's SGD recipe, evaluated at the online monitor's best measurement and stopped after 10 without a new
    # one: on a 1,500-image colour folder over 150 epochs the default's representation collapsed dimensionally after
    # its early best; on Fashion-MNIST every run's last measurement is its best, so nothing changes there
    # (bench/results/robust-folder/PLAN-keep-best.md)
    recipe = {**SGD_RECIPE, "train.keep_best": True, "train.patience": 10}


@dataclass(frozen=True)
class DirectPredConfig(SiameseConfig):
    predictor: str = "linear"  # set from F, never trained
    rho: float = 0.3
    eps: float = 0.1


@register_method("directpred", family="joint-embedding")
class DirectPred(SiameseBase):
    summary = "DirectPred: the linear predictor is set from the eigendecomposition of the correlation F"
    Config = DirectPredConfig
    predictor_from_F = staticmethod(directpred_predictor)
    search_space = {**SiameseBase.search_space, "params.rho": Range(0.0, 0.9), "params.eps": Range(0.0, 0.5)}


@dataclass(frozen=True)
class DirectCopyConfig(SiameseConfig):
    predictor: str = "linear"
    rho: float = 0.5
    eps: float = 0.3


@register_method("directcopy", family="joint-embedding")
class DirectCopy(SiameseBase):
    summary = "DirectCopy: the linear predictor is F / ||F|| + eps I, no eigendecomposition"
    Config = DirectCopyConfig
    predictor_from_F = staticmethod(directcopy_predictor)
    search_space = {**SiameseBase.search_space, "params.rho": Range(0.0, 0.9), "params.eps": Range(0.0, 0.5)}
