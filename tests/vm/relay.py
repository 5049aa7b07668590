#!/usr/bin/python3
"""Relay one guest TCP connection to nbdkit on the host's loopback.

qemu's user-mode network runs this once per connection the test VM opens
to its guestfwd address (guestfwd=tcp:ADDR:PORT-cmd:relay.py ...), with
that connection as stdin, stdout *and stderr*.  A guestfwd to a tcp:
chardev would not do: it is one host connection, opened when qemu
starts and shared by every guest connection, so nbd-client's second
connection would interleave its bytes with the first's.

Usage: relay.py PORT LOGFILE

It connects to 127.0.0.1:PORT and to nothing else, copies bytes both ways
until both sides have finished (a half-close is passed on as a
shutdown), and writes one line per connection to LOGFILE.  NB: it must
never write to stderr: that is the guest's NBD stream.
"""

import os
import selectors
import socket
import sys
import time


def main():
    port = int(sys.argv[1])
    log = open(sys.argv[2], "a", buffering=1)
    # Anything a crash prints goes to the log, not into the NBD stream.
    os.dup2(log.fileno(), 2)
    sys.stderr = log

    guest = socket.socket(fileno=os.dup(0))
    os.close(0)
    os.close(1)
    host = socket.create_connection(("127.0.0.1", port), timeout=10)
    host.settimeout(None)
    start = time.monotonic()
    counts = {guest: 0, host: 0}
    peer = {guest: host, host: guest}
    sel = selectors.DefaultSelector()
    sel.register(guest, selectors.EVENT_READ)
    sel.register(host, selectors.EVENT_READ)
    open_sides = 2
    while open_sides:
        for key, _ in sel.select():
            src = key.fileobj
            try:
                data = src.recv(1 << 16)
            except ConnectionResetError:
                data = b""
            if data:
                peer[src].sendall(data)
                counts[src] += len(data)
                continue
            # EOF from one side: pass the half-close on and stop reading it.
            sel.unregister(src)
            open_sides -= 1
            try:
                peer[src].shutdown(socket.SHUT_WR)
            except OSError:
                pass
    print(
        "relay pid %d: guest->nbdkit %d bytes, nbdkit->guest %d bytes, %.2fs"
        % (os.getpid(), counts[guest], counts[host], time.monotonic() - start),
        file=log,
    )


if __name__ == "__main__":
    main()
