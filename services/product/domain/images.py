"""Which uploads are images we accept: the declared type must be allowed and match the bytes.

The declared Content-Type is the client's claim; the first bytes (the format's signature) are
the file's. Both must agree, so a script renamed ``.png`` is not stored as an image.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.common.errors import Invalid

SIGNATURES: tuple[tuple[str, bytes, int], ...] = (
    ("image/jpeg", b"\xff\xd8\xff", 0),
    ("image/png", b"\x89PNG\r\n\x1a\n", 0),
    ("image/gif", b"GIF8", 0),
    ("image/webp", b"WEBP", 8),  # RIFF....WEBP
)
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}


def sniff(head: bytes) -> str | None:
    """The image type the leading bytes announce, or None."""
    for content_type, signature, offset in SIGNATURES:
        if head[offset:offset + len(signature)] == signature:
            if content_type == "image/webp" and not head.startswith(b"RIFF"):
                continue
            return content_type
    return None


def check_image(declared: str | None, head: bytes, size: int, allowed: Iterable[str],
                max_bytes: int) -> str:
    """The accepted content type; 422 naming ``file`` and the broken rule otherwise."""
    allowed = tuple(allowed)
    declared_type = (declared or "").split(";")[0].strip().lower()
    if declared_type not in allowed:
        raise Invalid("file", "content_type",
                      f"content type {declared_type or 'missing'} is not one of "
                      f"{', '.join(allowed)}")
    if size == 0:
        raise Invalid("file", "not_empty", "the file is empty")
    if size > max_bytes:
        raise Invalid("file", "max_size", f"the file has more than {max_bytes} bytes")
    actual = sniff(head)
    if actual != declared_type:
        raise Invalid("file", "content_matches_type",
                      f"the file's bytes are {actual or 'not an image we know'}, "
                      f"not {declared_type}")
    return declared_type
