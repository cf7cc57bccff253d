#!/usr/bin/env python3
"""Score the totals a service read against the labels beside the images.

Usage: score_totals.py LABEL FILES KEY < pairs
  FILES  the image list the benchmark uploaded (one path a line); each image's
         label is the .json beside it (`totalAmount`).
  KEY    how the pairs name an image: `sha256` (of its bytes: our
         `receipts.content_hash`) or `name` (its file name: the seed's
         `original_name`).
  pairs  tab-separated `key<TAB>total` lines, total empty when none was read.

Prints one JSON line: right (equal to the label to the cent), wrong (a total
that is not the label's), missing (no total, or no receipt at all), and the
number of labelled images; images without a labelled total are not scored.
"""
import hashlib
import json
import os
import sys
from decimal import Decimal, InvalidOperation


def amount(text):
    try:
        return Decimal(str(text)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return None


def main():
    label, files, key = sys.argv[1:4]
    read = {}
    for line in sys.stdin:
        name, _, total = line.rstrip("\n").partition("\t")
        read[name] = amount(total) if total else None
    score = {"label": label, "right": 0, "wrong": 0, "missing": 0, "labelled": 0}
    for path in filter(None, (p.strip() for p in open(files))):
        with open(os.path.splitext(path)[0] + ".json") as f:
            expected = amount(json.load(f).get("totalAmount"))
        if expected is None:
            continue
        score["labelled"] += 1
        if key == "sha256":
            with open(path, "rb") as f:
                name = hashlib.sha256(f.read()).hexdigest()
        else:
            name = os.path.basename(path)
        got = read.get(name)
        if got is None:
            score["missing"] += 1
        elif got == expected:
            score["right"] += 1
        else:
            score["wrong"] += 1
    print(json.dumps(score))


if __name__ == "__main__":
    main()
