"""Train MA-HMR: ``torchrun --nproc-per-node N -m training.train --config training/configs/<stage>.yaml``.

Also runs as ``python -m training.train`` (one process). What it does (spec mahmr_model §4-§5):

* model from ``model`` (a ``build_model`` preset + overrides), initialised from ``init_checkpoint`` by the
  official-layout loader (non-strict: stage 1 -> 2 adds the FoV head, 2 -> 3 expands 10 -> 11 betas);
* data: one ``HumanDataset`` per entry of ``data.datasets``, mixed by weight (``MixedDataset``), split over
  ranks by ``DistributedSampler``;
* AdamW (weight decay 1e-4) with ``optim.lr_encoder`` for every parameter whose name contains "encoder" and
  ``optim.lr`` otherwise, cosine schedule without warm-up over all steps, gradient clipping at 1.0;
* stage 1 / SAT-HMR denoising queries when the config has a ``dn`` section (``training.denoising``; the
  model needs ``dn_enc``, i.e. ``use_dn``), with the DN losses ``<name>_dn`` on the same weights;
* bf16 autocast on CUDA when ``train.amp``; DDP when launched by torchrun (NCCL on GPU, gloo on CPU);
* checkpoints ``<output_dir>/checkpoint-<step>/pytorch_model.bin`` hold the model's own state_dict, i.e. the
  official flat key layout (``load_checkpoint`` reads them), next to ``training_state.pt`` (optimizer,
  scheduler, step) for ``--resume``; TensorBoard when importable, a JSON-lines log always, tqdm on rank 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from mahmr_ros.model import build_model, load_checkpoint
from training.config import data_path, load_config
from training.data.augment import AugmentConfig
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


class TrainStep(nn.Module):
    """Wraps the network so that DDP sees the training forward (all decoder layers) as ``forward``.

    Args:
        model: the ``MetricAwareHMR``.
        dn: denoising settings, or None (no DN queries).
        seed, rank: seed of the per-step DN noise generator (deterministic under resume).
    """

    def __init__(self, model: nn.Module, dn: DNConfig | None = None, seed: int = 42, rank: int = 0) -> None:
        super().__init__()
        self.model = model
        self.dn = dn
        self.seed, self.rank = seed, rank

    def forward(self, images, resized_hw, targets: list[dict] | None = None, step: int = 0):
        dn = None
        if self.dn is not None and targets is not None:
            # Built inside forward so that DDP sees dn_enc's use (its gradient is reduced like the rest).
            gen = step_generator(self.seed, step, self.rank)
            dn = build_dn_queries(self.model.dn_enc, targets, self.dn, self.model.cfg.num_queries, gen)
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


def build_data(cfg: dict, body, input_size: int, seed: int) -> MixedDataset:
    aug = AugmentConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.get("augment", {}).items()}
    )
    members, weights = [], []
    joint_set = cfg["train"].get("joint_set", "smpl45")
    for entry in cfg["data"]["datasets"]:
        weights.append(float(entry.get("weight", 1.0)))
        if (entry["format"] == "rh") != (joint_set == "crowdpose14"):
            raise ValueError(
                f"[training.train] dataset {entry['annots']} ({entry['format']}) does not fit "
                f"train.joint_set={joint_set}: RelativeHuman (keypoint-only) samples need crowdpose14, SMPL "
                "datasets smpl45"
            )
        if entry["format"] == "rh":
            members.append(
                KeypointDataset(
                    data_path(cfg, entry["annots"]), data_path(cfg, entry["images"]), input_size, aug, seed
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
    return MixedDataset(members, weights, cfg["data"].get("epoch_length"), seed)


def param_groups(model: nn.Module, lr: float, lr_encoder: float, weight_decay: float) -> list[dict]:
    """Official split: names containing "encoder" (incl. ``encoder_pos_embeds`` etc.) use ``lr_encoder``."""
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


def move_targets(targets: list[dict], device) -> list[dict]:
    return [{k: v.to(device) for k, v in t.items()} for t in targets]


def save_checkpoint(out_dir: Path, model, optimizer, scheduler, step: int, epoch: int) -> Path:
    """Write ``checkpoint-<step>/`` (official-layout state_dict + training state) and ``latest``."""
    ckpt = out_dir / f"checkpoint-{step}"
    ckpt.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), ckpt / MODEL_FILE)
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
             "epoch": epoch}  # fmt: skip
    torch.save(state, ckpt / STATE_FILE)
    (out_dir / "latest").write_text(ckpt.name + "\n")
    return ckpt


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


def train(cfg: dict, resume: str | None = None) -> dict:
    """Run training as configured; returns a summary (steps, last losses, checkpoint path)."""
    rank, world, device = setup_distributed()
    tcfg, ocfg = cfg["train"], cfg["optim"]
    seed = int(tcfg.get("seed", 42))
    seed_everything(seed)
    out_dir = Path(cfg.get("output_dir", "runs/train"))
    model = build_model(cfg["model"]).train()
    dn_cfg = DNConfig.from_config(cfg.get("dn"))
    if dn_cfg is not None and not hasattr(model, "dn_enc"):
        raise ValueError(
            "[training.train] the config enables denoising (dn section) but the model has no dn_enc: use "
            "model.preset default or set model.use_dn: true (spec mahmr_model §1.3)"
        )
    if cfg.get("init_checkpoint") and resume is None:
        report = load_checkpoint(model, cfg["init_checkpoint"], strict=False)
        if rank == 0:
            # Non-strict on purpose (stage changes add or widen heads); list what did not load so that a
            # wrong file or preset is visible at once.
            print(f"[training.train] init from {cfg['init_checkpoint']} ({report['detected_config']}): "
                  f"missing {report['missing'][:8]}{'...' if len(report['missing']) > 8 else ''}, "
                  f"unexpected {len(report['unexpected'])}, mismatched {report['mismatched'][:4]}, "
                  f"expanded {len(report['expanded'])}")  # fmt: skip
    body_cfg = cfg["body"]
    body = SMPLLayer(body_cfg["smpl"], body_cfg.get("kid_template"), model.cfg.num_betas)
    # The data side gets its own CPU copy: loader workers build GT meshes on the CPU while the loss copy
    # lives on the GPU.
    data_body = SMPLLayer(body_cfg["smpl"], body_cfg.get("kid_template"), model.cfg.num_betas)
    data = build_data(cfg, data_body, model.cfg.input_size, seed)
    model.to(device)
    body.to(device)
    batch_size = int(tcfg.get("batch_size", 32))
    sampler = torch.utils.data.DistributedSampler(
        data, num_replicas=world, rank=rank, shuffle=True, seed=seed
    )
    num_workers = int(tcfg.get("num_workers", 0))
    steps_per_epoch = len(sampler) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"[training.train] {len(data)} samples / {world} ranks < batch_size {batch_size}")
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
    step = 0
    if resume is not None:
        ckpt = resolve_resume(resume, out_dir)
        load_checkpoint(model, ckpt / MODEL_FILE, strict=True)
        state = torch.load(ckpt / STATE_FILE, map_location=device, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
    joint_set = tcfg.get("joint_set", "smpl45")
    extra = body_cfg.get("extra_regressor")
    if joint_set == "crowdpose14" and not extra:
        raise ValueError(
            "[training.train] train.joint_set crowdpose14 needs body.extra_regressor (J_regressor_extra)"
        )
    extra = torch.as_tensor(np.load(extra), dtype=torch.float32) if extra else None
    criterion = SetCriterion(body, cfg["loss_weights"], model.cfg.input_size, joint_set=joint_set,
                             extra_regressor=extra).to(device)  # fmt: skip
    runner: nn.Module = TrainStep(model, dn_cfg, seed, rank)
    if world > 1:
        runner = nn.parallel.DistributedDataParallel(
            runner, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )
    use_amp = bool(tcfg.get("amp", True)) and device.type == "cuda"
    clip = float(ocfg.get("clip_grad", 1.0))
    log_every = int(tcfg.get("log_every", 10))
    save_every = int(tcfg.get("save_every", 0))  # 0 = at the end of every epoch only
    writer = _tensorboard(out_dir) if rank == 0 else None
    log_file = None
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        log_file = open(out_dir / "train_log.jsonl", "a")
    history: list[dict] = []
    progress = tqdm(total=total_steps, initial=step, disable=rank != 0, desc="train", dynamic_ncols=True)
    ckpt_path = None
    start_epoch = step // steps_per_epoch
    for epoch in range(start_epoch, math.ceil(total_steps / steps_per_epoch)):
        data.set_epoch(epoch)
        sampler.set_epoch(epoch)
        # After a resume, start at the first batch not yet trained on, without loading the earlier ones.
        skip = step - epoch * steps_per_epoch
        order = list(sampler)[skip * batch_size :]
        loader = torch.utils.data.DataLoader(
            data, batch_size=batch_size, sampler=order, collate_fn=collate, num_workers=num_workers,
            drop_last=True, persistent_workers=False,
        )  # fmt: skip
        for batch in loader:
            if step >= total_steps:
                break
            t0 = time.perf_counter()
            images = batch["images"].to(device, non_blocking=True)
            targets = move_targets(batch["targets"], device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                outputs = runner(images, batch["resized_hw"].to(device), targets, step)
            outputs = _float(outputs)
            loss, terms = criterion(outputs, targets)
            if dn_cfg is not None:
                dn_total, dn_terms = dn_losses(criterion, outputs, targets)
                loss = loss + dn_total
                terms.update(dn_terms)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            scheduler.step()
            step += 1
            record = {"step": step, "epoch": epoch, "loss": _mean_over_ranks(loss.detach()),
                      "grad_norm": float(grad_norm), "lr": scheduler.get_last_lr()[-1],
                      "sec": time.perf_counter() - t0}  # fmt: skip
            record.update({k: float(v.detach()) for k, v in terms.items() if "." not in k})
            history.append(record)
            progress.update(1)
            progress.set_postfix(loss=f"{record['loss']:.4f}")
            if rank == 0 and (step % log_every == 0 or step == total_steps):
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                if writer is not None:
                    for k, v in record.items():
                        if k not in ("step", "epoch"):
                            writer.add_scalar(f"train/{k}", v, step)
            if rank == 0 and save_every and step % save_every == 0:
                ckpt_path = save_checkpoint(out_dir, model, optimizer, scheduler, step, epoch)
        if rank == 0 and (not save_every or step == total_steps):
            ckpt_path = save_checkpoint(out_dir, model, optimizer, scheduler, step, epoch)
        if step >= total_steps:
            break
    progress.close()
    if log_file is not None:
        log_file.close()
    if writer is not None:
        writer.close()
    if world > 1:
        dist.barrier()
    return {"steps": step, "history": history, "checkpoint": str(ckpt_path) if ckpt_path else None}


def _float(outputs: dict) -> dict:
    """Cast autocast outputs to float32 for the losses (SMPL and the loss terms run in fp32)."""
    cast = lambda v: v.float() if torch.is_tensor(v) and v.is_floating_point() else v  # noqa: E731
    out = {k: cast(v) for k, v in outputs.items() if k != "layers"}
    out["layers"] = [{k: cast(v) for k, v in layer.items()} for layer in outputs["layers"]]
    if outputs.get("dn") is not None:
        out["dn"] = {**outputs["dn"], "layers": [{k: cast(v) for k, v in layer.items()}
                                                 for layer in outputs["dn"]["layers"]]}  # fmt: skip
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
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="training/configs/<stage>.yaml")
    parser.add_argument("--resume", help="checkpoint-<step> folder, or 'auto' for the latest in output_dir")
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
