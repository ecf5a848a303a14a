"""Uploads for the HTTP app: a multipart body streamed into a private folder with a size limit,
content sniffing, and the checks that turn bad input into clear 4xx errors.

Nothing is buffered outside the work folder: the body is parsed as it arrives
(python-multipart's streaming parser) and the file part written straight into the request's
private folder (mode 0700), which the caller deletes. The container format is recognised from
the first bytes (its magic number), never from the file name.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from python_multipart.multipart import MultipartParser, parse_options_header


class BadInput(Exception):
    """Input the server refuses: ``status`` (a 4xx code) and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


CHUNK_LIMIT = 64 * 1024  # bytes of all form fields other than the file (options, a path)


def sniff_container(head: bytes) -> str | None:
    """The container format from a file's first bytes (at least 12; 376 for MPEG-TS), or None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mp4/mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska/webm"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:3] == b"FLV":
        return "flv"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x00\x00\x01\xba":
        return "mpeg-ps"
    if head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):
        return "asf/wmv"
    if len(head) >= 376 and head[0] == head[188] == head[376 - 188] == 0x47:
        return "mpeg-ts"
    if len(head) >= 12 and head[4:8] in (b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "mp4/mov"  # QuickTime files without an ftyp box
    return None


def check_sniffed(path: Path, shown_name: str) -> str:
    """The container of ``path`` or a 400 (empty) / 415 (not a video container) :class:`BadInput`."""
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        raise BadInput(400, f"{shown_name}: empty upload (0 bytes)")
    kind = sniff_container(head)
    if kind is None:
        raise BadInput(415, f"{shown_name}: not a video: the content is no known video container "
                            "(mp4/mov, mkv/webm, avi, flv, ogg, mpeg-ps/ts, asf) whatever the file name says")
    return kind


@dataclass
class Upload:
    """The parsed body: the saved file (or None), its client-side name, the other form fields."""

    path: Path | None
    filename: str
    fields: dict[str, str]
    size: int


async def receive_form(content_type: str, body: AsyncIterator[bytes], folder: Path, max_bytes: int) -> Upload:
    """A ``multipart/form-data`` body (:func:`receive_multipart`), or an urlencoded or JSON body of
    text fields only (e.g. ``path=...``)."""
    ctype, _ = parse_options_header(content_type)
    if ctype == b"multipart/form-data":
        return await receive_multipart(content_type, body, folder, max_bytes)
    if ctype not in (b"application/x-www-form-urlencoded", b"application/json"):
        raise BadInput(415, "POST a multipart/form-data body with a 'file' part (or form / JSON fields "
                            "with a 'path')")
    data = b""
    async for chunk in body:
        data += chunk
        if len(data) > CHUNK_LIMIT:
            raise BadInput(413, f"a body without a file is limited to {CHUNK_LIMIT} bytes")
    try:
        if ctype == b"application/json":
            doc = json.loads(data or b"{}")
            if not isinstance(doc, dict):
                raise ValueError("not an object")
            fields = {str(k): str(v) for k, v in doc.items()}
        else:
            fields = {k: v[-1] for k, v in parse_qs(data.decode("utf-8"), strict_parsing=False).items()}
    except (ValueError, UnicodeDecodeError) as err:
        raise BadInput(400, f"malformed {ctype.decode()} body: {err}") from None
    return Upload(None, "", fields, 0)


async def receive_multipart(content_type: str, body: AsyncIterator[bytes], folder: Path,
                            max_bytes: int) -> Upload:
    """Stream a ``multipart/form-data`` body: the part with a filename goes to ``folder/upload``
    (at most ``max_bytes``: larger is a 413), other parts become text fields."""
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise BadInput(415, "POST a multipart/form-data body with a 'file' part (or a 'path' field)")
    state = {"name": "", "filename": None, "header": b"", "headers": {}, "size": 0, "out": None,
             "fields": {}, "value": b"", "files": 0, "field_bytes": 0}
    target = folder / "upload"

    def on_header_field(data, start, end):
        state["header"] += data[start:end]

    def on_header_value(data, start, end):
        state["headers"][state["header"].lower()] = state["headers"].get(state["header"].lower(), b"") \
            + data[start:end]

    def on_header_end():
        state["header"] = b""

    def on_headers_finished():
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["name"] = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename")
        state["filename"] = None if filename is None else filename.decode("utf-8", "replace")
        state["headers"], state["value"] = {}, b""
        if state["filename"] is not None:
            state["files"] += 1
            if state["files"] > 1:
                raise BadInput(400, "upload one file per request")
            state["out"] = open(target, "wb")  # noqa: SIM115  (closed at the part's end)

    def on_part_data(data, start, end):
        if state["out"] is not None:
            state["size"] += end - start
            if state["size"] > max_bytes:
                raise BadInput(413, f"upload larger than the limit of {max_bytes} bytes")
            state["out"].write(data[start:end])
        else:
            state["value"] += data[start:end]
            state["field_bytes"] += end - start
            if state["field_bytes"] > CHUNK_LIMIT:
                raise BadInput(413, f"form fields (here {state['name']!r}) are longer than "
                                    f"{CHUNK_LIMIT} bytes in all")

    def on_part_end():
        if state["out"] is not None:
            state["out"].close()
            state["out"] = None
            state["upload_name"] = state["filename"] or "upload"
        else:
            state["fields"][state["name"]] = state["value"].decode("utf-8", "replace")

    parser = MultipartParser(params[b"boundary"], {
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end})
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
    except BadInput:
        raise
    except Exception as err:  # python-multipart's parse errors (MultipartParseError, ...)
        raise BadInput(400, f"malformed multipart body: {err}") from None
    finally:
        if state["out"] is not None:
            state["out"].close()
    has_file = "upload_name" in state
    return Upload(target if has_file else None, state.get("upload_name", ""), state["fields"], state["size"])
