"""GraphQL over HTTP's two answer media types: which one a request's ``Accept`` header chooses (as
it chooses a certificate's format, app.certificate_route), and the status code of a GraphQL
response under it (a request error is a 4xx only under ``application/graphql-response+json``;
legacy ``application/json`` answers it with 200)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from app.errors import ErrorCode

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
# In the order that breaks a tie no Accept entry names (``*/*``, ``application/*``, or no header at
# all): the legacy type, which every client written before the spec reads.
MEDIA_TYPES = (JSON, GRAPHQL_RESPONSE)


@functools.lru_cache(maxsize=64)  # a client sends the same Accept on every request
def choose_media_type(accept: str | None, media_types: tuple[str, ...] = MEDIA_TYPES) -> str | None:
    """The media type of ``media_types`` (GraphQL's two by default) to answer in, or None when
    ``accept`` takes none of them (a 406); the first without an ``Accept`` header.

    Each type gets the weight of the most specific entry that matches it (``type/subtype`` over
    ``type/*`` over ``*/*``); the heavier wins, then the more specific, then the one listed first.
    Parameters other than ``q`` (``charset``) are ignored: answers are always UTF-8."""
    if not accept or not accept.strip():
        return media_types[0]
    entries = _entries(accept)
    ranked = [(rank, media_type) for media_type in media_types if (rank := _rank(entries, media_type))]
    # max() keeps the first of equals: the order of media_types settles a tie between wildcards
    return max(ranked, key=lambda ranked_type: ranked_type[0])[1] if ranked else None


def _rank(entries: list[tuple[str, float]], media_type: str) -> tuple[float, int, int] | None:
    """(weight, specificity, -position) of the most specific entry that matches ``media_type``, or
    None when none does or its weight is 0."""
    matches = [
        (specificity, -position, q)
        for position, (name, q) in enumerate(entries)
        if (specificity := _specificity(name, media_type)) is not None
    ]
    if not matches:
        return None
    specificity, earlier, q = max(matches)  # earlier: -position, the highest for the first listed
    return (q, specificity, earlier) if q > 0 else None


def _entries(accept: str) -> list[tuple[str, float]]:
    """``accept``'s media ranges with their weights; an entry with a malformed weight is left out."""
    entries = []
    for entry in accept.lower().split(","):
        name, *parameters = (part.strip() for part in entry.split(";"))
        q: float | None = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = None
        if name and q is not None and 0 <= q <= 1:
            entries.append((name, q))
    return entries


def _specificity(media_range: str, media_type: str) -> int | None:
    """How closely ``media_range`` names ``media_type``: 2 exactly, 1 as ``type/*``, 0 as ``*/*``."""
    if media_range == media_type:
        return 2
    if media_range == media_type.split("/")[0] + "/*":
        return 1
    return 0 if media_range == "*/*" else None


def response_status(body: Mapping[str, Any], media_type: str) -> int:
    """The status of a GraphQL response. Without ``data`` it is a request error (the document did not
    parse or validate, no operation could be chosen, a variable did not fit): under
    ``application/graphql-response+json`` a 400, or a 500 if the server failed; legacy
    ``application/json`` answers every well-formed request with 200."""
    if media_type == JSON or "data" in body:
        return 200
    codes = {error.get("extensions", {}).get("code") for error in body.get("errors", [])}
    return 500 if ErrorCode.INTERNAL.value in codes else 400
