"""S3 ListObjects v1 answers (the public bucket behind data.binance.vision), parsed namespace-aware."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ListedObject:
    key: str
    size: int
    etag: str
    last_modified: str


@dataclass
class ListPage:
    objects: list[ListedObject] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)  # CommonPrefixes ("folders"), never the echoed <Prefix>
    truncated: bool = False
    next_marker: str | None = None

    def continuation(self) -> str | None:
        """Marker for the next page: NextMarker when S3 gave one, else the last key or folder of this page."""
        if not self.truncated:
            return None
        if self.next_marker:
            return self.next_marker
        last = max([o.key for o in self.objects] + self.prefixes, default=None)
        if last is None:
            raise ValueError("the bucket listing says it is truncated but returned no keys; cannot continue")
        return last


def parse_list_bucket(xml_text: str | bytes) -> ListPage:
    """Parse one ``ListBucketResult`` page; raises ValueError naming what is wrong when it is not one."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ValueError(f"bucket listing is not XML ({exc}); expected an S3 ListBucketResult document") from None
    if _local(root.tag) != "ListBucketResult":
        raise ValueError(f"bucket listing root is <{_local(root.tag)}>; expected <ListBucketResult>")
    page = ListPage()
    for child in root:
        tag = _local(child.tag)
        if tag == "Contents":
            values = {_local(c.tag): (c.text or "") for c in child}
            page.objects.append(
                ListedObject(
                    key=values.get("Key", ""),
                    size=int(values.get("Size") or 0),
                    etag=values.get("ETag", "").strip('"'),
                    last_modified=values.get("LastModified", ""),
                )
            )
        elif tag == "CommonPrefixes":
            page.prefixes.extend(c.text or "" for c in child if _local(c.tag) == "Prefix")
        elif tag == "IsTruncated":
            page.truncated = (child.text or "").strip().lower() == "true"
        elif tag == "NextMarker":
            page.next_marker = (child.text or "").strip() or None
    return page


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
