"""Hook implementations of the built-in methods plugin: SimCLR, MoCo v2, BYOL, VICReg, Barlow
Twins and DINO, each from lightly's heads, losses and utilities.

Every method shares ``train.projection_hidden_dim`` / ``train.projection_dim`` as its head
widths (so that methods compare at equal capacity) and declares its own parameters below.
Momenta rise on a cosine from the given value to 1 over the run; their defaults are lower than
the papers' (0.99-0.996 over hundreds of thousands of steps) because a run here has hundreds.
"""

from __future__ import annotations

from typing import Iterator

from astroclr.api import MethodSpec, Param, hookimpl

_TEMPERATURE = "NT-Xent temperature (0.1: best of 0.1, 0.2, 0.5 for SimCLR on the SDSS sample, " \
               "docs/quality.md)"


def _momentum(default: float) -> Param:
    return Param("momentum", float, default, "momentum of the EMA copy at the start (rises to 1 "
                 "on a cosine over the run)", low=0.0, high=1.0)


@hookimpl
def astroclr_methods() -> Iterator[MethodSpec]:
    yield MethodSpec(
        "simclr", "SimCLR: NT-Xent, in-batch negatives gathered from every process",
        "astroclr_methods.simclr:SimCLR",
        params=(Param("temperature", float, 0.1, _TEMPERATURE, low=1e-3, high=10.0),))
    yield MethodSpec(
        "moco", "MoCo v2: momentum key encoder, negatives from a memory bank",
        "astroclr_methods.moco:MoCo",
        params=(Param("temperature", float, 0.2, "NT-Xent temperature (MoCo v2: 0.2)", low=1e-3,
                      high=10.0),
                Param("memory_bank", int, 2048, "negatives kept in the memory bank (keys of past "
                      "batches; about half the embedded sample)", low=1),
                _momentum(0.99)))
    yield MethodSpec(
        "byol", "BYOL: predict a momentum target's projection; no negatives",
        "astroclr_methods.byol:BYOL",
        params=(_momentum(0.99),
                Param("asymmetric", bool, True, "BYOL's asymmetric views: seeing degraded (psf) "
                      "always in the first view, with p = 0.1 in the second")))
    yield MethodSpec(
        "vicreg", "VICReg: invariance + variance + covariance terms; no negatives",
        "astroclr_methods.vicreg:VICReg",
        params=(Param("lambda_param", float, 25.0, "weight of the invariance term", low=0.0),
                Param("mu_param", float, 25.0, "weight of the variance term", low=0.0),
                Param("nu_param", float, 1.0, "weight of the covariance term", low=0.0)))
    yield MethodSpec(
        "barlowtwins", "Barlow Twins: cross-correlation of the views pushed to the identity",
        "astroclr_methods.barlowtwins:BarlowTwins",
        params=(Param("lambda_param", float, 5e-3, "weight of the redundancy-reduction term",
                      low=0.0),))
    yield MethodSpec(
        "dino", "DINO: self-distillation to a momentum teacher (centred, sharpened)",
        "astroclr_methods.dino:DINO",
        params=(Param("prototypes", int, 1024, "output size of the prototype layer", low=2),
                _momentum(0.99),
                Param("teacher_temp", float, 0.04, "teacher temperature after warm-up", low=1e-3),
                Param("warmup_teacher_temp", float, 0.04, "teacher temperature at the start",
                      low=1e-3),
                Param("teacher_temp_warmup", float, 0.3, "fraction of the run warming the "
                      "teacher temperature up", low=0.0, high=1.0),
                Param("student_temp", float, 0.1, "student temperature", low=1e-3),
                Param("center_momentum", float, 0.9, "momentum of the teacher's centre",
                      low=0.0, high=1.0),
                Param("freeze_last_layer", int, 1, "epochs with the prototype layer frozen",
                      low=0),
                Param("local_views", int, 0, "multi-crop: small local views per image, seen by "
                      "the student only (0: off)", low=0),
                Param("local_scale", list, [0.3, 0.6], "multi-crop: crop side range of a local "
                      "view, fraction of the image side (crop_resize)", low=0.0, high=1.0,
                      length=2),
                Param("local_size", float, 0.5, "multi-crop: side of a local view, fraction of "
                      "the image side", low=0.1, high=1.0),
                Param("keep", str, "teacher", "encoder the run keeps and embeds with",
                      choices=("teacher", "student"))))
