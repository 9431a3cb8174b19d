#!/usr/bin/env python3
"""Run a command on a fresh pseudo-terminal, as a person at a terminal would.

usage: pty-driver.py ROWS COLS SCRIPT_JSON -- COMMAND...
SCRIPT_JSON is a list of steps: {"wait": "text"} waits (up to 10 s) for text in the output,
{"send": "text"} types it, {"resize": [rows, cols]} resizes the terminal and sends SIGWINCH
to the command. Prints the whole output (base64-free, raw) and exits with the command's status.
"""
import fcntl, json, os, pty, select, signal, struct, sys, termios, time

def main():
    rows, cols, script = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    cmd = sys.argv[sys.argv.index('--') + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
    out = b''
    def read_some(timeout):
        nonlocal out
        r, _, _ = select.select([fd], [], [], timeout)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return False
            if not data:
                return False
            out += data
        return True
    for step in script:
        if 'wait' in step:
            deadline = time.time() + 10
            while step['wait'].encode() not in out and time.time() < deadline:
                if not read_some(0.1):
                    break
        elif 'send' in step:
            os.write(fd, step['send'].encode())
        elif 'resize' in step:
            r, c = step['resize']
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', r, c, 0, 0))
            os.kill(pid, signal.SIGWINCH)
        elif 'sleep' in step:
            time.sleep(step['sleep'])
    deadline = time.time() + 15
    while time.time() < deadline and read_some(0.1):
        pass
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode('utf-8', 'replace'))
    sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))

main()
