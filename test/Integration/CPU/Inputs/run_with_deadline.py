"""Runs a command with a deadline and prints its output, then whether it
ended in time and how: "ended within the deadline, exit status N" or
"STILL RUNNING at the deadline" (the command is then killed). Always
exits 0, so that FileCheck judges."""
import subprocess
import sys
import time

deadline = float(sys.argv[1])
command = sys.argv[2:]
start = time.monotonic()
process = subprocess.Popen(command, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
try:
    output, _ = process.communicate(timeout=deadline)
    print(output)
    print(f"ended within the deadline, exit status {process.returncode}")
except subprocess.TimeoutExpired:
    import os
    import signal
    os.killpg(process.pid, signal.SIGKILL)
    output, _ = process.communicate()
    print(output)
    print("STILL RUNNING at the deadline")
