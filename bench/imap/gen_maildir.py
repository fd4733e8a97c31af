"""Write one Maildir of N generated messages (deterministic: seeded).

Sizes 2-50 KiB (log-uniform, so most are small like real mail), about one in
four multipart/mixed with a base64 attachment, one in ten multipart/alternative;
about half are seen, a few flagged; a few contain the word "walrus" for TEXT searches.

    python3 gen_maildir.py DIR N
"""
import base64, os, random, sys, time

WORDS = ("meeting invoice project update report budget review schedule customer "
         "server release plan draft contract offer quarter team weekly notes call").split()


def text(r, n):
    out, size = [], 0
    while size < n:
        line = " ".join(r.choice(WORDS) for _ in range(r.randint(8, 14)))
        out.append(line)
        size += len(line) + 2
    return "\r\n".join(out) + "\r\n"


def message(r, i):
    size = int(2048 * (25 ** r.random()))  # 2 KiB .. 50 KiB
    subj = " ".join(r.choice(WORDS) for _ in range(r.randint(2, 6))) + f" #{i}"
    if i % 97 == 0:
        subj += " walrus"
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(1700000000 + i * 600))
    head = (f"Return-Path: <sender{i % 50}@example.net>\r\n"
            f"Received: from mx.example.net (mx.example.net [192.0.2.{i % 250}])\r\n"
            f"\tby mx.bench.test with ESMTPS; {date}\r\n"
            f"From: Sender {i % 50} <sender{i % 50}@example.net>\r\n"
            f"To: Bench User <bench@bench.test>\r\n"
            + (f"Cc: other{i % 7}@example.org\r\n" if i % 3 == 0 else "")
            + f"Subject: {subj}\r\nDate: {date}\r\n"
            f"Message-ID: <{i}.{r.randint(0, 1 << 30)}@example.net>\r\nMIME-Version: 1.0\r\n")
    kind = r.random()
    if kind < 0.25:
        body_len = min(size // 3, 4000)
        att = r.randbytes(max(size - body_len - 600, 100) * 3 // 4)
        b64 = base64.encodebytes(att).decode().replace("\n", "\r\n")
        body = ("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
                "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text(r, body_len) +
                "--b1\r\nContent-Type: application/pdf; name=\"doc.pdf\"\r\n"
                "Content-Disposition: attachment; filename=\"doc.pdf\"\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n" + b64 + "--b1--\r\n")
    elif kind < 0.35:
        t = text(r, size // 3)
        html = "<html><body><p>" + text(r, size // 2).replace("\r\n", "</p>\r\n<p>") + "</p></body></html>\r\n"
        body = ("Content-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n"
                "--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + t +
                "--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + "--b2--\r\n")
    else:
        body = "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text(r, size - len(head) - 50)
    if i % 97 == 0:
        body += "the walrus said\r\n"
    return (head + body).encode()


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    r = random.Random(16)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    for i in range(1, n + 1):
        m = message(r, i)
        t = 1700000000 + i * 600
        base = f"{t}.M{i}P1.gen,S={len(m)}"
        if i > n - 20:  # a few unseen in new/
            path = os.path.join(d, "new", base)
        else:
            flags = ("S" if i % 2 else "") + ("F" if i % 50 == 0 else "")
            flags = "".join(sorted(flags))
            path = os.path.join(d, "cur", f"{base}:2,{flags}")
        with open(path, "wb") as f:
            f.write(m)
        os.utime(path, (t, t))


if __name__ == "__main__":
    main()
