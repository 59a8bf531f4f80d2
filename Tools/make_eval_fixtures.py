#!/usr/bin/env python3
"""Writes the detection-metric fixtures: COCO AP/AR from pycocotools' COCOeval, and CrowdHuman-style AP50, MR^-2 and
JI with ignore regions, plus recall on the crowd and sparse ground-truth subsets.

Usage: python3 Tools/make_eval_fixtures.py   (needs numpy, scipy, pycocotools)
Writes Tests/DetectionTests/Fixtures/eval_coco_gt.json, eval_coco_results.json, eval_crowd.odgt,
eval_crowd_results.json and eval_expected.json.

The crowd metrics are written out below from the definitions of the CrowdDet evaluation toolkit
(Chu et al. 2020, github.com/Purkialo/CrowdDet, lib/evaluate/APMRToolkits/{image,database}.py and
lib/evaluate/compute_JI.py with JIToolkits/JI_tools.py), in the form that mmdetection ports it
(mmdet/evaluation/metrics/crowdhuman_metric.py): Caltech matching at IoU 0.5 with ignore regions matched by
intersection over the detection's area; AP as the trapezoid area under the precision-recall points; MR^-2 as the
geometric mean of the miss rate at nine FPPI reference points 10^-2..10^0; JI as the mean per-image
k / (m + n - k) of a maximum bipartite matching at IoU >= 0.5, best over score thresholds 0.0..0.9.
"""
import json
import os

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "DetectionTests", "Fixtures")


def jitter(rng, box, amount):
    x, y, w, h = box
    return [round(float(x + rng.normal(0, amount * w)), 2), round(float(y + rng.normal(0, amount * h)), 2),
            round(float(max(1.0, w * (1 + rng.normal(0, amount)))), 2),
            round(float(max(1.0, h * (1 + rng.normal(0, amount)))), 2)]


def coco_case(rng):
    """Ground truth over 14 images and 3 categories with all three area ranges, crowds, and an image without
    annotations; results with near and far detections, duplicates, false positives, score ties and one image with
    more than 100 detections."""
    images, annotations, results = [], [], []
    size = (480, 640)
    next_id = 1
    for image_id in range(1, 15):
        images.append({"id": image_id, "file_name": f"{image_id:06d}.png", "height": size[0], "width": size[1]})
        count = 0 if image_id == 5 else int(rng.integers(1, 9))
        for _ in range(count):
            side = float(np.exp(rng.uniform(np.log(8), np.log(300))))
            w, h = round(side * rng.uniform(0.5, 1.5), 1), round(side * rng.uniform(0.5, 1.5), 1)
            x, y = round(float(rng.uniform(0, size[1] - w)), 1), round(float(rng.uniform(0, size[0] - h)), 1)
            crowd = int(rng.uniform() < 0.1)
            annotations.append({"id": next_id, "image_id": image_id, "category_id": int(rng.integers(1, 4)),
                                "bbox": [x, y, w, h], "area": round(w * h * float(rng.uniform(0.6, 1.0)), 2),
                                "iscrowd": crowd})
            next_id += 1
    for a in annotations:
        for _ in range(int(rng.integers(0, 3))):
            category = a["category_id"] if rng.uniform() < 0.85 else int(rng.integers(1, 4))
            results.append({"image_id": a["image_id"], "category_id": category,
                            "bbox": jitter(rng, a["bbox"], float(rng.choice([0.02, 0.08, 0.2]))),
                            "score": round(float(rng.uniform(0.05, 1.0)), 3)})
    for image_id in range(1, 15):
        for _ in range(int(rng.integers(0, 6))):
            w, h = float(rng.uniform(5, 200)), float(rng.uniform(5, 200))
            results.append({"image_id": image_id, "category_id": int(rng.integers(1, 4)),
                            "bbox": [round(float(rng.uniform(0, 600)), 2), round(float(rng.uniform(0, 440)), 2),
                                     round(w, 2), round(h, 2)],
                            "score": round(float(rng.uniform(0.05, 0.6)), 2)})
    # Image 3: 130 detections of one category, so that maxDets 100 cuts the list.
    crowded = [a for a in annotations if a["image_id"] == 3]
    for i in range(130):
        base = crowded[i % len(crowded)]
        results.append({"image_id": 3, "category_id": base["category_id"], "bbox": jitter(rng, base["bbox"], 0.1),
                        "score": round(float(rng.uniform(0.05, 0.9)), 2)})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}, {"id": 3, "name": "dog"}]}, results


def coco_stats(gt_path, results_path):
    gt = COCO(gt_path)
    dt = gt.loadRes(results_path)
    evaluation = COCOeval(gt, dt, "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return [float(s) for s in evaluation.stats]


def crowd_case(rng):
    """CrowdHuman-style records: crowds of people (pairs and triples overlapping at IoU > 0.5), lone people,
    `mask` ignore regions and `extra.ignore` people; detections near most people, duplicates, false positives,
    detections inside ignore regions, and boxes crossing the image's border."""
    gt_records, dt_records = [], []
    for index in range(10):
        width, height = 640, 480
        boxes = []
        for _ in range(int(rng.integers(1, 4))):  # crowds
            w, h = float(rng.uniform(30, 90)), float(rng.uniform(80, 220))
            x, y = float(rng.uniform(-10, width - w)), float(rng.uniform(0, height - h))
            for k in range(int(rng.integers(2, 4))):
                boxes.append(([round(x + k * w * rng.uniform(0.1, 0.3), 1), round(y + rng.uniform(-5, 5), 1),
                               round(w, 1), round(h, 1)], "person", 0))
        for _ in range(int(rng.integers(0, 4))):  # sparse people
            w, h = float(rng.uniform(20, 80)), float(rng.uniform(50, 200))
            boxes.append(([round(float(rng.uniform(0, width - w)), 1), round(float(rng.uniform(0, height - h)), 1),
                           round(w, 1), round(h, 1)], "person", int(rng.uniform() < 0.1)))
        for _ in range(int(rng.integers(0, 3))):  # ignore regions
            w, h = float(rng.uniform(40, 160)), float(rng.uniform(40, 160))
            boxes.append(([round(float(rng.uniform(0, width - w)), 1), round(float(rng.uniform(0, height - h)), 1),
                           round(w, 1), round(h, 1)], "mask", 0))
        ID = f"crowd{index:02d}"
        gt_records.append({"ID": ID, "gtboxes": [{"tag": tag, "fbox": box, "vbox": box, "hbox": box[:2] + [10, 10],
                                                  "extra": {"ignore": ignore}} for box, tag, ignore in boxes]})
        dts = []
        for box, tag, _ in boxes:
            if tag == "person":
                for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):
                    dts.append({"box": jitter(rng, box, float(rng.choice([0.03, 0.1, 0.25]))),
                                "score": round(float(rng.uniform(0.05, 1.0)), 3), "tag": 1})
            else:
                x, y, w, h = box
                dts.append({"box": [round(x + w * 0.2, 1), round(y + h * 0.2, 1), round(w * 0.5, 1), round(h * 0.5, 1)],
                            "score": round(float(rng.uniform(0.05, 0.9)), 3), "tag": 1})
        for _ in range(int(rng.integers(0, 5))):
            w, h = float(rng.uniform(10, 100)), float(rng.uniform(20, 200))
            dts.append({"box": [round(float(rng.uniform(-20, width - 10)), 1), round(float(rng.uniform(0, height)), 1),
                                round(w, 1), round(h, 1)], "score": round(float(rng.uniform(0.05, 0.8)), 3), "tag": 1})
        dt_records.append({"ID": ID, "width": width, "height": height, "dtboxes": dts})
    return gt_records, dt_records


# ---- The CrowdDet toolkit's definitions -------------------------------------------------------------------------

def overlaps(a, b, mode):
    """IoU (mode 'iou') or intersection over the area of a's box (mode 'iof'), boxes x1 y1 x2 y2, no +1."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter if mode == "iou" else area_a[:, None]
    return inter / np.maximum(union, np.finfo(np.float64).eps)


def load(gt_record, dt_record):
    gt = []
    for rb in gt_record["gtboxes"]:
        tag = 1 if rb["tag"] == "person" else -1
        if rb.get("extra", {}).get("ignore", 0) != 0:
            tag = -1
        gt.append(rb["fbox"] + [tag])
    gt = np.array(gt, np.float64).reshape(-1, 5)
    gt[:, 2:4] += gt[:, :2]
    dt = np.array([rb["box"] + [rb["score"]] for rb in dt_record["dtboxes"]], np.float64).reshape(-1, 5)
    dt[:, 2:4] += dt[:, :2]
    w, h = dt_record["width"], dt_record["height"]
    for boxes in (gt, dt):
        boxes[:, 0] = np.minimum(np.maximum(boxes[:, 0], 0), w - 1)
        boxes[:, 1] = np.minimum(np.maximum(boxes[:, 1], 0), h - 1)
        boxes[:, 2] = np.maximum(np.minimum(boxes[:, 2], w), 0)
        boxes[:, 3] = np.maximum(np.minimum(boxes[:, 3], h), 0)
    return gt, dt


def compare_caltech(gt, dt, thr=0.5):
    """(score, 1 matched / 0 false positive) per detection that is not ignored; also which gt were matched."""
    dt_order = sorted(range(len(dt)), key=lambda i: dt[i, -1], reverse=True)
    gt_order = sorted(range(len(gt)), key=lambda j: gt[j, -1], reverse=True)
    dts, gts = dt[dt_order], gt[gt_order]
    iou, ioa = overlaps(dts[:, :4], gts[:, :4], "iou"), overlaps(dts[:, :4], gts[:, :4], "iof")
    gt_matched = np.zeros(len(gts))
    out = []
    for i in range(len(dts)):
        maxpos, maxiou = -1, thr
        for j in range(len(gts)):
            if gt_matched[j] == 1:
                continue
            if gts[j, -1] > 0:
                if iou[i, j] > maxiou:
                    maxiou, maxpos = iou[i, j], j
            else:
                if maxpos >= 0:
                    break
                if ioa[i, j] > thr:
                    maxiou, maxpos = ioa[i, j], j
        if maxpos >= 0:
            if gts[maxpos, -1] > 0:
                gt_matched[maxpos] = 1
                out.append((dts[i, -1], 1))
        else:
            out.append((dts[i, -1], 0))
    matched = np.zeros(len(gt))
    matched[np.array(gt_order, dtype=int)] = gt_matched
    return out, matched


def ap_and_mr(score_list, gt_num, img_num):
    score_list = sorted(score_list, key=lambda x: x[0], reverse=True)
    tp = fp = 0.0
    rx, ry, fppi_x, miss_y = [], [], [], []
    for _, label in score_list:
        if label == 1:
            tp += 1
        else:
            fp += 1
        recall = tp / gt_num
        rx.append(recall)
        ry.append(tp / (tp + fp))
        fppi_x.append(fp / img_num)
        miss_y.append(1 - recall)
    ap = sum((rx[k] - rx[k - 1]) * (ry[k - 1] + ry[k]) / 2 for k in range(1, len(rx)))
    ref = [0.0100, 0.0178, 0.03160, 0.0562, 0.1000, 0.1778, 0.3162, 0.5623, 1.000]
    picks = []
    for pos in ref:
        index = next((i for i, v in enumerate(fppi_x) if v >= pos), len(fppi_x) - 1)
        picks.append(miss_y[index])
    with np.errstate(divide="ignore"):
        mr = float(np.exp(np.log(np.array(picks)).mean()))
    return ap, mr


def jaccard(pairs, thr=0.5):
    best = 0.0
    for step in range(10):
        score_thr = 0.1 * step
        ratios, counted = [], 0
        for gt, dt in pairs:
            dt = dt[dt[:, -1] > score_thr][:, :4]
            tag = gt[:, -1] != -1
            people, ignores = gt[tag, :4], gt[~tag, :4]
            matches = []
            if len(dt) and len(people):
                ious = overlaps(dt, people, "iou")
                ious[ious < thr] = 0
                assignment = maximum_bipartite_matching(csr_matrix(ious), perm_type="column")
                matches = [(i, int(j)) for i, j in enumerate(assignment) if j != -1]

            def ignored(boxes):
                if len(ignores) == 0 or len(boxes) == 0:
                    return 0
                return int((overlaps(boxes, ignores, "iof").max(axis=1) > thr).sum())

            matched_dt = {i for i, _ in matches}
            matched_gt = {j for _, j in matches}
            n = len(dt) - ignored(dt[[i for i in range(len(dt)) if i not in matched_dt]])
            m = len(people) - ignored(people[[j for j in range(len(people)) if j not in matched_gt]])
            k = len(matches)
            ratios.append(k / (m + n - k + 1e-6))
            counted += int(n != 0 or m != 0)
        best = max(best, float(np.sum(ratios) / counted))
    return best


def crowd_subsets(gt):
    """Ground-truth people that overlap another person at IoU > 0.5 (crowd), and the other people (sparse)."""
    people = np.where(gt[:, -1] > 0)[0]
    iou = overlaps(gt[people, :4], gt[people, :4], "iou")
    np.fill_diagonal(iou, 0)
    crowd = iou.max(axis=1) > 0.5 if len(people) else np.zeros(0, bool)
    return people[crowd], people[~crowd]


def main():
    rng = np.random.default_rng(11)
    os.makedirs(OUT, exist_ok=True)
    gt, results = coco_case(rng)
    gt_path, results_path = os.path.join(OUT, "eval_coco_gt.json"), os.path.join(OUT, "eval_coco_results.json")
    with open(gt_path, "w") as f:
        json.dump(gt, f)
    with open(results_path, "w") as f:
        json.dump(results, f)
    stats = coco_stats(gt_path, results_path)

    gt_records, dt_records = crowd_case(rng)
    with open(os.path.join(OUT, "eval_crowd.odgt"), "w") as f:
        f.write("\n".join(json.dumps(r) for r in gt_records) + "\n")
    with open(os.path.join(OUT, "eval_crowd_results.json"), "w") as f:
        json.dump(dt_records, f)
    pairs = [load(g, d) for g, d in zip(gt_records, dt_records)]
    score_list, gt_num = [], 0
    crowd_hits = crowd_total = sparse_hits = sparse_total = 0
    for g, d in pairs:
        scores, matched = compare_caltech(g, d)
        score_list += scores
        gt_num += int((g[:, -1] > 0).sum())
        crowd, sparse = crowd_subsets(g)
        crowd_hits += int(matched[crowd].sum())
        crowd_total += len(crowd)
        sparse_hits += int(matched[sparse].sum())
        sparse_total += len(sparse)
    ap, mr = ap_and_mr(score_list, gt_num, len(pairs))
    expected = {"coco": {"stats": stats},
                "crowd": {"ap50": ap, "mr": mr, "ji": jaccard(pairs), "crowd_recall": crowd_hits / crowd_total,
                          "sparse_recall": sparse_hits / sparse_total, "crowd_count": crowd_total,
                          "sparse_count": sparse_total}}
    with open(os.path.join(OUT, "eval_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(json.dumps(expected["crowd"]))


if __name__ == "__main__":
    main()
