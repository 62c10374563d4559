"""End-to-end CPU training with the tiny config: loss goes down, checkpoints use the official
layout, resume is bit-exact, and 2-process DDP (gloo) gives the 1-process loss on the same global
batch."""

from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from mahmr_ros.model import TINY_OVERRIDES, build_model, load_checkpoint
from training.config import load_config
from training.train import main, train

CONFIG = Path(__file__).resolve().parents[2] / "training" / "configs" / "tiny_cpu.yaml"
NO_AUG = {
    "rot_deg": 0,
    "scale_range": [1.0, 1.0],
    "flip": 0,
    "crop": 0,
    "color": 0,
    "occlusion": 0,
}
ONE_DATASET = [{"format": "dto_humans", "annots": "dto_humans_coco/COCO_CHMR_SMPL_OPT.npz",
                "images": "dto_humans_coco/images", "kwargs": {"dataset": "coco"}}]  # fmt: skip


def tiny_cfg(synthetic_root, synthetic_smpl, out: Path, **train_overrides) -> dict:
    model, kid = synthetic_smpl
    sets = [f"data.root={synthetic_root}", f"body.smpl={model}", f"body.kid_template={kid}"]
    cfg = load_config(CONFIG, sets)
    cfg["output_dir"] = str(out)
    cfg["train"].update(train_overrides)
    return cfg


def on_a_fixed_batch(cfg: dict, images: int) -> dict:
    """``cfg`` trained on the same ``images`` images of one dataset every epoch, without
    augmentation."""
    cfg["augment"] = NO_AUG
    cfg["data"].update(datasets=ONE_DATASET, epoch_length=images)
    return cfg


def checkpoint_weights(checkpoint_dir: Path) -> dict:
    """The state dict a checkpoint folder holds (the official ``pytorch_model.bin`` layout)."""
    return torch.load(Path(checkpoint_dir) / "pytorch_model.bin", weights_only=True)


def assert_loss_goes_down(summary: dict, run_dir: Path, steps: int = 6) -> list[dict]:
    """``steps`` finite losses, the last two not both above the first; returns the per-step
    training log."""
    losses = [h["loss"] for h in summary["history"]]
    assert len(losses) == steps and all(torch.isfinite(torch.tensor(losses)))
    assert min(losses[-2:]) < losses[0]
    return [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_tiny_training_reduces_the_loss_on_a_fixed_batch(tmp_path, synthetic_root, synthetic_smpl):
    cfg = tiny_cfg(synthetic_root, synthetic_smpl, tmp_path / "run", max_steps=6, batch_size=3)
    on_a_fixed_batch(cfg, images=3)
    cfg["optim"].update(lr=1e-3, lr_encoder=1e-3)
    log = assert_loss_goes_down(train(cfg), tmp_path / "run")
    assert len(log) == 6 and {"confs", "j2ds", "fov", "depths_mt", "map_confs", "lr"} <= set(
        log[0]
    )


def test_checkpoint_has_the_official_layout_and_resume_is_bit_exact(
    tmp_path, synthetic_root, synthetic_smpl
):
    model, kid = synthetic_smpl
    common = [
        f"--set=data.root={synthetic_root}",
        f"--set=body.smpl={model}",
        f"--set=body.kid_template={kid}",
        "--set=train.max_steps=3",
        "--set=train.save_every=1",
    ]
    assert main(["--config", str(CONFIG), "--output-dir", str(tmp_path / "a"), *common]) == 0
    straight = checkpoint_weights(tmp_path / "a" / "checkpoint-3")
    fresh = build_model(load_config(CONFIG)["model"])
    report = load_checkpoint(
        fresh, tmp_path / "a" / "checkpoint-3" / "pytorch_model.bin", strict=True
    )
    assert not report["missing"] and not report["unexpected"]
    assert (tmp_path / "a" / "latest").read_text().strip() == "checkpoint-3"
    resumed_args = ["--config", str(CONFIG), "--output-dir", str(tmp_path / "b"), *common,
                    "--resume", str(tmp_path / "a" / "checkpoint-1")]  # fmt: skip
    assert main(resumed_args) == 0
    assert_same_weights(straight, checkpoint_weights(tmp_path / "b" / "checkpoint-3"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, cfg: dict, port: int, result: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2",
                      RANK=str(rank), LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    summary = train(cfg)
    if rank == 0:
        Path(result).write_text(json.dumps(summary["history"][0]["loss"]))
    torch.distributed.destroy_process_group()


DDP_WEIGHTS = {"confs": 4, "poses": 5, "betas": 3, "boxes": 2, "giou": 2, "j3ds": 8, "j2ds": 40}


def test_two_process_ddp_matches_one_process(tmp_path, synthetic_root, synthetic_smpl):
    cfg = tiny_cfg(synthetic_root, synthetic_smpl, tmp_path / "one", max_steps=1, batch_size=2)
    on_a_fixed_batch(cfg, images=2)
    cfg["loss_weights"] = (
        DDP_WEIGHTS  # terms whose normalisers are all-reduced (the sums, e.g. fov, are not)
    )
    one = train(cfg)["history"][0]["loss"]
    cfg2 = {**cfg, "output_dir": str(tmp_path / "two"), "train": {**cfg["train"], "batch_size": 1}}
    result = tmp_path / "ddp_loss.json"
    mp.spawn(_ddp_worker, args=(cfg2, _free_port(), str(result)), nprocs=2, join=True)
    two = json.loads(result.read_text())
    assert two == pytest.approx(one, rel=1e-5)


def test_init_from_a_10_beta_checkpoint_expands_the_kid_row(
    tmp_path, synthetic_root, synthetic_smpl, capsys
):
    torch.manual_seed(1)
    tiny = load_config(CONFIG)["model"]
    stage2 = build_model({**tiny, "preset": "fov"})  # 10 betas, as the official stage 2
    torch.save(stage2.state_dict(), tmp_path / "stage2.bin")
    cfg = tiny_cfg(synthetic_root, synthetic_smpl, tmp_path / "run", max_steps=1)
    cfg["init_checkpoint"] = str(tmp_path / "stage2.bin")
    cfg["optim"].update(lr=0.0, lr_encoder=0.0)  # keep the loaded weights as they are
    summary = train(cfg)
    assert "init from" in capsys.readouterr().out
    trained = checkpoint_weights(summary["checkpoint"])
    src = stage2.state_dict()
    torch.testing.assert_close(
        trained["shape_head.0.layers.4.weight"][:10], src["shape_head.0.layers.4.weight"]
    )
    assert (
        trained["shape_head.0.layers.4.weight"][10].abs().sum() == 0
    )  # the kid row starts at zero
    torch.testing.assert_close(trained["fov_head.layers.3.bias"], src["fov_head.layers.3.bias"])


STAGE1_CONFIG = CONFIG.with_name("tiny_stage1_cpu.yaml")


def test_tiny_stage1_trains_with_denoising(tmp_path, synthetic_root, synthetic_smpl):
    """Stage-1 layout (10 betas, fixed camera, dn_enc) with DN queries: DN terms are logged and
    finite, the loss goes down on a fixed batch and dn_enc learns."""
    model, _ = synthetic_smpl
    cfg = load_config(STAGE1_CONFIG, [f"data.root={synthetic_root}", f"body.smpl={model}"])
    cfg.update(output_dir=str(tmp_path / "run"))
    cfg["train"].update(max_steps=6, batch_size=3)
    on_a_fixed_batch(cfg, images=3)
    cfg["optim"].update(lr=1e-3, lr_encoder=1e-3)
    summary = train(cfg)
    log = assert_loss_goes_down(summary, tmp_path / "run")
    dn_keys = {
        "confs_dn",
        "boxes_dn",
        "giou_dn",
        "j2ds_dn",
        "poses_dn",
        "betas_dn",
        "j3ds_dn",
        "depths_dn",
    }
    assert dn_keys <= set(log[0]) and "fov" not in log[0]
    assert all(math.isfinite(rec[k]) for rec in log for k in dn_keys)
    weights = cfg["loss_weights"]
    dn_loss = [
        sum(weights[k.removesuffix("_dn")] * r[k] for k in r if k.endswith("_dn")) for r in log
    ]
    assert dn_loss[-1] < dn_loss[0]  # the DN queries learn to denoise (fresh noise every step)
    torch.manual_seed(42)  # train() seeds 42 before building the model: the same initial weights
    init = build_model(cfg["model"]).state_dict()
    trained = checkpoint_weights(summary["checkpoint"])
    assert not torch.equal(trained["dn_enc.weight"], init["dn_enc.weight"])
    report = load_checkpoint(
        build_model(cfg["model"]), Path(summary["checkpoint"]) / "pytorch_model.bin"
    )
    assert not report["missing"] and not report["unexpected"]


def test_denoising_needs_a_model_with_dn_enc(tmp_path, synthetic_root, synthetic_smpl):
    cfg = tiny_cfg(synthetic_root, synthetic_smpl, tmp_path / "run")
    cfg["dn"] = {"groups": 2}  # tiny_cpu is the fov_kid layout: no dn_enc
    with pytest.raises(ValueError, match="has no dn_enc"):
        train(cfg)


def test_resume_with_denoising_is_bit_exact(tmp_path, synthetic_root, synthetic_smpl):
    """The DN noise comes from a (seed, step, rank) generator, so a resumed run repeats the
    straight one."""
    model, _ = synthetic_smpl
    common = [f"--set=data.root={synthetic_root}", f"--set=body.smpl={model}",
              "--set=train.max_steps=3", "--set=train.save_every=1"]  # fmt: skip
    assert (
        main(["--config", str(STAGE1_CONFIG), "--output-dir", str(tmp_path / "a"), *common]) == 0
    )
    assert main(["--config", str(STAGE1_CONFIG), "--output-dir", str(tmp_path / "b"), *common,
                 "--resume", str(tmp_path / "a" / "checkpoint-1")]) == 0  # fmt: skip
    straight = checkpoint_weights(tmp_path / "a" / "checkpoint-3")
    assert "dn_enc.weight" in straight
    assert_same_weights(straight, checkpoint_weights(tmp_path / "b" / "checkpoint-3"))


def test_gradient_accumulation_equals_the_large_batch(tmp_path, synthetic_root, synthetic_smpl):
    """2 micro-batches of 1 accumulated == one batch of 2. The terms used are means over every
    query / scale-map cell of an image (same count per image): per-micro-batch normalisation gives
    the batch mean."""
    cfg = tiny_cfg(
        synthetic_root, synthetic_smpl, tmp_path / "big", max_steps=1, batch_size=2, save_every=1
    )
    on_a_fixed_batch(cfg, images=2)
    cfg["loss_weights"] = {"confs": 4, "map_confs": 4}
    big = train(cfg)
    acc = {**cfg, "output_dir": str(tmp_path / "acc"),
           "train": {**cfg["train"], "batch_size": 1, "grad_accum": 2}}  # fmt: skip
    accumulated = train(acc)
    assert accumulated["steps"] == big["steps"] == 1
    a, b = checkpoint_weights(big["checkpoint"]), checkpoint_weights(accumulated["checkpoint"])
    init = build_model(cfg["model"]).state_dict()
    changed = [k for k in a if a[k].is_floating_point() and not torch.equal(a[k], init[k])]
    assert changed  # the step did something
    for k in changed:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=5e-6)  # an AdamW step is ~1e-4 (lr)


@pytest.mark.slow
def test_retention_eval_and_best_checkpoint(tmp_path, synthetic_root, synthetic_smpl, manifest):
    cfg = tiny_cfg(synthetic_root, synthetic_smpl, tmp_path / "run", max_steps=3, save_every=1,
                   keep_checkpoints=1, activation_checkpointing=True)  # fmt: skip
    agora = manifest["formats"]["agora"]
    cfg["eval"] = {"every_steps": 1, "benchmarks": [{"benchmark": "agora", "annots": agora["file"],
                                                     "images": agora["image_root"], "limit": 2}],
                   "select": {"metric": "agora/MVE_mm", "mode": "min"}}  # fmt: skip
    summary = train(cfg)
    lines = [json.loads(x) for x in (tmp_path / "run" / "eval_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3] and all("agora/f1" in r for r in lines)
    best_name, best_value = (tmp_path / "run" / "best").read_text().split()
    scored = [
        (r["agora/MVE_mm"], r["checkpoint"]) for r in lines if r.get("agora/MVE_mm") is not None
    ]
    if scored:
        assert best_name == min(scored)[1] and float(best_value) == pytest.approx(min(scored)[0])
    kept = sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*"))
    assert kept == sorted({"checkpoint-3", best_name})  # the newest one, and the best
    assert summary["best"].endswith(best_name)


def test_activation_checkpointing_gives_the_same_gradients():
    from training.forward import forward_train

    torch.manual_seed(0)
    model = build_model({"preset": "fov_kid", **TINY_OVERRIDES}).train()
    images, hw = torch.randn(2, 3, 168, 224), torch.tensor([[168, 224], [150, 224]])
    grads = []
    for flag in (False, True):
        model.zero_grad()
        model.set_grad_checkpointing(flag)
        out = forward_train(model, images, hw)
        (out["layers"][-1]["pred_transl"].sum() + out["scale_map"].sum()).backward()
        grads.append(
            {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        )
    assert grads[0].keys() == grads[1].keys() and any("encoder.blocks" in k for k in grads[0])
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-5, atol=1e-7)


def test_unknown_config_keys_are_rejected_with_a_suggestion():
    with pytest.raises(ValueError, match=r"'bacth_size' \(did you mean 'batch_size'\?\)"):
        load_config(CONFIG, ["train.bacth_size=8"])
    with pytest.raises(ValueError, match="'fraction'"):
        load_config(CONFIG, ["data.datasets=[{format: agora, annots: a, images: b, weight: 2}]"])
    with pytest.raises(ValueError, match="unknown config field"):
        load_config(CONFIG, ["model.dec_layer=3"])
