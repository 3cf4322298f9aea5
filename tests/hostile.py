"""Hostile messages, built by code at any size (the red team's examples of issue 11).

Big ones are generated rather than committed; the small, hand-written ones
live in tests/emails/ (hostile_*.eml).
"""

from __future__ import annotations

HEAD = (
    b"From: Privacy <privacy@acme.example>\r\nTo: privacy@privacy.example\r\n"
    b"Subject: GDPR erasure request\r\nMessage-ID: <hostile@acme.example>\r\n"
    b"Authentication-Results: mx.privacy.example; dmarc=pass header.from=acme.example\r\n"
    b"MIME-Version: 1.0\r\n"
)
TEXT_PART = b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease erase.\r\nViewer ID: h-1\r\n"


def multipart(*parts: bytes, boundary: bytes = b"b") -> bytes:
    """A multipart/mixed request: the plain-text request, then the given parts (each headers + body)."""
    body = TEXT_PART + b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    return HEAD + b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n' + body + b"--" + boundary + b"--\r\n"


def encoded_word_filename(size: int) -> bytes:
    """An attachment whose filename= is thousands of encoded words (red team: 224 KB, 9 s, 1.9 GB)."""
    word = b" =?utf-8?q?viewer=5Fids?="
    n = max(1, size // len(word))
    return multipart(b'Content-Type: text/csv\r\nContent-Disposition: attachment; filename="'
                     + (word * n).strip() + b'"\r\n\r\nviewer_id\r\nh-2')


def many_parameters(count: int) -> bytes:
    """A part whose Content-Type carries ``count`` parameters (red team: 60k, 69 s)."""
    params = b"".join(b";\r\n p%d=v%d" % (i, i) for i in range(count))
    return multipart(b"Content-Type: text/plain" + params + b"\r\n\r\nViewer ID: h-3")


def rfc2231_continuations(count: int) -> bytes:
    """A filename in ``count`` RFC 2231 segments (red team: 13 s)."""
    segs = b"".join(b";\r\n filename*%d*=utf-8''a%%C3%%A9" % i if i == 0 else b";\r\n filename*%d*=a%%C3%%A9" % i
                    for i in range(count))
    return multipart(b"Content-Type: text/csv\r\nContent-Disposition: attachment" + segs + b"\r\n\r\nviewer_id\r\nh-4")


def many_part_headers(count: int) -> bytes:
    return multipart(b"".join(b"X-H%d: v\r\n" % i for i in range(count)) + b"Content-Type: text/plain\r\n\r\nViewer ID: h-5")


def many_parts(count: int) -> bytes:
    return multipart(*[b"Content-Type: text/plain\r\n\r\nViewer ID: p-%d" % i for i in range(count)])


def deep_nesting(depth: int) -> bytes:
    inner = b"Content-Type: text/plain\r\n\r\nViewer ID: deep"
    for i in range(depth):
        b = b"n%d" % i
        inner = b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n--' + b + b"\r\n" + inner + b"\r\n--" + b + b"--"
    return multipart(inner)


def many_delimiter_lines(count: int) -> bytes:
    return multipart(b"Content-Type: text/plain\r\n\r\n" + b"--\r\n" * count)


def long_header_line(size: int) -> bytes:
    return HEAD.replace(b"Subject: ", b"Subject: " + b"=?utf-8?q?x?= " * (size // 14)) + b"Content-Type: text/plain\r\n\r\nViewer ID: h-6\r\n"


def many_headers(count: int) -> bytes:
    return HEAD + b"".join(b"X-Trace-%d: hop\r\n" % i for i in range(count)) + b"\r\nViewer ID: h-7\r\n"


def html_bomb(count: int) -> bytes:
    return HEAD + b"Content-Type: text/html\r\n\r\n" + b"<a" * count + b"\r\n"


def nul_and_8bit(size: int) -> bytes:
    return HEAD + b"Content-Type: text/plain\r\n\r\nViewer ID: h-8\r\n" + (b"\x00\xff\x80abc\r\n" * (size // 8))


def message_rfc822_params(count: int) -> bytes:
    """The bomb inside a forwarded message's own header block (message/rfc822 part)."""
    inner = b"From: x@y.example\r\nContent-Type: text/plain" + b"".join(b"; p%d=v" % i for i in range(count)) + b"\r\n\r\nhi"
    return multipart(b"Content-Type: message/rfc822\r\n\r\n" + inner)


def large_attachment(size: int) -> bytes:
    """An honest-looking request with one big base64 attachment (a 25 MB message)."""
    import base64

    line = base64.b64encode(b"\x89PNG" + bytes(range(53)))  # 76 characters a line
    lines = max(1, size // (len(line) + 2))
    return multipart(b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
                     b'Content-Disposition: attachment; filename="screen.png"\r\n\r\n' + (line + b"\r\n") * lines)
