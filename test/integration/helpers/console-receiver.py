#!/usr/bin/env python3
"""What conmon and containerd's shim do with --console-socket, for tests of tsrun-runtime.

usage: console-receiver.py SOCKET INPUT -- COMMAND...
Listens on SOCKET (a unix stream socket), runs COMMAND (e.g. `tsrun-runtime create
--console-socket SOCKET ...`), accepts one connection and receives one message carrying the
PTY master (SCM_RIGHTS). Prints the message's text on stderr as "name: ...", then writes
INPUT to the master and prints everything read from it until the container hangs up (EIO)
or 10 s pass. Exits with COMMAND's status if it failed, else 0.
"""
import array, os, select, socket, subprocess, sys, time

def main():
    path, text = sys.argv[1], sys.argv[2]
    cmd = sys.argv[sys.argv.index('--') + 1:]
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    proc = subprocess.Popen(cmd)
    srv.settimeout(15)
    conn, _ = srv.accept()
    fds = array.array('i')
    msg, anc, _, _ = conn.recvmsg(4096, socket.CMSG_LEN(fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    conn.close()
    if len(fds) != 1:
        print('console-receiver: expected exactly one fd, got %d' % len(fds), file=sys.stderr)
        return 2
    print('name: %s' % msg.decode(), file=sys.stderr)
    status = proc.wait()
    if status != 0:
        return status
    master = fds[0]
    # The start may come later (the test runs `start` itself): write what the shell will read.
    os.write(master, text.encode())
    out = b''
    deadline = time.time() + 10
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if not r:
            continue
        try:
            data = os.read(master, 65536)
        except OSError:
            break  # EIO: every slave fd is closed, the container is gone
        if not data:
            break
        out += data
    sys.stdout.write(out.decode(errors='replace'))
    return 0

if __name__ == '__main__':
    sys.exit(main())
