#!/usr/bin/env python3
"""Writes the Jinja feature cases of tests/data/chat_templates/cases.json into DIR, one template
per file, as part of the Jinja fuzzer's seed corpus (`make fuzz`)."""
import json
import os
import sys

cases, out_dir = sys.argv[1], sys.argv[2]
os.makedirs(out_dir, exist_ok=True)
with open(cases, encoding="utf-8") as f:
    features = json.load(f)["features"]
for case in features:
    with open(os.path.join(out_dir, case["name"] + ".jinja"), "w", encoding="utf-8") as f:
        f.write(case["template"])
