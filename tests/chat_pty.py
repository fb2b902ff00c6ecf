"""`hypura chat` driven through a pseudo-terminal, as a person types: a question, Ctrl-C in the
middle of the (long) reply, which must end the reply and keep the chat, then /exit.

Usage: chat_pty.py HYPURA PLAN; exits non-zero with the transcript when something is wrong.
Called by tests/everyday_cli.rs.
"""

import os
import pty
import select
import sys
import time

hypura, plan = sys.argv[1], sys.argv[2]
transcript = b""


def fail(why):
    sys.stderr.write(f"{why}\n--- transcript ---\n{transcript.decode(errors='replace')}\n")
    sys.exit(1)


def read_until(fd, needle, seconds, after=0):
    """Reads until `needle` appears in the transcript beyond offset `after`; the time it took."""
    global transcript
    start = time.monotonic()
    while needle not in transcript[after:]:
        left = seconds - (time.monotonic() - start)
        if left <= 0:
            fail(f"no {needle!r} within {seconds} s")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                fail(f"the chat ended before {needle!r}")
            if not chunk:
                fail(f"the chat ended before {needle!r}")
            transcript += chunk
    return time.monotonic() - start


pid, fd = pty.fork()
if pid == 0:
    # A reply of up to 3000 tokens (the greedy base model never ends one): minutes, unless
    # Ctrl-C ends it.
    os.execv(hypura, [hypura, "chat", "--plan", plan, "--temp", "0", "-n", "3000", "-c", "4096"])

read_until(fd, b"/exit quits", 300)
read_until(fd, b"> ", 60, transcript.index(b"/exit quits"))
os.write(fd, b"What is the capital of France?\n")
asked = len(transcript)
# The reply has started once text beyond the echoed question arrives.
read_until(fd, b"\n", 60, asked)
read_until(fd, b"France", 60, asked + 40)
os.write(fd, b"\x03")
interrupted = len(transcript)
took = read_until(fd, b"> ", 20, interrupted)
os.write(fd, b"/exit\n")
_, status = os.waitpid(pid, 0)
if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
    fail(f"the chat did not exit cleanly after /exit (status {status})")
print(f"prompt back {took:.2f} s after Ctrl-C")
