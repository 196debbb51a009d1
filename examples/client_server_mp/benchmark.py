#!/usr/bin/env python3
"""client_server_mp on keel beside DPDK's own, in the same run.

Packets per second forwarded by the clients (the sum of their tx), over null ports,
with 1 and 2 clients, keel's mp_server/mp_client against DPDK's built from the dpdk-doc
sources (a benchmark dependency only, like libdpdk), in the same lcore layout: server
`-l 0-1` (main lcore forwards, lcore 1 displays), clients `--lcores 2@1` and `3@1`.
DPDK runs with `--no-pci --vdev net_null0 --vdev net_null1`. Runs alternate keel and
DPDK; every run is printed, then keel/DPDK per run against the target (>= 1.0).

The rate is read off the servers' own stats screens (both print the clients' tx every
second): the clients' tx at the first screen after --warmup seconds and at the last one
--seconds later, over the wall-clock time between the two screens.

  examples/client_server_mp/benchmark.py [--runs 3] [--seconds 4] [--warmup 2]

Needs root or hugepages (DPDK's EAL), g++ and make, libdpdk-dev and dpdk-doc
(tools/setup installs them).
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DPDK_SOURCES = "/usr/share/dpdk/examples/multi_process/client_server_mp"
TX = re.compile(rb"^\s+tx:\s+(\d+), tx_drop:\s+(\d+)")


def build_keel():
    subprocess.run(["bazel", "build", "-c", "opt", "//examples/client_server_mp:all"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return os.path.join(ROOT, "bazel-bin/examples/client_server_mp")


def build_dpdk(work):
    if not os.path.isdir(DPDK_SOURCES):
        sys.exit("DPDK's sample sources are missing: install dpdk-doc (tools/setup does)")
    src = os.path.join(work, "client_server_mp")
    shutil.copytree(DPDK_SOURCES, src)
    for part in ("mp_server", "mp_client"):
        subprocess.run(["make", "-C", os.path.join(src, part)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return src


def hugetlbfs_mounts():
    with open("/proc/mounts") as mounts:
        return [line.split()[1] for line in mounts if line.split()[2] == "hugetlbfs"]


class Screens:
    """Reads a server's output; keeps (time, sum of the clients' tx) per screen."""

    def __init__(self, proc, clients):
        self.proc, self.clients, self.samples, self.text = proc, clients, [], b""
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        current = []
        for line in iter(self.proc.stdout.readline, b""):
            self.text += line
            m = TX.match(line)
            if m:
                current.append(int(m.group(1)))
                if len(current) == self.clients:
                    self.samples.append((time.monotonic(), sum(current)))
                    current = []


def run(side, binaries, clients, seconds, warmup, prefix):
    stdbuf = ["stdbuf", "-oL"]
    if side == "keel":
        server = [os.path.join(binaries, "mp_server"), "-l", "0-1", "-m", "64",
                  "--file-prefix", prefix, "--", "-p", "3", "-n", str(clients)]
        client = lambda i: [os.path.join(binaries, "mp_client"), "--proc-type=secondary",
                            "--lcores", "%d@1" % (2 + i), "--file-prefix", prefix, "--",
                            "-n", str(i)]
    else:
        vdevs = ["--no-pci", "--vdev", "net_null0", "--vdev", "net_null1"]
        server = [os.path.join(binaries, "mp_server/build/mp_server"), "-l", "0-1"] + vdevs + [
            "--file-prefix", prefix, "--", "-p", "3", "-n", str(clients)]
        client = lambda i: [os.path.join(binaries, "mp_client/build/mp_client"),
                            "--proc-type=secondary", "--lcores", "%d@1" % (2 + i)] + vdevs + [
                                "--file-prefix", prefix, "--", "-n", str(i)]
    srv = subprocess.Popen(stdbuf + server, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    screens = Screens(srv, clients)
    deadline = time.monotonic() + 30
    # Ready once it shows its first screen (DPDK's display waits 3 s for its first).
    while not screens.samples and time.monotonic() < deadline and srv.poll() is None:
        time.sleep(0.05)
    procs = [subprocess.Popen(stdbuf + client(i), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for i in range(clients)]
    time.sleep(warmup)
    first = len(screens.samples)
    time.sleep(seconds)
    samples = screens.samples[first:]
    for p in procs + [srv]:
        p.send_signal(signal.SIGINT)  # both sides' samples exit on SIGINT
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if side == "DPDK":
        # DPDK keeps its hugepage files and runtime directory for secondaries; the group
        # is gone now.
        for mount in hugetlbfs_mounts():
            for name in os.listdir(mount):
                if name.startswith(prefix + "map_"):
                    os.unlink(os.path.join(mount, name))
        shutil.rmtree(os.path.join("/var/run/dpdk", prefix), ignore_errors=True)
    if len(samples) < 2:
        sys.exit("%s: no stats screens (%d); output:\n%s" % (side, len(samples),
                                                               screens.text.decode(errors="replace")[-2000:]))
    (t0, tx0), (t1, tx1) = samples[0], samples[-1]
    return (tx1 - tx0) / (t1 - t0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--warmup", type=float, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        binaries = {"keel": build_keel(), "DPDK": build_dpdk(work)}
        results = {}
        for clients in (1, 2):
            for r in range(args.runs):
                # Alternate which side goes first, so a slow spell does not fall on one.
                order = ("keel", "DPDK") if r % 2 == 0 else ("DPDK", "keel")
                for side in order:
                    prefix = "bench-cs-%s-%d" % (side.lower(), os.getpid())
                    pps = run(side, binaries[side], clients, args.seconds, args.warmup, prefix)
                    results.setdefault((clients, side), []).append(pps)
                    print("%d client%s  %-4s  run %d: %6.2f Mpps" % (
                        clients, "" if clients == 1 else "s", side, r + 1, pps / 1e6), flush=True)
        print("\nclient_server_mp over null ports: packets per second the clients forwarded")
        print("%-10s %-28s %-28s %s" % ("clients", "keel (Mpps, every run)", "DPDK (Mpps, every run)",
                                         "keel/DPDK per run (target >= 1.0)"))
        for clients in (1, 2):
            k, d = results[(clients, "keel")], results[(clients, "DPDK")]
            ratios = [a / b for a, b in zip(k, d)]
            print("%-10d %-28s %-28s %s %s" % (
                clients, " ".join("%.2f" % (x / 1e6) for x in k),
                " ".join("%.2f" % (x / 1e6) for x in d), " ".join("%.2f" % x for x in ratios),
                "(met)" if min(ratios) >= 1.0 else "(missed)"))
        record_figures(results)


def record_figures(results):
    """The median run of each side, as the component benchmarks hand them to tools/bench
    (tools/bench/figures.h): one JSON line per row, appended to $KEEL_BENCH_FIGURES."""
    path = os.environ.get("KEEL_BENCH_FIGURES")
    if not path:
        return
    with open(path, "a") as out:
        for clients in (1, 2):
            k = sorted(results[(clients, "keel")])
            d = sorted(results[(clients, "DPDK")])
            out.write(json.dumps({
                "table": "packets per second the clients forwarded",
                "case": "%d client%s" % (clients, "" if clients == 1 else "s"),
                "unit": "Mpps", "keel": k[len(k) // 2] / 1e6, "dpdk": d[len(d) // 2] / 1e6,
                "better": "higher"}) + "\n")


if __name__ == "__main__":
    main()
