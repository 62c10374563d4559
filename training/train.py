"""Train MA-HMR: ``torchrun --nproc-per-node N -m training.train --config
training/configs/<stage>.yaml``.

Also runs as ``python -m training.train`` (one process). What it does (spec mahmr_model §4-§5):

* model from ``model`` (a ``build_model`` preset + overrides); starting weights from ``init``
  (DINOv2 backbone in its authors' layout, ``smpl_mean_params.npz``; ``model.pretrained``) and then
  ``init_checkpoint`` through the official-layout loader (non-strict: stage 1 -> 2 adds the FoV
  head, 2 -> 3 expands 10 -> 11 betas); without either the mean pose is the built-in upright one;
* data: one ``HumanDataset`` per entry of ``data.datasets``, each contributing ``fraction`` x its
  size per epoch (``MixedDataset``; 1.0 = one pass, the official concatenation), split over ranks
  by ``DistributedSampler``; gendered GT meshes where a file has genders
  (``body.smpl_male/smpl_female``);
* AdamW (weight decay 1e-4) with ``optim.lr_encoder`` for every parameter whose name contains
  "encoder" and ``optim.lr`` otherwise, cosine schedule without warm-up over all optimizer steps,
  gradient clipping 1.0;
* ``train.grad_accum`` micro-batches per optimizer step (DDP syncs gradients only on the last one);
  ``train.amp``: ``bf16`` (or true) / ``fp16`` (with a gradient scaler) autocast on CUDA, off on
  the CPU; ``train.activation_checkpointing`` recomputes the ViT blocks in the backward pass;
* stage 1 / SAT-HMR denoising queries when the config has a ``dn`` section
  (``training.denoising``);
* checkpoints ``<output_dir>/checkpoint-<step>/pytorch_model.bin`` hold the model's own state_dict,
  i.e. the official flat key layout (``load_checkpoint`` reads them), next to ``training_state.pt``
  (optimizer, scheduler, scaler, step) for ``--resume``; ``train.keep_checkpoints`` keeps only the
  newest N (and the best); ``eval`` runs benchmarks during training (rank 0) and records the best
  checkpoint in ``best``;
* logs: a JSON-lines log and TensorBoard when importable, tqdm on rank 0. Losses are summed on the
  device and read back only on logging steps (one host sync per ``log_every`` steps for the logs).

Hand-written rather than Hugging Face ``accelerate`` (the official code's choice): see
training/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from mahmr_ros.model import build_model, load_checkpoint
from mahmr_ros.model.pretrained import load_dinov2, load_smpl_mean_params
from training.config import data_path, load_config
from training.data.augment import AugmentConfig
from training.data.body import GenderedBody
from training.data.dataset import HumanDataset, collate
from training.data.keypoint_dataset import KeypointDataset
from training.data.mixing import MixedDataset
from training.denoising import DNConfig, build_dn_queries, step_generator
from training.forward import forward_train
from training.losses.criterion import SetCriterion
from training.losses.denoising import dn_losses
from training.smpl_layer import SMPLLayer

MODEL_FILE = "pytorch_model.bin"
STATE_FILE = "training_state.pt"
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TrainStep(nn.Module):
    """Wraps the network so that DDP sees the training forward (all decoder layers) as ``forward``.

    Args:
        model: the ``MetricAwareHMR``.
        dn: denoising settings, or None (no DN queries).
        seed, rank: seed of the per-step DN noise generator (deterministic under resume).
    """

    def __init__(
        self, model: nn.Module, dn: DNConfig | None = None, seed: int = 42, rank: int = 0
    ) -> None:
        super().__init__()
        self.model = model
        self.dn = dn
        self.seed, self.rank = seed, rank

    def forward(self, images, resized_hw, targets: list[dict] | None = None, step: int = 0):
        dn = None
        if self.dn is not None and targets is not None:
            # Built inside forward so that DDP sees dn_enc's use (its gradient is reduced like the
            # rest).
            gen = step_generator(self.seed, step, self.rank)
            dn = build_dn_queries(
                self.model.dn_enc, targets, self.dn, self.model.cfg.num_queries, gen
            )
        return forward_train(self.model, images, resized_hw, dn)


def setup_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_bodies(body_cfg: dict, num_betas: int) -> tuple[SMPLLayer, GenderedBody]:
    """The neutral ``SMPLLayer`` (predictions) and the GT body (neutral + optional gendered
    models)."""
    kid = body_cfg.get("kid_template")
    neutral = SMPLLayer(body_cfg["smpl"], kid, num_betas)
    gendered = {g: SMPLLayer(body_cfg[f"smpl_{g}"], kid, num_betas) for g in ("male", "female")
                if body_cfg.get(f"smpl_{g}")}  # fmt: skip
    return neutral, GenderedBody(
        neutral, **gendered, allow_neutral_gt=bool(body_cfg.get("allow_neutral_gt"))
    )


def build_data(cfg: dict, body, input_size: int, seed: int) -> MixedDataset:
    aug = AugmentConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.get("augment", {}).items()}
    )
    members, fractions = [], []
    joint_set = cfg["train"].get("joint_set", "smpl45")
    for entry in cfg["data"]["datasets"]:
        fractions.append(float(entry.get("fraction", 1.0)))
        if (entry["format"] == "rh") != (joint_set == "crowdpose14"):
            raise ValueError(
                f"[training.train] dataset {entry['annots']} ({entry['format']}) does not fit "
                f"train.joint_set={joint_set}: RelativeHuman (keypoint-only) samples need "
                "crowdpose14, SMPL datasets smpl45"
            )
        if entry["format"] == "rh":
            members.append(
                KeypointDataset(
                    data_path(cfg, entry["annots"]),
                    data_path(cfg, entry["images"]),
                    input_size,
                    aug,
                    seed,
                )
            )
            continue
        members.append(
            HumanDataset(
                entry["format"],
                data_path(cfg, entry["annots"]),
                data_path(cfg, entry["images"]),
                body,
                input_size,
                aug,
                seed,
                entry.get("kwargs"),
            )
        )
    return MixedDataset(members, fractions, cfg["data"].get("epoch_length"), seed)


def param_groups(
    model: nn.Module, lr: float, lr_encoder: float, weight_decay: float
) -> list[dict]:
    """Official split: names containing "encoder" (incl. ``encoder_pos_embeds`` etc.) use
    ``lr_encoder``."""
    enc = [p for n, p in model.named_parameters() if p.requires_grad and "encoder" in n]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and "encoder" not in n]
    return [
        {"params": enc, "lr": lr_encoder, "weight_decay": weight_decay},
        {"params": rest, "lr": lr, "weight_decay": weight_decay},
    ]


def cosine_schedule(optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Cosine decay from the base LR to 0 over ``total_steps``, no warm-up."""
    total = max(total_steps, 1)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    )


#: Per-image flags the losses branch on: kept on the CPU so that reading them costs no device sync.
HOST_FLAGS = ("has_3d", "detect_all")


def move_targets(targets: list[dict], device) -> list[dict]:
    return [{k: v if k in HOST_FLAGS else v.to(device, non_blocking=True) for k, v in t.items()}
            for t in targets]  # fmt: skip


def save_checkpoint(
    out_dir: Path, model, optimizer, scheduler, scaler, step: int, epoch: int
) -> Path:
    """Write ``checkpoint-<step>/`` (official-layout state_dict + training state) and
    ``latest``."""
    ckpt = out_dir / f"checkpoint-{step}"
    ckpt.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), ckpt / MODEL_FILE)
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "step": step, "epoch": epoch,
             "scaler": scaler.state_dict() if scaler is not None else None}  # fmt: skip
    torch.save(state, ckpt / STATE_FILE)
    (out_dir / "latest").write_text(ckpt.name + "\n")
    return ckpt


def prune_checkpoints(out_dir: Path, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` ``checkpoint-*`` folders, never the best; returns the
    removed."""
    if keep <= 0:
        return []
    best = (out_dir / "best").read_text().split()[0] if (out_dir / "best").is_file() else None
    ckpts = sorted(out_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    removed = []
    for path in ckpts[:-keep]:
        if path.name != best:
            shutil.rmtree(path)
            removed.append(path.name)
    return removed


def amp_dtype(setting, device: torch.device) -> torch.dtype | None:
    """``train.amp``: true / "bf16" -> bfloat16, "fp16" -> float16 (with a grad scaler), false ->
    None.

    Autocast is used on CUDA only (the CPU trains in float32).
    """
    if setting in (False, None, "no", "fp32") or device.type != "cuda":
        return None
    key = "bf16" if setting is True else str(setting)
    if key not in AMP_DTYPES:
        raise ValueError(
            f"[training.train] train.amp must be true/false, bf16 or fp16, got {setting!r}"
        )
    return AMP_DTYPES[key]


def resolve_resume(path: str, out_dir: Path) -> Path:
    """``auto`` = the ``latest`` checkpoint of ``out_dir``; else a ``checkpoint-<step>`` folder."""
    if path == "auto":
        latest = out_dir / "latest"
        if not latest.is_file():
            raise FileNotFoundError(f"[training.train] --resume auto: no {latest}")
        path = out_dir / latest.read_text().strip()
    path = Path(path)
    for name in (MODEL_FILE, STATE_FILE):
        if not (path / name).is_file():
            raise FileNotFoundError(f"[training.train] resume folder {path} lacks {name}")
    return path


def init_weights(model: nn.Module, cfg: dict, rank: int) -> None:
    """``init`` (DINOv2 backbone, SMPL mean parameters), then ``init_checkpoint`` (overrides its
    keys)."""
    init = cfg.get("init") or {}
    if init.get("backbone"):
        report = load_dinov2(model, init["backbone"])
        if rank == 0:
            n = len(report["loaded"])
            print(
                f"[training.train] encoder from DINOv2 {init['backbone']}: {n} tensors, "
                f"ignored {report['ignored']}"
            )
    if init.get("smpl_mean_params"):
        load_smpl_mean_params(model, init["smpl_mean_params"])
    if cfg.get("init_checkpoint"):
        report = load_checkpoint(model, cfg["init_checkpoint"], strict=False)
        if rank == 0:
            # Non-strict on purpose (stage changes add or widen heads); list what did not load so
            # that a wrong file or preset is visible at once.
            print(f"[training.train] init from {cfg['init_checkpoint']} "
                  f"({report['detected_config']}): missing "
                  f"{report['missing'][:8]}{'...' if len(report['missing']) > 8 else ''}, "
                  f"unexpected {len(report['unexpected'])}, mismatched "
                  f"{report['mismatched'][:4]}, expanded {len(report['expanded'])}")  # fmt: skip


def train(cfg: dict, resume: str | None = None) -> dict:
    """Run training as configured; returns a summary (steps, logged records, checkpoint, best)."""
    rank, world, device = setup_distributed()
    tcfg, ocfg = cfg["train"], cfg["optim"]
    seed = int(tcfg.get("seed", 42))
    seed_everything(seed)
    out_dir = Path(cfg.get("output_dir", "runs/train"))
    model = build_model(cfg["model"]).train()
    dn_cfg = DNConfig.from_config(cfg.get("dn"))
    if dn_cfg is not None and not hasattr(model, "dn_enc"):
        raise ValueError(
            "[training.train] the config enables denoising (dn section) but the model has no "
            "dn_enc: use model.preset default or set model.use_dn: true (spec mahmr_model §1.3)"
        )
    if resume is None:
        init_weights(model, cfg, rank)
    model.set_grad_checkpointing(bool(tcfg.get("activation_checkpointing", False)))
    body_cfg = cfg["body"]
    body, _ = build_bodies(body_cfg, model.cfg.num_betas)
    # The data side gets its own CPU copy: loader workers build GT meshes on the CPU while the loss
    # copy lives on the GPU.
    _, data_body = build_bodies(body_cfg, model.cfg.num_betas)
    data = build_data(cfg, data_body, model.cfg.input_size, seed)
    model.to(device)
    body.to(device)
    batch_size = int(tcfg.get("batch_size", 32))
    accum = int(tcfg.get("grad_accum", 1))
    if accum < 1:
        raise ValueError(f"[training.train] train.grad_accum must be >= 1, got {accum}")
    sampler = torch.utils.data.DistributedSampler(
        data, num_replicas=world, rank=rank, shuffle=True, seed=seed
    )
    num_workers = int(tcfg.get("num_workers", 0))
    steps_per_epoch = len(sampler) // (batch_size * accum)  # optimizer steps
    if steps_per_epoch == 0:
        raise ValueError(
            f"[training.train] {len(data)} samples / {world} ranks < batch_size {batch_size} x "
            f"grad_accum {accum}"
        )
    epochs = int(tcfg.get("epochs", 1))
    total_steps = int(tcfg.get("max_steps") or epochs * steps_per_epoch)
    optimizer = torch.optim.AdamW(
        param_groups(
            model,
            float(ocfg["lr"]),
            float(ocfg.get("lr_encoder", ocfg["lr"])),
            float(ocfg.get("weight_decay", 1e-4)),
        )  # fmt: skip
    )
    scheduler = cosine_schedule(optimizer, total_steps)
    dtype = amp_dtype(tcfg.get("amp", True), device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    step = 0
    if resume is not None:
        ckpt = resolve_resume(resume, out_dir)
        load_checkpoint(model, ckpt / MODEL_FILE, strict=True)
        state = torch.load(ckpt / STATE_FILE, map_location=device, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step = int(state["step"])
    joint_set = tcfg.get("joint_set", "smpl45")
    extra = body_cfg.get("extra_regressor")
    if joint_set == "crowdpose14" and not extra:
        raise ValueError(
            "[training.train] train.joint_set crowdpose14 needs body.extra_regressor "
            "(J_regressor_extra)"
        )
    extra = torch.as_tensor(np.load(extra), dtype=torch.float32) if extra else None
    criterion = SetCriterion(body, cfg["loss_weights"], model.cfg.input_size, joint_set=joint_set,
                             extra_regressor=extra).to(device)  # fmt: skip
    runner: nn.Module = TrainStep(model, dn_cfg, seed, rank)
    if world > 1:
        runner = nn.parallel.DistributedDataParallel(
            runner,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    evaluator = TrainEval.from_config(cfg, model, body_cfg, device) if rank == 0 else None
    if cfg.get("eval") and world > 1 and rank != 0:
        TrainEval.check(cfg)
    clip = float(ocfg.get("clip_grad", 1.0))
    log_every = int(tcfg.get("log_every", 10))
    save_every = int(tcfg.get("save_every", 0))  # 0 = at the end of every epoch only
    keep = int(tcfg.get("keep_checkpoints", 0))
    writer = _tensorboard(out_dir) if rank == 0 else None
    log_file = None
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        log_file = open(out_dir / "train_log.jsonl", "a")
    history: list[dict] = []
    progress = tqdm(
        total=total_steps, initial=step, disable=rank != 0, desc="train", dynamic_ncols=True
    )
    ckpt_path = None
    sums: dict[str, torch.Tensor] = {}
    count, t_log = 0, time.perf_counter()
    start_epoch = step // steps_per_epoch
    micro = batch_size * accum
    for epoch in range(start_epoch, math.ceil(total_steps / steps_per_epoch)):
        data.set_epoch(epoch)
        sampler.set_epoch(epoch)
        # Whole optimizer steps only; after a resume, start at the first step not yet trained on.
        skip = step - epoch * steps_per_epoch
        order = list(sampler)[skip * micro : steps_per_epoch * micro]
        loader = torch.utils.data.DataLoader(
            data, batch_size=batch_size, sampler=order, collate_fn=collate,
            num_workers=num_workers, drop_last=True, persistent_workers=False,
            pin_memory=device.type == "cuda",
        )  # fmt: skip
        for i, batch in enumerate(loader):
            if step >= total_steps:
                break
            last_micro = (i + 1) % accum == 0
            images = batch["images"].to(device, non_blocking=True)
            targets = move_targets(batch["targets"], device)
            # DDP all-reduces gradients only on the last micro-batch of an optimizer step.
            sync = contextlib.nullcontext() if last_micro or world == 1 else runner.no_sync()
            with sync:
                with torch.autocast(
                    device.type, dtype=dtype or torch.float32, enabled=dtype is not None
                ):
                    outputs = runner(images, batch["resized_hw"].to(device), targets, step)
                outputs = _float(outputs)
                loss, terms = criterion(outputs, targets)
                if dn_cfg is not None:
                    dn_total, dn_terms = dn_losses(criterion, outputs, targets)
                    loss = loss + dn_total
                    terms.update(dn_terms)
                scaled = loss / accum
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
            for k, v in {"loss": loss, **{k: v for k, v in terms.items() if "." not in k}}.items():
                sums[k] = sums.get(k, 0.0) + v.detach()
            count += 1
            if not last_micro:
                continue
            if scaler is not None:
                scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            progress.update(1)
            if step % log_every == 0 or step == total_steps:
                # The only host sync of the logs: the device-side sums, once per log_every steps.
                means = {k: _mean_over_ranks(v / count) for k, v in sums.items()}
                record = {
                    "step": step, "epoch": epoch, **means, "grad_norm": float(grad_norm),
                    "lr": scheduler.get_last_lr()[-1],
                    "sec_per_step": (time.perf_counter() - t_log) * accum / count,
                }  # fmt: skip
                sums, count, t_log = {}, 0, time.perf_counter()
                history.append(record)
                progress.set_postfix(loss=f"{record['loss']:.4f}")
                if rank == 0:
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                    if writer is not None:
                        for k, v in record.items():
                            if k not in ("step", "epoch"):
                                writer.add_scalar(f"train/{k}", v, step)
            end_of_epoch = step == min(total_steps, (epoch + 1) * steps_per_epoch)
            if (save_every and step % save_every == 0) or (end_of_epoch and not save_every):
                ckpt_path = _checkpoint_and_eval(out_dir, model, optimizer, scheduler, scaler,
                                                 step, epoch, rank, world, evaluator, writer,
                                                 keep)  # fmt: skip
            elif evaluator is not None and evaluator.due(step, end_of_epoch, epoch):
                ckpt_path = _checkpoint_and_eval(out_dir, model, optimizer, scheduler, scaler,
                                                 step, epoch, rank, world, evaluator, writer,
                                                 keep)  # fmt: skip
        if step >= total_steps:
            break
    progress.close()
    if log_file is not None:
        log_file.close()
    if writer is not None:
        writer.close()
    if world > 1:
        dist.barrier()
    best = (out_dir / "best").read_text().split()[0] if (out_dir / "best").is_file() else None
    return {"steps": step, "history": history, "checkpoint": str(ckpt_path) if ckpt_path else None,
            "best": str(out_dir / best) if best else None}  # fmt: skip


def _checkpoint_and_eval(out_dir, model, optimizer, scheduler, scaler, step, epoch, rank, world,
                         evaluator, writer, keep) -> Path | None:  # fmt: skip
    """Rank 0 saves (and evaluates, when due); every rank waits for it so no one runs ahead."""
    ckpt = None
    if rank == 0:
        ckpt = save_checkpoint(out_dir, model, optimizer, scheduler, scaler, step, epoch)
        if evaluator is not None:
            evaluator.run(ckpt, step, epoch, writer)
        prune_checkpoints(out_dir, keep)
    if world > 1:
        dist.barrier()
    return ckpt


class TrainEval:
    """``eval`` section: benchmarks run on rank 0 during training, best checkpoint recorded in
    ``best``.

    Config keys: ``benchmarks`` (list of ``{benchmark, annots, images, limit}``, paths relative to
    ``data.root``), ``every_epochs`` (default 1) or ``every_steps`` (evaluate on save steps that
    are due), ``conf`` (0.3), ``select`` = ``{metric: "<benchmark>/<metric key>", mode: min|max}``.
    Body files come from the ``body`` section (``h36m_regressor``, ``extra_regressor``,
    ``body_verts``, gendered models).
    """

    def __init__(self, cfg: dict, model: nn.Module, body_cfg: dict, device: torch.device):
        from training.eval.run import NetworkPredictor

        ecfg = cfg["eval"]
        self.check(cfg)
        self.model = model
        self.benchmarks = ecfg["benchmarks"]
        self.every_epochs = int(ecfg.get("every_epochs", 1))
        self.every_steps = int(ecfg.get("every_steps", 0))
        select = ecfg.get("select") or {}
        self.metric = select.get("metric")
        self.mode = select.get("mode", "min")
        self.out_dir = Path(cfg.get("output_dir", "runs/train"))
        self.cfg = cfg
        self.best_value = None
        if (self.out_dir / "best").is_file():
            parts = (self.out_dir / "best").read_text().split()
            self.best_value = float(parts[1]) if len(parts) > 1 else None
        self.gt_body = build_bodies(body_cfg, model.cfg.num_betas)[1]
        load = lambda k: None if not body_cfg.get(k) else np.load(body_cfg[k])  # noqa: E731
        self.h36m, self.extra = load("h36m_regressor"), load("extra_regressor")
        self.body_verts = load("body_verts")
        # The predictions use their own neutral layer on the device; the GT body stays on the CPU.
        pred_body = SMPLLayer(body_cfg["smpl"], body_cfg.get("kid_template"), model.cfg.num_betas)
        conf = float(ecfg.get("conf", 0.3))
        self.predictors = {
            h: NetworkPredictor(model, pred_body, conf, str(device), h) for h in (False, True)
        }
        model.train()  # NetworkPredictor switches the model to eval mode

    @staticmethod
    def check(cfg: dict) -> None:
        ecfg = cfg.get("eval") or {}
        if not ecfg.get("benchmarks"):
            raise ValueError(
                "[training.train] eval needs eval.benchmarks (a list of {benchmark, annots, "
                "images})"
            )
        metric = (ecfg.get("select") or {}).get("metric")
        names = {b["benchmark"] for b in ecfg["benchmarks"]}
        if metric is not None and metric.split("/")[0] not in names:
            raise ValueError(
                f"[training.train] eval.select.metric {metric!r} must start with one of "
                f"{sorted(names)}"
            )
        if (ecfg.get("select") or {}).get("mode", "min") not in ("min", "max"):
            raise ValueError("[training.train] eval.select.mode must be min or max")

    @classmethod
    def from_config(cls, cfg: dict, model, body_cfg: dict, device) -> TrainEval | None:
        return cls(cfg, model, body_cfg, device) if cfg.get("eval") else None

    def due(self, step: int, end_of_epoch: bool, epoch: int) -> bool:
        if self.every_steps:
            return step % self.every_steps == 0
        return end_of_epoch and (epoch + 1) % self.every_epochs == 0

    def run(self, ckpt: Path, step: int, epoch: int, writer) -> dict:
        from training.data.formats import read
        from training.eval.run import BENCHMARK_FORMAT, evaluate, load_image_fn

        self.model.eval()
        results = {}
        try:
            for entry in self.benchmarks:
                name = entry["benchmark"]
                anns = read(BENCHMARK_FORMAT[name], data_path(self.cfg, entry["annots"]))
                anns = anns[: entry["limit"]] if entry.get("limit") else anns
                predictor = self.predictors[name == "panoptic"]
                images = load_image_fn(data_path(self.cfg, entry["images"]))
                with torch.no_grad():
                    metrics = evaluate(name, anns, images, predictor, self.gt_body, self.h36m,
                                       self.extra, self.body_verts, progress=False)  # fmt: skip
                results.update(
                    {f"{name}/{k}": v for k, v in metrics.items() if isinstance(v, int | float)}
                )
        finally:
            self.model.train()
        record = {"step": step, "epoch": epoch, "checkpoint": ckpt.name, **results}
        with open(self.out_dir / "eval_log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if writer is not None:
            for k, v in results.items():
                writer.add_scalar(f"eval/{k}", v, step)
        value = results.get(self.metric) if self.metric else None
        if value is not None and (
            self.best_value is None or (value < self.best_value) == (self.mode == "min")
        ):
            self.best_value = value
            (self.out_dir / "best").write_text(f"{ckpt.name} {value}\n")
        return record


def _float(outputs: dict) -> dict:
    """Cast autocast outputs to float32 for the losses (SMPL and the loss terms run in fp32)."""
    cast = lambda v: v.float() if torch.is_tensor(v) and v.is_floating_point() else v  # noqa: E731
    out = {k: cast(v) for k, v in outputs.items() if k != "layers"}
    out["layers"] = [{k: cast(v) for k, v in layer.items()} for layer in outputs["layers"]]
    if outputs.get("dn") is not None:
        out["dn"] = {
            **outputs["dn"],
            "layers": [{k: cast(v) for k, v in layer.items()}
                       for layer in outputs["dn"]["layers"]],
        }  # fmt: skip
    return out


def _mean_over_ranks(value: torch.Tensor) -> float:
    if dist.is_available() and dist.is_initialized():
        value = value.clone()
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return float(value)


def _tensorboard(out_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("[training.train] tensorboard not installed: logging to train_log.jsonl only")
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", required=True, help="training/configs/<stage>.yaml")
    parser.add_argument(
        "--resume", help="checkpoint-<step> folder, or 'auto' for the latest in output_dir"
    )
    parser.add_argument("--output-dir", help="overrides output_dir of the config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config entry, e.g. --set train.batch_size=8")  # fmt: skip
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.set)
    if args.output_dir:
        cfg["output_dir"] = args.output_dir
    summary = train(cfg, args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        last = summary["history"][-1] if summary["history"] else {}
        print(f"[training.train] done: {summary['steps']} steps, last loss {last.get('loss')}, "
              f"checkpoint {summary['checkpoint']}")  # fmt: skip
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
