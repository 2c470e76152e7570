#!/usr/bin/env python3
"""Writes the starting corpora of the fuzz targets from the wire vectors (protocol/tests/vectors)
and a list of channels. Run from the repository root: python3 fuzz/seed-corpus.py"""
import glob, hashlib, json, os

root = os.path.dirname(os.path.abspath(__file__))
vectors = os.path.join(root, "..", "protocol", "tests", "vectors")

def put(target, text):
    d = os.path.join(root, "corpus", target)
    os.makedirs(d, exist_ok=True)
    data = text.encode()
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

channels = set()
for path in sorted(glob.glob(os.path.join(vectors, "*.json"))):
    doc = json.load(open(path))
    target = "client_frame" if doc["direction"] == "client" else "server_frame"
    for case in doc["cases"]:
        put(target, case["text"])
        if isinstance(case["value"].get("channel"), str):
            channels.add(case["value"]["channel"])
for c in sorted(channels) + ["repo:o/n/prs", "repo:o/n/issues", "org:x", "user:.a", "repo:a/b/commits", "repo:/", ""]:
    put("channel", c)
print("corpus written to", os.path.join(root, "corpus"))
