"""Optimistic concurrency: the ETag of a representation, and ``If-Match`` against it.

The ETag is a digest of the object's JSON as the API sends it. An agent shows its attached
numbers and a number shows the agents attached to it, so a version column per row would give
one ETag to two different representations; a digest cannot, and ``updated_at`` inside the
representation makes every write change it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from callingbox_server.core.errors import InvalidRequest, PreconditionFailed

# RFC 9110, section 8.8.3: "*", or a comma-separated list of entity-tag = [ "W/" ] DQUOTE *etagc
# DQUOTE. Checked here and published in the OpenAPI document, so the two cannot differ.
_TAG = r'(W/)?("[!#-~]*")'
IF_MATCH_PATTERN = rf"[ \t]*(\*|{_TAG}([ \t]*,[ \t]*{_TAG})*)[ \t]*"
_IF_MATCH = re.compile(IF_MATCH_PATTERN)
_TAGS = re.compile(_TAG)
IF_MATCH_MESSAGE = (
    "invalid If-Match header: must be * or quoted ETags separated by commas, such as "
    '"3f0a4cbe5f1d2e7a9b6c8d0e1f2a3b4c"'
)


def etag_of(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


@dataclass(frozen=True, slots=True)
class IfMatch:
    """A parsed ``If-Match``: ``*`` (any current representation) or strong tags to compare."""

    tags: frozenset[str] | None

    @classmethod
    def parse(cls, value: str) -> IfMatch:
        if not _IF_MATCH.fullmatch(value):
            raise InvalidRequest(IF_MATCH_MESSAGE)
        if value.strip(" \t") == "*":
            return cls(tags=None)
        # A weak tag never matches strongly (RFC 9110, section 13.1.1).
        return cls(tags=frozenset(tag for weak, tag in _TAGS.findall(value) if not weak))

    def matches(self, etag: str) -> bool:
        return self.tags is None or etag in self.tags


def require_match(if_match: IfMatch | None, current: bytes, noun: str) -> None:
    """412 unless ``current`` (the wire JSON, read under the lock the change holds) is what
    the caller saw."""
    if if_match is not None and not if_match.matches(etag_of(current)):
        raise PreconditionFailed(f"{noun} has changed since it was read: If-Match does not match")
