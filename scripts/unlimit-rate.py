#!/usr/bin/env python3
# scripts/unlimit-rate.py CONFIG...: set limits.identity_requests_per_second
# and identity_request_burst to 1,000,000 in each gateway configuration.
#
# For the benchmarks and the soak, whose one client identity makes far more
# requests a second than the default limit (500) allows: a limit it never
# meets keeps the check on every measured request without refusing any.
# Never for a gateway in service (docs/OPERATIONS.md section 5).
import json
import sys

for path in sys.argv[1:]:
    with open(path) as f:
        cfg = json.load(f)
    cfg.setdefault("limits", {})
    cfg["limits"]["identity_requests_per_second"] = 1000000
    cfg["limits"]["identity_request_burst"] = 1000000
    with open(path, "w") as f:
        json.dump(cfg, f, indent="\t")
