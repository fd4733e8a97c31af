"""IMAP load generator for bench/imap: the same client against any server.

Plain IMAP on loopback (LOGIN in the clear: both servers run without TLS), raw
sockets (imaplib's per-line Python work would be most of what is measured), one
process per concurrent client. Prints one line per step: `step clients seconds ops/s`.

    python3 load.py HOST PORT USER PASSWORD CLIENTS
"""
import multiprocessing as mp, os, socket, sys, time

HOST, PORT, USER, PW = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
CLIENTS = int(sys.argv[5])


class Conn:
    def __init__(self):
        self.s = socket.create_connection((HOST, PORT))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.n = 0
        self.buf = b""
        while b"\r\n" not in self.buf:
            self.buf += self.s.recv(65536)
        self.buf = b""

    def cmd(self, line, literal=None):
        """Send `line` (and a LITERAL+ literal), return everything up to the tagged reply."""
        self.n += 1
        tag = b"a%d" % self.n
        if literal is None:
            self.s.sendall(tag + b" " + line + b"\r\n")
        else:
            self.s.sendall(tag + b" " + line + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        mark = b"\r\n" + tag + b" "
        buf = bytearray(self.buf)
        scanned = 0
        while True:
            if buf.startswith(tag + b" "):
                at = 0
            else:
                i = buf.find(mark, max(scanned - len(mark), 0))
                at = -1 if i == -1 else i + 2
            if at != -1:
                end = buf.find(b"\r\n", at)
                if end != -1:
                    status = buf[at + len(tag) + 1: at + len(tag) + 3]
                    if status != b"OK":
                        raise SystemExit(f"{line[:60]!r}: {buf[at:end]!r}")
                    self.buf = bytes(buf[end + 2:])
                    return bytes(buf[:at])
            scanned = len(buf)
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise SystemExit("connection closed")
            buf += chunk

    def login(self):
        # A login refused for the moment (hostplane's shared throttle counts a
        # login in flight against the account until it succeeds, so 20 clients
        # logging in at once on a loaded machine can meet it) is retried after
        # the second the server asks for, as a real client would; the wait
        # counts in the step's time.
        for _ in range(20):
            try:
                self.cmd(b'LOGIN "%s" "%s"' % (USER.encode(), PW.encode()))
                return
            except SystemExit as e:
                if b"UNAVAILABLE" not in str(e).encode() and "UNAVAILABLE" not in str(e):
                    raise
                self.buf = b""
                time.sleep(1)
        raise SystemExit("login refused 20 times")

    def close(self):
        try:
            self.cmd(b"LOGOUT")
        except SystemExit:
            pass
        self.s.close()


def login_select(k, share):
    for _ in range(share):
        c = Conn(); c.login(); c.cmd(b"SELECT INBOX"); c.close()


def fetch_envelope(k, share):
    c = Conn(); c.login(); c.cmd(b"EXAMINE INBOX")
    for _ in range(share):
        out = c.cmd(b"FETCH 1:* (FLAGS ENVELOPE)")
        assert out.count(b" FETCH ") >= 10000, len(out)
    c.close()


def search(k, share):
    c = Conn(); c.login(); c.cmd(b"EXAMINE INBOX")
    for i in range(share):
        if (i + k) % 2 == 0:
            out = c.cmd(b'UID SEARCH SUBJECT "walrus"')
        else:
            out = c.cmd(b'UID SEARCH TEXT "walrus"')
        assert out.count(b" ") > 50, out[:200]
    c.close()


def bodies(k, share):
    c = Conn(); c.login(); c.cmd(b"EXAMINE INBOX")
    for i in range(share):
        seq = 1 + (k * 7919 + i * 37) % 10000
        out = c.cmd(b"FETCH %d (BODY.PEEK[])" % seq)
        assert len(out) > 2000, out[:200]
    c.close()


MSG = (b"From: a@example.net\r\nTo: bench@bench.test\r\nSubject: appended %d\r\n"
       b"Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <%d@x>\r\n\r\n")


def append(k, share):
    c = Conn(); c.login()
    for i in range(share):
        m = MSG % (i, k * 100000 + i) + b"x" * 70 + b"\r\n" * 80  # ~6 KiB body
        c.cmd(b"APPEND INBOX (\\Seen)", m)
    c.close()


# (name, function, total operations over all clients)
STEPS = [
    ("login+select", login_select, 100),
    ("fetch 1:* (flags envelope)", fetch_envelope, 20),
    ("uid search subject/text", search, 20),
    ("fetch 1000 bodies", bodies, 1000),
    ("append 1000", append, 1000),
]


def run(step, clients):
    name, f, total = step
    if name.startswith("fetch 1:*") and clients == 1:
        total = 4
    if name.startswith("uid search") and clients == 1:
        total = 4
    share = max(total // clients, 1)
    total = share * clients
    ps = [mp.Process(target=f, args=(k, share)) for k in range(clients)]
    t = time.monotonic()
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    dt = time.monotonic() - t
    if any(p.exitcode for p in ps):
        raise SystemExit(f"{name}: a client failed")
    print(f"{name}\t{clients}\t{dt:.3f}\t{total / dt:.1f}", flush=True)


if __name__ == "__main__":
    only = os.environ.get("STEPS")
    for s in STEPS:
        if only and s[0].split()[0] not in only.split(","):
            continue
        run(s, CLIENTS)
