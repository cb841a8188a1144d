#!/usr/bin/env python3
"""Tells whether C2 left a Vector API kernel's vectors boxed in one JVM run, and why.

Run the program once with
  -XX:StartFlightRecording=filename=RUN.jfr,settings=profile
  -XX:+UnlockDiagnosticVMOptions -XX:+LogCompilation -XX:LogFile=RUN.xml
then
  bench/boxcheck.py RUN.jfr RUN.xml PackedQ4.group16Pair [PackedQ6.pair16 ...]

For each kernel it prints
  box_gb       bytes sampled by JFR (jdk.ObjectAllocationSample weights) whose top frame is Vector API code and whose
               first jmoe frame is the kernel: boxed vectors and their payload arrays. A run whose kernel was compiled
               cleanly shows only the warm-up (interpreter/C1) share, under about 2 GB for a Mixtral-like speed run.
  check_failed call sites of AbstractSpecies.checkFailed left in the kernel's last full C2 compilation: species checks
               C2 could not fold because it did not know an operand's exact class; the vectors they take are boxed.
  bimorphic    uncommon traps of reason bimorphic_or_optimized_type_check in that compilation: calls inside the
               JDK's shared Vector API methods that C2 inlined for two receiver classes (e.g. Float256Vector and
               Float512Vector), whose merged result no intrinsic can unbox.
  spec_traps   speculate_class_check traps in AbstractVector.sameSpecies anywhere in the run before that compilation.
(session 30, docs/speed.md "Why some JVM runs box the 256-bit kernels"). Needs the JDK's jfr tool: JAVA_HOME or JFR=/path/to/jfr.
"""
import json
import os
import re
import subprocess
import sys


def jfr_tool():
    if os.environ.get("JFR"):
        return os.environ["JFR"]
    home = os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64")
    return os.path.join(home, "bin", "jfr")


class BadInput(Exception):
    """An input boxcheck cannot read, with a message that names it."""


def boxed_bytes(jfr_file, kernels):
    tool = jfr_tool()
    try:
        run = subprocess.run([tool, "print", "--json", "--events", "jdk.ObjectAllocationSample", "--stack-depth", "30",
                              jfr_file], capture_output=True, text=True)
    except OSError as e:
        raise BadInput("cannot run the JDK's jfr tool %s (%s); set JAVA_HOME or JFR" % (tool, e.strerror))
    if run.returncode != 0:
        why = (run.stderr or run.stdout).strip().splitlines()
        raise BadInput("%s is not a JFR recording jfr can read%s" % (jfr_file, ": " + why[0] if why else ""))
    out = run.stdout
    totals = {k: 0 for k in kernels}
    for event in json.loads(out)["recording"]["events"]:
        values = event["values"]
        frames = (values.get("stackTrace") or {}).get("frames") or []
        if not frames or "incubator/vector" not in frames[0]["method"]["type"]["name"]:
            continue
        ours = [f for f in frames if "/jmoe/" in f["method"]["type"]["name"]]
        if not ours:
            continue
        name = ours[0]["method"]["type"]["name"].split("/")[-1] + "." + ours[0]["method"]["name"]
        if name in totals:
            totals[name] += values["weight"]
    return totals


def compile_record(log_text, kernel):
    """The last non-OSR C2 compilation of kernel (Class.method), as the lines of its <task> element, and its stamp."""
    cls, method = kernel.split(".")
    ids = [m for m in re.finditer(r"<task_queued compile_id='(\d+)' method='dev\.jmoe\.[a-z.]*%s %s [^>]*>" % (cls, method), log_text)
           if "level='" not in m.group(0) or "level='4'" in m.group(0)]
    ids = [m for m in ids if "compile_kind='osr'" not in m.group(0)]
    if not ids:
        return None, None
    cid = ids[-1].group(1)
    start = log_text.find("<task compile_id='%s'" % cid)
    if start < 0:
        return None, None
    end = log_text.find("</task>", start)
    task = log_text[start:end]
    stamp = re.search(r"stamp='([\d.]+)'", task)
    return task, float(stamp.group(1)) if stamp else None


def main(argv):
    if len(argv) < 4:
        print(__doc__)
        return 2
    jfr_file, log_file, kernels = argv[1], argv[2], argv[3:]
    for kernel in kernels:
        if kernel.count(".") != 1:
            raise BadInput("kernel %r is not Class.method (e.g. PackedQ4.group16Pair)" % kernel)
    for f in (jfr_file, log_file):
        if not os.path.isfile(f):
            raise BadInput("no such file: %s" % f)
    totals = boxed_bytes(jfr_file, kernels)
    log_text = open(log_file, errors="replace").read()
    if "<task_queued" not in log_text and "<task " not in log_text:
        raise BadInput("%s is not a -XX:+LogCompilation log (no compile tasks in it)" % log_file)
    traps = [(float(m.group(1)), m.group(0)) for m in
             re.finditer(r"<uncommon_trap thread='\d+' reason='speculate_class_check'[^>]*stamp='([\d.]+)'[^>]*>\s*<jvms[^>]*sameSpecies", log_text)]
    for kernel in kernels:
        task, stamp = compile_record(log_text, kernel)
        if task is None:
            print("%-24s box_gb=%.1f (no C2 compilation in the log)" % (kernel, totals[kernel] / 1e9))
            continue
        check_failed_ids = re.findall(r"<method id='(\d+)' holder='\d+' name='checkFailed'", task)
        check_failed = sum(task.count("<call method='%s'" % i) for i in set(check_failed_ids))
        bimorphic = task.count("reason='bimorphic_or_optimized_type_check'")
        spec = sum(1 for t, _ in traps if stamp is None or t <= stamp)
        print("%-24s box_gb=%.1f check_failed=%d bimorphic=%d spec_traps=%d" % (kernel, totals[kernel] / 1e9, check_failed, bimorphic, spec))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except BadInput as e:
        print("boxcheck: error: %s" % e, file=sys.stderr)
        sys.exit(1)
