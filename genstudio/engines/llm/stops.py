"""Stop strings over a text stream: holds back text that may start a stop string, cuts the reply at one."""

from __future__ import annotations


class StopMatcher:
    def __init__(self, stops: list[str] | None) -> None:
        self.stops = [s for s in (stops or []) if s]
        self.pending = ""  # text held back because it could be the start of a stop string
        self.hit: str | None = None

    def push(self, text: str, *, final: bool = False) -> tuple[str, bool]:
        """Add text; returns (what may be shown now, whether a stop string ended the reply)."""
        if self.hit is not None:
            return "", True
        if not self.stops:
            return text, False
        buf = self.pending + text
        first = None
        for s in self.stops:
            i = buf.find(s)
            if i >= 0 and (first is None or i < first[0]):
                first = (i, s)
        if first is not None:
            self.hit = first[1]
            self.pending = ""
            return buf[:first[0]], True
        if final:
            self.pending = ""
            return buf, False
        hold = 0
        for s in self.stops:  # the longest tail of buf that is a proper prefix of a stop string
            for k in range(min(len(s) - 1, len(buf)), 0, -1):
                if buf.endswith(s[:k]):
                    hold = max(hold, k)
                    break
        self.pending = buf[len(buf) - hold:] if hold else ""
        return buf[:len(buf) - hold], False
