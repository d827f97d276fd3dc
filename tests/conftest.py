"""Settings for every test."""

from __future__ import annotations

import signal

# A test runner started in the background by a shell without job control (`bash -c
# 'pytest &'`) inherits SIGINT ignored, and so would every CLI process the tests start:
# then Ctrl-C at a prompt, or SIGINT to a waiting command, does nothing. The tests that
# press Ctrl-C need it delivered, so the runner takes Python's own handler back (a
# handled signal is reset to its default in the processes it starts).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
