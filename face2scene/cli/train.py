"""``face2scene train fadex|restorer|gan|student|reffr-pairs|damage``: training of the learned models (torch)."""
from __future__ import annotations

import argparse
import sys


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` command (``fadex``, ``restorer``, ``reffr-pairs``, ``damage``) to argparse subparsers."""
    p = subparsers.add_parser("train", help="train the learned FaDeX encoder, the compact restorer or the damage detector")
    _add_commands(p)
    return p


def _add_commands(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="train_command", required=True)
    for name, help_ in (("fadex", "the learned FaDeX degradation encoder (contrastive + parameter regression)"),
                        ("restorer", "the compact token-conditioned restorer jointly with MapNet (FaDeX frozen)")):
        q = sub.add_parser(name, help=help_)
        q.add_argument("--data", nargs="+", required=True, metavar="DIR",
                       help="photo folders (sub-folders = persons; held-out validation split by group)")
        q.add_argument("--out", required=True, metavar="FOLDER", help="run folder (checkpoints, curves, weights)")
        q.add_argument("--config", default=None, metavar="FILE", help="JSON overriding the training defaults")
        q.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
        if name == "restorer":
            q.add_argument("--fadex", required=True, metavar="DIR", help="trained FaDeX folder (frozen)")
            q.add_argument("--sd-turbo", default=None, metavar="DIR",
                           help="train the SD-Turbo adapters (LoRA, MapNet) on this diffusers folder instead "
                                "of the compact restorer (a GPU job); writes OUT/adapter/")
            q.add_argument("--prompt-embeds", default=None, metavar="FILE",
                           help="safetensors with 'prompt_embeds' (1 x T x D) for SD-Turbo; default all-zero")
    q = sub.add_parser("gan", help="the GAN restorer's face-code conditioning (Real-ESRGAN x4plus with a "
                                   "zero-initialised per-block scale/shift from MapNet's tokens)")
    q.add_argument("--data", nargs="+", required=True, metavar="DIR",
                   help="photo folders (sub-folders = persons; held-out validation split by group)")
    q.add_argument("--out", required=True, metavar="FOLDER",
                   help="run folder; the result is FOLDER/gan-face (use it with --weights FOLDER)")
    q.add_argument("--config", default=None, metavar="FILE", help="JSON overriding the training defaults "
                   "(face2scene.train.gan.DEFAULTS: crop, batch, adv_weight, train_last, amp, device, ...)")
    q.add_argument("--base", default=None, metavar="DIR",
                   help="RRDBNet folder to start from (default: Real-ESRGAN x4plus, converted on first use)")
    q.add_argument("--compact", default=None, metavar="DIR",
                   help="folder with fadex/ and mapnet/ (frozen; default: the shipped compact weights)")
    q.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    q = sub.add_parser("student", help="the CPU student of the GAN restorer: the compact restorer fine-tuned "
                                       "towards Real-ESRGAN's output and the clean crop, with texture losses")
    q.add_argument("--data", nargs="+", required=True, metavar="DIR",
                   help="photo folders (sub-folders = persons; held-out validation split by group)")
    q.add_argument("--out", required=True, metavar="FOLDER",
                   help="run folder (teacher targets, checkpoints); the result is FOLDER/compact "
                        "(use it with --restorer compact --weights FOLDER)")
    q.add_argument("--config", default=None, metavar="FILE", help="JSON overriding the training defaults "
                   "(face2scene.train.student.DEFAULTS: teacher, teacher_count, teacher_weight, detail_weight, ...)")
    q.add_argument("--compact", default=None, metavar="DIR",
                   help="compact folder to start from (fadex/, mapnet/, restorer/; default: the shipped weights)")
    q.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    q = sub.add_parser("reffr-pairs", help="face pairs restored by the embedded Ref-FR (FaDeX's training data)")
    q.add_argument("--data", nargs="+", required=True, metavar="DIR")
    q.add_argument("--out", required=True, metavar="FOLDER")
    q.add_argument("--bank", type=int, default=24, help="degradations in the shared bank")
    q.add_argument("--per-photo", type=int, default=6, help="degradations per photo")
    q.add_argument("--seed", type=int, default=0)
    q = sub.add_parser("damage", help="the learned damage-detection stage (old prints), on the CPU")
    q.add_argument("--data", nargs="+", required=True, metavar="DIR",
                   help="photo folders (e.g. DATA/identities DATA/scenes); the training split is used")
    q.add_argument("--out", required=True, metavar="FOLDER", help="run folder (cached data, weights, curves)")
    q.add_argument("--config", default=None, metavar="FILE", help="JSON overriding the training defaults")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        if args.train_command == "fadex":
            from ..train.fadex import train_fadex
            train_fadex(args.data, args.out, args.config, resume=not args.no_resume)
        elif args.train_command == "gan":
            from ..train.gan import train_gan
            train_gan(args.data, args.out, args.base, args.compact, args.config, resume=not args.no_resume)
        elif args.train_command == "student":
            from ..train.student import train_student
            train_student(args.data, args.out, args.compact, args.config, resume=not args.no_resume)
        elif args.train_command == "reffr-pairs":
            from ..train import common
            from ..train.reffr_pairs import build_reffr_pairs
            common.setup_torch(1)
            build_reffr_pairs(args.data, args.out, args.bank, args.per_photo, seed=args.seed)
        elif args.train_command == "damage":
            from ..train.damage import train_damage
            train_damage(args.data, args.out, args.config)
        else:
            from ..train.restorer import train_restorer
            train_restorer(args.data, args.out, args.fadex, args.config, resume=not args.no_resume,
                           sd_turbo_dir=args.sd_turbo, prompt_embeds=args.prompt_embeds)
    except (FileNotFoundError, ValueError, ImportError) as e:  # WeightsError is a FileNotFoundError
        print(f"face2scene train: error: {e}", file=sys.stderr)
        return 2
    return 0
