"""A synthetic COCO-format benchmark fixture and tiny random CLIP / DINO models (CPU, seconds)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

# ---- the synthetic COCO fixture ---------------------------------------------------------------

# COCO-17 order: nose, l_eye, r_eye, l_ear, r_ear, l_sh, r_sh, l_el, r_el, l_wr, r_wr, l_hip, r_hip,
# l_knee, r_knee, l_ank, r_ank. A standing person at (cx, top) of height ~60 px.
STAND = [(0, 0), (2, -2), (-2, -2), (4, -1), (-4, -1), (8, 8), (-8, 8), (9, 20), (-9, 20), (9, 30), (-9, 30),
          (5, 32), (-5, 32), (5, 46), (-5, 46), (5, 60), (-5, 60)]
# Arms raised sideways and one knee up: further from standing.
ACTIVE = [*STAND[:7], (20, 4), (-20, 4), (32, 0), (-32, 0), (5, 32), (-5, 32), (16, 38), (-5, 46), (16, 50),
           (-5, 60)]


def coco_person(points, cx, top, image_id, ann_id, hidden=()):
    kps = []
    for k, (dx, dy) in enumerate(points):
        kps += [0, 0, 0] if k in hidden else [cx + dx, top + dy, 2]
    xs = [kps[3 * k] for k in range(17) if kps[3 * k + 2]]
    ys = [kps[3 * k + 1] for k in range(17) if kps[3 * k + 2]]
    box = [min(xs) - 3.4, min(ys) - 5.6, max(xs) - min(xs) + 6.8, max(ys) - min(ys) + 8.2]
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "keypoints": kps,
            "num_keypoints": sum(1 for k in range(17) if kps[3 * k + 2]), "bbox": box, "area": box[2] * box[3] * 0.6}


def write_coco(root):
    """Five 128x96 images: 1 standing person (id 1), 2 people one active (id 2), an active person
    (id 3), a crowd image (id 4), and 4 people (id 5); captions for all."""
    rng = np.random.default_rng(0)
    (root / "val").mkdir(parents=True)
    images, anns = [], []
    layout = {1: [(STAND, 64, 20)], 2: [(STAND, 35, 20), (ACTIVE, 90, 20)], 3: [(ACTIVE, 64, 20)],
              4: [(STAND, 64, 20)], 5: [(STAND, 15 + 30 * k, 20) for k in range(4)]}
    aid = 100
    for image_id, people in layout.items():
        name = f"{image_id:012d}.jpg"
        Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(root / "val" / name, quality=95)
        images.append({"id": image_id, "file_name": name, "width": 128, "height": 96})
        for points, cx, top in people:
            aid += 1
            anns.append(coco_person(points, cx, top, image_id, aid, hidden=(3,) if image_id == 2 else ()))
    anns[-5]["iscrowd"] = 1  # image 4
    captions = [{"id": 500 + k, "image_id": i, "caption": f"caption {k} of image {i}"}
                for i in layout for k in range(3)]
    (root / "kp.json").write_text(json.dumps({"images": images, "annotations": anns}))
    (root / "cap.json").write_text(json.dumps({"images": images, "annotations": captions}))
    return root / "kp.json", root / "cap.json", root / "val"



def save_tiny_clip(folder):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789.,"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in chars:
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    import torch

    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_dino(folder):
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                       image_size=32, patch_size=8)
    ViTModel(config, add_pooling_layer=False).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


