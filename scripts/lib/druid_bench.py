"""Helpers of scripts/bench-druid.sh, each a subcommand; no third-party modules.

  seed URL N          fill a Druid cluster with about N artefacts, as an operator's would look
                      (rules, lookups in two tiers, compaction, Kafka supervisors, basic-security
                      users with roles), several requests at once; prints what it made as JSON
  handcopy SRC DST    what a hand-written sync script does: read every artefact from SRC and
                      write it to DST, one request at a time, no diff; prints requests and refusals
  writes URL          the writes a cluster has recorded: audit rows of every artefact type plus
                      supervisor versions (JSON)

Credentials: admin / the password in BENCH_DRUID_PASSWORD (basic auth). The user passwords of
seeded users are BENCH_DRUID_USER_PASSWORD.
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

AUTHN = "MyBasicMetadataAuthenticator"
AUTHZ = "MyBasicMetadataAuthorizer"
SEC = "/druid-ext/basic-security"
AUDIT_TYPES = [
    "rules",
    "coordinator.config",
    "worker.config",
    "coordinator.compaction.config",
    "lookupsConfig",
    f"basic_authentication_{AUTHN}_users",
    f"basic_authorization_{AUTHZ}_users",
    f"basic_authorization_{AUTHZ}_roles",
]


def auth_header():
    token = base64.b64encode(f"admin:{os.environ['BENCH_DRUID_PASSWORD']}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def call(base, method, path, body=None, ok=(200, 202)):
    """One request; returns (status, parsed body or None). Raises on a status not in ok."""
    data = None if body is None else json.dumps(body).encode()
    headers = dict(auth_header())
    headers["X-Druid-Author"] = "bench"
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    if status not in ok:
        raise RuntimeError(f"{method} {path}: {status} {text[:200]!r}")
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text.decode(errors="replace")


def supervisor(i, suspended):
    ds = f"events_{i:04d}"
    return {
        "type": "kafka",
        "spec": {
            "dataSchema": {
                "dataSource": ds,
                "timestampSpec": {"column": "ts", "format": "iso"},
                "dimensionsSpec": {"dimensions": ["country", "device", "page"]},
                "granularitySpec": {"segmentGranularity": "HOUR", "queryGranularity": "MINUTE", "rollup": True},
            },
            "ioConfig": {
                "topic": f"events-{i}",
                "inputFormat": {"type": "json"},
                "consumerProperties": {"bootstrap.servers": "kafka-1:9092,kafka-2:9092"},
                "taskCount": 2,
            },
            "tuningConfig": {"type": "kafka", "maxRowsPerSegment": 5000000},
        },
        "suspended": suspended,
    }


def seed(base, n):
    rules = n * 35 // 100
    lookups = n * 30 // 100
    compaction = n * 15 // 100
    supervisors = n * 10 // 100
    users = max(1, (n - rules - lookups - compaction - supervisors) // 5)
    pw = os.environ["BENCH_DRUID_USER_PASSWORD"]
    call(base, "POST", "/druid/coordinator/v1/config",
         {"maxSegmentsToMove": 250, "balancerComputeThreads": 2, "decommissioningNodes": ["hist-9:8083"]})
    call(base, "POST", "/druid/indexer/v1/worker",
         {"type": "default", "selectStrategy": {"type": "equalDistribution"}})
    call(base, "POST", "/druid/coordinator/v1/rules/_default",
         [{"type": "loadForever", "tieredReplicants": {"_default_tier": 2}}])
    call(base, "POST", "/druid/coordinator/v1/lookups/config", {})
    jobs = []
    for i in range(rules):
        jobs.append(("POST", f"/druid/coordinator/v1/rules/sales_{i:04d}", [
            {"type": "loadByPeriod", "period": "P30D", "tieredReplicants": {"hot": 2, "_default_tier": 1}},
            {"type": "dropForever"}]))
    for i in range(compaction):
        jobs.append(("POST", "/druid/coordinator/v1/config/compaction",
                     {"dataSource": f"sales_{i:04d}", "skipOffsetFromLatest": "P2D",
                      "tuningConfig": {"partitionsSpec": {"type": "dynamic"}}}))
    for i in range(supervisors):
        jobs.append(("POST", "/druid/indexer/v1/supervisor", supervisor(i, i % 2 == 1)))
    for i in range(lookups):
        tier = "__default" if i % 2 == 0 else "hot"
        jobs.append(("POST", f"/druid/coordinator/v1/lookups/config/{tier}/country_{i:04d}",
                     {"version": "v1", "lookupExtractorFactory": {
                         "type": "map", "map": {"US": "United States", "FR": "France", str(i): f"code {i}"}}}))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda j: call(base, *j), jobs))
    # Security in order: each user's role must exist before it is assigned.
    def user(i):
        name, role = f"analyst_{i:03d}", f"reader_{i:03d}"
        call(base, "POST", f"{SEC}/authentication/db/{AUTHN}/users/{name}")
        call(base, "POST", f"{SEC}/authentication/db/{AUTHN}/users/{name}/credentials", {"password": pw})
        call(base, "POST", f"{SEC}/authorization/db/{AUTHZ}/users/{name}")
        call(base, "POST", f"{SEC}/authorization/db/{AUTHZ}/roles/{role}")
        call(base, "POST", f"{SEC}/authorization/db/{AUTHZ}/roles/{role}/permissions", [
            {"resource": {"name": f"sales_{i:04d}", "type": "DATASOURCE"}, "action": "READ"},
            {"resource": {"name": "STATE", "type": "STATE"}, "action": "READ"}])
        call(base, "POST", f"{SEC}/authorization/db/{AUTHZ}/users/{name}/roles/{role}")
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(user, range(users)))
    print(json.dumps({"rules": rules + 1, "lookups": lookups, "compaction": compaction,
                      "supervisors": supervisors, "users": users, "roles": users}))
    return users


def handcopy(src, dst):
    """The naive sync every Druid shop writes: GET, then POST everything, one call at a time."""
    count = {"requests": 0, "refused": 0}

    def go(base, method, path, body=None):
        count["requests"] += 1
        try:
            return call(base, method, path, body)[1]
        except RuntimeError as e:
            count["refused"] += 1
            print(f"handcopy: {e}", file=sys.stderr)
            return None

    pw = os.environ["BENCH_DRUID_USER_PASSWORD"]
    for name in go(src, "GET", f"{SEC}/authentication/db/{AUTHN}/users") or []:
        if name == "admin":
            continue
        go(dst, "POST", f"{SEC}/authentication/db/{AUTHN}/users/{name}")
        go(dst, "POST", f"{SEC}/authentication/db/{AUTHN}/users/{name}/credentials", {"password": pw})
    for name in go(src, "GET", f"{SEC}/authorization/db/{AUTHZ}/roles") or []:
        if name == "admin":
            continue
        role = go(src, "GET", f"{SEC}/authorization/db/{AUTHZ}/roles/{name}?full") or {}
        go(dst, "POST", f"{SEC}/authorization/db/{AUTHZ}/roles/{name}")
        perms = [{"resource": p["resourceAction"]["resource"], "action": p["resourceAction"]["action"]}
                 for p in role.get("permissions", []) if "resourceAction" in p] or \
                [p for p in role.get("permissions", []) if "resource" in p]
        go(dst, "POST", f"{SEC}/authorization/db/{AUTHZ}/roles/{name}/permissions", perms)
    for name in go(src, "GET", f"{SEC}/authorization/db/{AUTHZ}/users") or []:
        if name == "admin":
            continue
        user = go(src, "GET", f"{SEC}/authorization/db/{AUTHZ}/users/{name}") or {}
        go(dst, "POST", f"{SEC}/authorization/db/{AUTHZ}/users/{name}")
        for role in user.get("roles", []):
            go(dst, "POST", f"{SEC}/authorization/db/{AUTHZ}/users/{name}/roles/{role}")
    lookups = go(src, "GET", "/druid/coordinator/v1/lookups/config/all")
    go(dst, "POST", "/druid/coordinator/v1/lookups/config", {})
    if lookups:
        go(dst, "POST", "/druid/coordinator/v1/lookups/config", lookups)
    config = go(src, "GET", "/druid/coordinator/v1/config")
    go(dst, "POST", "/druid/coordinator/v1/config", config)
    worker = go(src, "GET", "/druid/indexer/v1/worker")
    if worker:
        go(dst, "POST", "/druid/indexer/v1/worker", worker)
    for ds, rules in (go(src, "GET", "/druid/coordinator/v1/rules") or {}).items():
        go(dst, "POST", f"/druid/coordinator/v1/rules/{ds}", rules)
    for cfg in (go(src, "GET", "/druid/coordinator/v1/config/compaction") or {}).get("compactionConfigs", []):
        go(dst, "POST", "/druid/coordinator/v1/config/compaction", cfg)
    for sid in go(src, "GET", "/druid/indexer/v1/supervisor") or []:
        spec = go(src, "GET", f"/druid/indexer/v1/supervisor/{sid}")
        if spec:
            go(dst, "POST", "/druid/indexer/v1/supervisor", spec)
    print(json.dumps(count))


def writes(base):
    total = {}
    for t in AUDIT_TYPES:
        total[t] = len(call(base, "GET", f"/druid-sim/v1/audit?type={t}")[1] or [])
    total["supervisor versions"] = len(call(base, "GET", "/druid/indexer/v1/supervisor/history")[1] or {}) and sum(
        len(v) for v in call(base, "GET", "/druid/indexer/v1/supervisor/history")[1].values())
    total["total"] = sum(total.values())
    print(json.dumps(total))


def main():
    cmd = sys.argv[1]
    if cmd == "seed":
        seed(sys.argv[2], int(sys.argv[3]))
    elif cmd == "handcopy":
        handcopy(sys.argv[2], sys.argv[3])
    elif cmd == "writes":
        writes(sys.argv[2])
    else:
        sys.exit(f"unknown subcommand {cmd}")


if __name__ == "__main__":
    main()
